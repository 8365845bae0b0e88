"""Binds a request id, the client address and user agent to the context before anything else runs."""
from __future__ import annotations

import re
import uuid

from django.http import HttpRequest, HttpResponse

from apps.core import context
from apps.core.net import client_ip

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


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
        response["X-Request-ID"] = request_id
        return response
