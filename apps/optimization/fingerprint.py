"""SQL fingerprints: a statement with its literals and placeholders replaced, so one shape is one key."""
from __future__ import annotations

import hashlib
import re
from functools import lru_cache

_STRING = re.compile(r"'(?:[^']|'')*'")
_NUMBER = re.compile(r"(?<![\w\"])-?\d+(?:\.\d+)?\b")
_PLACEHOLDER = re.compile(r"%s|%\(\w+\)s|\?")
_LIST = re.compile(r"\(\s*\?(?:\s*,\s*\?)*\s*\)")
_SPACE = re.compile(r"\s+")
_LIMIT = re.compile(r"\bLIMIT\b", re.IGNORECASE)


@lru_cache(maxsize=4096)
def normalise(sql: str) -> str:
    """`SELECT ... WHERE id IN (%s, %s) AND name = 'x'` -> `SELECT ... WHERE id IN (...) AND name = ?`.
    Memoised: Django sends the same text with separate parameters, so a process sees few distinct texts."""
    text = _STRING.sub("?", sql)
    text = _PLACEHOLDER.sub("?", text)
    text = _NUMBER.sub("?", text)
    text = _LIST.sub("(...)", text)
    return _SPACE.sub(" ", text).strip()


@lru_cache(maxsize=4096)
def fingerprint(sql: str) -> str:
    return hashlib.blake2b(normalise(sql).encode(), digest_size=8).hexdigest()


@lru_cache(maxsize=4096)
def has_limit(sql: str) -> bool:
    return bool(_LIMIT.search(sql))


def is_select(sql: str) -> bool:
    return sql.lstrip()[:6].upper() == "SELECT"
