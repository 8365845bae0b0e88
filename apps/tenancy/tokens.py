"""Token format: `bwk_<prefix>_<secret>`; the prefix finds the row, the secret's SHA-256 proves it."""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

TOKEN_PATTERN = re.compile(r"^bwk_([a-z0-9]{8})_([A-Za-z0-9_-]{43})$")


@dataclass(frozen=True)
class TokenParts:
    prefix: str
    secret: str


def generate() -> tuple[str, TokenParts]:
    prefix = "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(8))
    secret = secrets.token_urlsafe(32)
    return f"bwk_{prefix}_{secret}", TokenParts(prefix, secret)


def parse(raw: str) -> TokenParts | None:
    match = TOKEN_PATTERN.match(raw)
    return TokenParts(match.group(1), match.group(2)) if match else None


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret: str, secret_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), secret_hash)
