"""Request body parsers shared by every endpoint."""
from __future__ import annotations

from django.conf import settings
from rest_framework import exceptions, parsers


class PayloadTooLarge(exceptions.APIException):
    status_code = 413
    default_code = "payload_too_large"
    default_detail = "The request body is too large."


class BoundedJSONParser(parsers.JSONParser):
    """DRF's JSON parser, refusing bodies above DATA_UPLOAD_MAX_MEMORY_SIZE with a 413.

    DRF reads the body stream itself, so Django's limit (which guards request.body and request.POST)
    never applies to JSON: a gigabyte of JSON would be loaded and parsed in memory.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        request = (parser_context or {}).get("request")
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0) if request is not None else 0
        except ValueError:
            length = 0
        if limit is not None and length > limit:
            raise PayloadTooLarge(f"The request body is {length} bytes; at most {limit} are accepted.")
        return super().parse(stream, media_type, parser_context)
