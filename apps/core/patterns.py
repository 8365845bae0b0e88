"""The one compiler of regular expressions that tenants supply: RE2, so matching runs in linear time.

Python's `re` backtracks: `^/(a+)+$` against `/aaaa…a!` takes exponential time and can stall a shared
worker for every tenant. RE2 (google-re2) guarantees time linear in the input and refuses what it cannot
do that way (backreferences, lookaround); a length cap keeps compilation and memory bounded too. Every app
that matches tenant patterns on the hot path compiles them here and validates them with `validate_pattern`.
"""
from __future__ import annotations

from functools import lru_cache

import re2
from django.core.exceptions import ValidationError

from apps.core.conf import core_settings

# 8 MiB is RE2's default program budget; patterns within the length cap stay far below it.
_MAX_MEM = 8 << 20


class PatternError(ValueError):
    """A pattern RE2 refuses or one longer than PATTERN_MAX_LENGTH; the message says which and why."""


def _options() -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # a refused pattern is a field message, not a line on stderr
    options.max_mem = _MAX_MEM
    return options


@lru_cache(maxsize=1024)
def _compile(pattern: str):
    try:
        return re2.compile(pattern, options=_options())
    except re2.error as exc:
        reason = exc.args[0] if exc.args else str(exc)
        if isinstance(reason, bytes):
            reason = reason.decode(errors="replace")
        raise PatternError(f"Not a pattern this service runs safely: {reason}. Backreferences and "
                           "lookaround are not supported (RE2 syntax).") from None


def compile_pattern(pattern: str):
    """A compiled RE2 pattern with `search`/`match`/`fullmatch` like `re`; raises PatternError."""
    limit = core_settings.PATTERN_MAX_LENGTH
    if len(pattern) > limit:
        raise PatternError(f"At most {limit} characters (this one has {len(pattern)}).")
    return _compile(pattern)


def pattern_error(pattern: str) -> str | None:
    """Why a stored pattern cannot be used (it was saved before these rules, or the cap was lowered)."""
    try:
        compile_pattern(pattern)
    except PatternError as exc:
        return str(exc)
    return None


def validate_pattern(pattern: str) -> None:
    """A model field validator (`validators=[validate_pattern]`) or a call from `clean()`."""
    error = pattern_error(pattern)
    if error is not None:
        raise ValidationError(error, code="invalid_pattern")
