"""One error shape for every 4xx/5xx the API answers: {status, code, message, errors}."""
from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation, TooManyFieldsSent
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import ProtectedError, RestrictedError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.views import exception_handler as drf_exception_handler

from apps.core.conf import core_settings
from apps.core.errors import ApplicationError


def error_body(*, status_code: int, code: str, message: str, errors: dict | None = None, **extra: Any) -> dict:
    return {"status": status_code, "code": code, "message": message, "errors": errors or {}, **extra}


def _first_message(detail: Any) -> str:
    if isinstance(detail, dict):
        for key, value in detail.items():
            inner = _first_message(value)
            return inner if key in ("non_field_errors", "detail") else f"{key}: {inner}"
    if isinstance(detail, list) and detail:
        return _first_message(detail[0])
    return str(detail)


def is_database_busy(exc: BaseException | None) -> bool:
    """True when the database pool gave no connection within its timeout (Django wraps psycopg_pool's
    PoolTimeout in its own OperationalError, so the chain of causes is walked)."""
    try:
        from psycopg_pool import PoolTimeout
    except ImportError:  # no pool installed: nothing can time out waiting for one
        return False
    for _ in range(5):
        if exc is None:
            return False
        if isinstance(exc, PoolTimeout):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def database_busy_body() -> tuple[dict, dict]:
    retry_after_s = core_settings.DB_BUSY_RETRY_AFTER_S
    body = error_body(status_code=503, code="database_busy", retry_after_s=retry_after_s,
                      message="Every database connection of this process is in use; retry shortly.")
    return body, {"Retry-After": str(retry_after_s)}


def too_many_fields_response() -> HttpResponse:
    limit = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
    body = error_body(status_code=400, code="too_many_fields",
                      message=f"The request has more than {limit} parameters (DATA_UPLOAD_MAX_NUMBER_FIELDS).")
    return JsonResponse(body, status=400)


def database_busy_response() -> HttpResponse:
    body, headers = database_busy_body()
    return JsonResponse(body, status=503, headers=headers)


def exception_handler(exc: Exception, context: dict) -> Response | None:
    if is_database_busy(exc):
        body, headers = database_busy_body()
        return Response(body, status=503, headers=headers)
    if isinstance(exc, ApplicationError):
        body = error_body(status_code=exc.status, code=exc.code, message=exc.message, errors=exc.extra.get("errors"))
        return Response(body, status=exc.status)
    if isinstance(exc, ProtectedError | RestrictedError):
        # on_delete=PROTECT/RESTRICT (e.g. a tenant's audit trail): a refusal the client can act on, not a 500.
        blocking = exc.protected_objects if isinstance(exc, ProtectedError) else exc.restricted_objects
        referrers = sorted({str(obj._meta.verbose_name_plural) for obj in blocking})
        message = f"Cannot delete: still referenced by {', '.join(referrers)}. Deactivate it instead."
        return Response(error_body(status_code=409, code="protected", message=message), status=409)
    if isinstance(exc, TooManyFieldsSent):
        body = error_body(status_code=400, code="too_many_fields", message=str(exc))
        return Response(body, status=400)
    if isinstance(exc, RequestDataTooBig):
        return Response(error_body(status_code=413, code="payload_too_large", message=str(exc)), status=413)
    if isinstance(exc, SuspiciousOperation):
        return Response(error_body(status_code=400, code="bad_request", message="Bad request."), status=400)
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(as_serializer_error(exc))
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        detail = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        message = "Invalid input. " + _first_message(detail)
        response.data = error_body(status_code=response.status_code, code="invalid", message=message, errors=detail)
    else:
        detail = getattr(exc, "detail", str(exc))
        code = getattr(detail, "code", None) or getattr(exc, "default_code", "error")
        response.data = error_body(status_code=response.status_code, code=str(code), message=str(detail))
    if response.status_code == status.HTTP_429_TOO_MANY_REQUESTS and getattr(exc, "wait", None) is not None:
        response.data["retry_after_s"] = exc.wait
    return response


API_PREFIX = "/api/"


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler404: an unknown URL under /api/ answers in the error shape, not Django's HTML page."""
    if request.path.startswith(API_PREFIX):
        body = error_body(status_code=404, code="not_found", message=f"No endpoint at {request.path[:200]}.")
        return JsonResponse(body, status=404)
    return defaults.page_not_found(request, exception)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler400 (SuspiciousOperation, with DEBUG off): the error shape under /api/."""
    if request.path.startswith(API_PREFIX):
        if isinstance(exception, TooManyFieldsSent):
            return too_many_fields_response()
        return JsonResponse(error_body(status_code=400, code="bad_request", message="Bad request."), status=400)
    return defaults.bad_request(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: an API client gets the error shape (and the request id to quote), not an HTML page."""
    if request.path.startswith(API_PREFIX):
        request_id = getattr(request, "request_id", "")
        message = f"Internal error; quote request id {request_id} when reporting it." if request_id else "Internal error."
        return JsonResponse(error_body(status_code=500, code="server_error", message=message), status=500)
    return defaults.server_error(request)
