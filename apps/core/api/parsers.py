"""Request body parsers shared by every endpoint."""
from __future__ import annotations

import io
import re
from itertools import accumulate

from django.conf import settings
from rest_framework import exceptions, parsers

from apps.core.conf import core_settings

# A JSON string (escapes included); possessive, so a string that never ends costs one linear pass.
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*+"', re.DOTALL)
_NOT_A_BRACKET = re.compile(rb"[^\[\]{}]+")


class PayloadTooLarge(exceptions.APIException):
    status_code = 413
    default_code = "payload_too_large"
    default_detail = "The request body is too large."


class NestedTooDeep(exceptions.ParseError):
    default_code = "nested_too_deep"


def json_depth(raw: bytes) -> int:
    """How deeply arrays and objects nest in a JSON text, without recursion: strings are blanked out, then the
    running balance of the brackets left is taken. Malformed text gives some number; the parser refuses it."""
    brackets = _NOT_A_BRACKET.sub(b"", _JSON_STRING.sub(b"", raw))
    return max(accumulate(1 if byte in b"[{" else -1 for byte in brackets), default=0)


class BoundedJSONParser(parsers.JSONParser):
    """DRF's JSON parser, refusing bodies above the view's limit with a 413 and nesting deeper than
    BULWARK["CORE"]["MAX_JSON_DEPTH"] with a 400, before anything is decoded.

    The limit is DATA_UPLOAD_MAX_MEMORY_SIZE unless the view sets `max_body_bytes` (an endpoint made for
    bulk bodies, e.g. monitoring's ingest, has its own setting). DRF reads the body stream itself, so
    Django's limit (which guards request.body and request.POST) never applies to JSON: a gigabyte of JSON
    would be loaded and parsed in memory. Python's json module recurses per level, so `[` x 1000 raised
    RecursionError (a 500) in the parser or in the serializers after it.
    """

    @staticmethod
    def body_limit(parser_context: dict | None) -> int | None:
        limit = getattr((parser_context or {}).get("view"), "max_body_bytes", None)
        return settings.DATA_UPLOAD_MAX_MEMORY_SIZE if limit is None else int(limit)

    def parse(self, stream, media_type=None, parser_context=None):
        request = (parser_context or {}).get("request")
        limit = self.body_limit(parser_context)
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0) if request is not None else 0
        except ValueError:
            length = 0
        if limit is not None and length > limit:
            raise PayloadTooLarge(f"The request body is {length} bytes; at most {limit} are accepted.")
        if stream is None:
            raw = b""
        elif limit is None:
            raw = stream.read()
        else:  # a body without Content-Length (chunked) stops at the limit too
            raw = stream.read(limit + 1)
            if len(raw) > limit:
                raise PayloadTooLarge(f"The request body is above {limit} bytes; at most {limit} are accepted.")
        max_depth = core_settings.MAX_JSON_DEPTH
        depth = json_depth(raw)
        if depth > max_depth:
            raise NestedTooDeep(f"JSON nested {depth} levels deep; at most {max_depth} are accepted.")
        return super().parse(io.BytesIO(raw), media_type, parser_context)
