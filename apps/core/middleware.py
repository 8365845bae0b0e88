"""Binds a request id, the client address and user agent to the context before anything else runs; turns a
database pool that gave no connection in time into a clean 503 wherever in the request it happened."""
from __future__ import annotations

import re
import sys
import uuid

from django.conf import settings
from django.core.signals import got_request_exception
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.urls import get_urlconf, is_valid_path

from apps.core import context
from apps.core.api.errors import (
    API_PREFIX,
    database_busy_response,
    is_database_busy,
    too_many_fields_response,
)
from apps.core.net import client_ip

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_DATABASE_BUSY = "_bulwark_database_busy"


@receiver(got_request_exception)
def _note_database_busy(sender, request=None, **kwargs) -> None:
    """Django turns an exception raised inside a middleware into a 500 before any outer middleware sees it;
    the signal is sent while the exception is being handled, so its cause can be recorded for __call__."""
    if request is not None and is_database_busy(sys.exc_info()[1]):
        setattr(request, _DATABASE_BUSY, True)


def _too_many_query_fields(request: HttpRequest) -> bool:
    """The same count as Django's QueryDict (urllib's parse_qsl with max_num_fields): separators plus one."""
    limit = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
    query = request.META.get("QUERY_STRING", "")
    return limit is not None and bool(query) and query.count("&") + 1 > limit


class RequestContextMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.META.get("HTTP_X_REQUEST_ID", "")
        request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id
        request.client_ip = client_ip(request)
        ctx = context.RequestContext(
            request_id=request_id,
            client_ip=request.client_ip,
            user_agent=request.META.get("HTTP_USER_AGENT", "")[:512],
        )
        with context.bind(ctx):
            response = self.get_response(request)
        if getattr(request, _DATABASE_BUSY, False):
            response = database_busy_response()
        response["X-Request-ID"] = request_id
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        """A view (admin page, plain Django view) that found no free database connection: 503, not 500."""
        if is_database_busy(exception):
            return database_busy_response()
        return None


def canonical_api_path(path_info: str, urlconf: str | None = None) -> str | None:
    """The trailing-slash form of an /api/ path given without it, when only that form is a route; else None.

    Every API route ends with a slash (DRF's default). The other form is accepted, not redirected: a
    redirect would make clients resend a POST as a GET or lose its body.
    """
    if path_info.endswith("/") or not path_info.startswith(API_PREFIX):
        return None
    if is_valid_path(path_info, urlconf) or not is_valid_path(path_info + "/", urlconf):
        return None
    return path_info + "/"


class ApiRequestMiddleware:
    """Conventions of /api/ requests applied before anything reads the path or the query: the slash-less form
    of a route is served as its canonical form (so URL names, rate-limit and cache policies see one path), and
    too many query parameters answer the error shape."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info.startswith(API_PREFIX):
            if _too_many_query_fields(request):
                # Django would raise TooManyFieldsSent on the first read of request.GET and answer its HTML 400
                # page (with DEBUG, a debug page that takes seconds to render): refuse it here, cheaply.
                return too_many_fields_response()
            canonical = canonical_api_path(request.path_info, getattr(request, "urlconf", None) or get_urlconf())
            if canonical is not None:
                request.path = request.path + "/"
                request.path_info = canonical
        return self.get_response(request)
