"""Label matchers of rules and silences, compiled once: `{"route": "api/v1/x"}` is exact, `"=~<RE2>"` a
full-match pattern, `"!=<value>"` and `"!~<RE2>"` their negations (Alertmanager's four operators)."""
from __future__ import annotations

import string
from collections.abc import Callable, Mapping

from apps.core.patterns import PatternError, compile_pattern

Matcher = Callable[[Mapping[str, str]], bool]
LABEL_NAME_MAX = 100
VALUE_MAX = 500


def is_label_name(name) -> bool:
    """Letters, digits and _, 1 to LABEL_NAME_MAX characters."""
    return isinstance(name, str) and 0 < len(name) <= LABEL_NAME_MAX and name.replace("_", "a").isalnum()


def _one(name: str, spec: str) -> Callable[[Mapping[str, str]], bool]:
    if spec.startswith("=~") or spec.startswith("!~"):
        pattern = compile_pattern(spec[2:])
        negate = spec.startswith("!")
        return lambda labels: (pattern.fullmatch(labels.get(name, "")) is None) is negate
    if spec.startswith("!="):
        value = spec[2:]
        return lambda labels: labels.get(name, "") != value
    return lambda labels: labels.get(name, "") == spec


def matcher_errors(matchers) -> list[str]:
    """Why a matchers object cannot be used (empty list: it can)."""
    if not isinstance(matchers, dict):
        return ["Must be an object of label name to value (exact), '=~<pattern>', '!=<value>' or '!~<pattern>'."]
    errors = []
    for name, spec in matchers.items():
        if not is_label_name(name):
            errors.append(f"{name!r} is not a label name (letters, digits and _).")
        elif not isinstance(spec, str) or len(spec) > VALUE_MAX:
            errors.append(f"{name}: the value must be a string of at most {VALUE_MAX} characters.")
        elif spec[:2] in ("=~", "!~"):
            try:
                compile_pattern(spec[2:])
            except PatternError as exc:
                errors.append(f"{name}: {exc}")
    return errors


def compile_matchers(matchers: Mapping[str, str]) -> Matcher:
    """One callable over a label dict; all matchers must hold (no matchers: everything matches)."""
    parts = [_one(name, spec) for name, spec in sorted(matchers.items())]
    if not parts:
        return lambda labels: True
    if len(parts) == 1:
        return parts[0]
    return lambda labels: all(part(labels) for part in parts)


class _Values(dict):
    """A template's values: an unknown name renders as itself rather than failing a notification."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def template_errors(template: str) -> list[str]:
    """Templates take `{name}` fields only: attribute and index access (`{value.__class__}`) are refused."""
    try:
        fields = [field for _text, field, _spec, _conv in string.Formatter().parse(template) if field is not None]
    except ValueError as exc:
        return [f"Not a template: {exc}."]
    return [f"{{{field}}}: only plain names such as {{value}} or {{route}}." for field in fields
            if not field.isidentifier()]


def render(template: str, values: Mapping[str, object]) -> str:
    try:
        return template.format_map(_Values(values))
    except (ValueError, IndexError, KeyError):
        return template
