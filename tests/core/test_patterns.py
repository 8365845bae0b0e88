"""Tenant-supplied regular expressions: RE2 (linear time), refused at validation when RE2 cannot run them."""
from __future__ import annotations

import re
import signal
from contextlib import contextmanager

import pytest
from django.core.exceptions import ValidationError
from django.test import override_settings

from apps.core.patterns import PatternError, compile_pattern, pattern_error, validate_pattern

CATASTROPHIC = r"^/(a+)+$"
ATTACK_PATH = "/" + "a" * 40 + "!"  # Python's re takes ~2**40 steps on this; RE2 one pass


@contextmanager
def hang_guard(seconds: int = 10):
    """Turns a hang (backtracking) into a failure instead of a stalled test run; not a speed assertion."""
    def fail(signum, frame):
        raise AssertionError(f"pattern matching did not finish within {seconds} s")

    previous = signal.signal(signal.SIGALRM, fail)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_the_catastrophic_pattern_is_compiled_by_re2_and_does_not_backtrack():
    compiled = compile_pattern(CATASTROPHIC)
    assert not isinstance(compiled, re.Pattern)
    with hang_guard():
        assert compiled.search(ATTACK_PATH) is None
    assert compiled.search("/aaaa") is not None


@pytest.mark.parametrize("pattern", [r"^/(a)\1$", r"^/(?=admin)", r"^/x(?!y)", r"(?<=a)b", "(["])
def test_what_re2_cannot_run_is_refused_with_a_reason(pattern):
    with pytest.raises(PatternError):
        compile_pattern(pattern)
    with pytest.raises(ValidationError) as refused:
        validate_pattern(pattern)
    assert "Not a pattern this service runs safely" in refused.value.messages[0]


def test_patterns_longer_than_the_setting_are_refused():
    with override_settings(BULWARK={"CORE": {"PATTERN_MAX_LENGTH": 10}}):
        assert pattern_error("^/abcdefgh") is None
        assert "At most 10 characters" in pattern_error("^/abcdefghi")
    assert pattern_error("^/" + "a" * 509) is None  # the default cap is 512
    assert "At most 512" in pattern_error("^/" + "a" * 511)
