"""What each channel kind's `config` holds, which of its keys are secrets, and their validation.

Secret keys are given in `config` on create or update like any other, kept apart in `Channel.secrets`,
never shown again (the API and admin show them masked) and masked in audit diffs.
"""
from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from apps.alerting.matching import template_errors
from apps.core.audited import MASK

# kind -> (keys that may appear, keys that must appear, secret keys)
SCHEMA: dict[str, tuple[set[str], set[str], set[str]]] = {
    "webhook": ({"url"}, {"url"}, set()),
    "slack": ({"webhook_url"}, {"webhook_url"}, {"webhook_url"}),
    "email": ({"to", "subject_prefix"}, {"to"}, set()),
    "sms": ({"url", "to", "from", "body", "content_type", "auth_header", "auth"}, {"url", "to"}, {"auth"}),
    "dashboard": (set(), set(), set()),
}
# The SMS body: an object of fields, each a template over {to}, {from} and {message}. The default suits
# providers that take JSON; Twilio's form fields are the README's example.
SMS_DEFAULT_BODY = {"to": "{to}", "from": "{from}", "text": "{message}"}


def secret_keys(kind: str) -> set[str]:
    return SCHEMA.get(kind, (set(), set(), set()))[2]


def split_secrets(kind: str, config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(shown config, secrets) of a config as given."""
    keys = secret_keys(kind)
    return ({k: v for k, v in config.items() if k not in keys}, {k: v for k, v in config.items() if k in keys})


def masked(kind: str, config: dict[str, Any], secrets: dict[str, Any]) -> dict[str, Any]:
    return {**config, **{key: MASK for key in secret_keys(kind) if secrets.get(key)}}


def _url_error(value: Any) -> str | None:
    if not isinstance(value, str) or len(value) > 2000:
        return "must be a URL of at most 2000 characters"
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an http:// or https:// URL"
    return None


def config_errors(kind: str, config: Any, secrets: Any) -> list[str]:
    if kind not in SCHEMA:
        return []  # the kind field reports it
    if not isinstance(config, dict):
        return ["Must be an object."]
    allowed, required, _secret = SCHEMA[kind]
    merged = {**config, **(secrets or {})}
    errors = [f"{key}: unknown for a {kind} channel (known: {', '.join(sorted(allowed)) or 'none'})."
              for key in sorted(set(merged) - allowed)]
    errors += [f"{key}: required for a {kind} channel." for key in sorted(required - set(merged))]
    for key in ("url", "webhook_url"):
        if key in merged and (problem := _url_error(merged[key])):
            errors.append(f"{key}: {problem}.")
    if kind == "email" and "to" in merged:
        errors += _email_errors(merged["to"])
    if kind == "sms":
        errors += _sms_errors(merged)
    for key in ("subject_prefix", "from", "to", "auth", "auth_header"):
        if kind != "email" and key in merged and (not isinstance(merged[key], str) or len(merged[key]) > 500):
            errors.append(f"{key}: must be a string of at most 500 characters.")
    return errors


def _email_errors(to: Any) -> list[str]:
    if not isinstance(to, list) or not to or len(to) > 50:
        return ["to: must be a list of 1 to 50 email addresses."]
    errors = []
    for address in to:
        try:
            validate_email(address)
        except (ValidationError, TypeError):
            errors.append(f"to: {address!r} is not an email address.")
    return errors


def _sms_errors(config: dict[str, Any]) -> list[str]:
    errors = []
    if config.get("content_type", "json") not in ("json", "form"):
        errors.append("content_type: 'json' or 'form'.")
    body = config.get("body", SMS_DEFAULT_BODY)
    if not isinstance(body, dict) or not body or not all(isinstance(v, str) for v in body.values()):
        errors.append("body: must be an object of field names to templates over {to}, {from} and {message}.")
    else:
        errors += [f"body.{key}: {e}" for key, text in body.items() for e in template_errors(text)]
    return errors
