"""OpenAPI hook: every operation documents the one error shape for the refusals any endpoint can answer."""
from __future__ import annotations

ERROR_COMPONENT = "Error"
ERROR_SCHEMA = {
    "type": "object",
    "description": "The one error shape of every refusal and failure.",
    "properties": {
        "status": {"type": "integer", "description": "The HTTP status, repeated."},
        "code": {"type": "string", "description": "Machine-readable reason, e.g. invalid, not_found, throttled."},
        "message": {"type": "string", "description": "Human-readable reason."},
        "errors": {
            "type": "object",
            "description": "Field-level messages: {field: [message, …]} (nested for nested fields).",
            "additionalProperties": True,
        },
        "retry_after_s": {"type": "number", "description": "Seconds to wait (429, 503)."},
    },
    "required": ["status", "code", "message", "errors"],
}
ERROR_STATUSES = {
    "400": "Invalid input (field-level messages in `errors`), malformed or too deeply nested JSON, too many parameters.",
    "401": "No or invalid credentials.",
    "403": "The principal's role or tenant does not allow this.",
    "404": "No such object in the active tenant, or no such endpoint.",
    "409": "Conflicts with the current state (e.g. a protected or already finished object).",
    "413": "The request body is too large.",
    "429": "Rate limited or locked out after failed sign-ins; see Retry-After.",
    "503": "No database connection was free in time; see Retry-After.",
}
METHODS = {"get", "put", "patch", "post", "delete", "head", "options", "trace"}


def document_error_responses(result: dict, generator, request, public) -> dict:
    """drf-spectacular postprocessing hook: adds the error responses to every operation that lacks them."""
    result.setdefault("components", {}).setdefault("schemas", {})[ERROR_COMPONENT] = ERROR_SCHEMA
    ref = {"$ref": f"#/components/schemas/{ERROR_COMPONENT}"}
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            if method not in METHODS:
                continue
            responses = operation.setdefault("responses", {})
            for status, description in ERROR_STATUSES.items():
                responses.setdefault(status, {"description": description,
                                              "content": {"application/json": {"schema": ref}}})
    return result
