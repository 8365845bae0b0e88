"""A stored response (or value) and its freshness: the bytes format shared by every backend."""
from __future__ import annotations

import hashlib
import json
import math
import random
from dataclasses import dataclass, field

_HEADER_LEN = 4


@dataclass
class Entry:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    etag: str
    stored_at: float
    ttl_s: int
    swr_s: int
    sie_s: int
    tag_versions: dict[str, int] = field(default_factory=dict)
    origin_ms: float = 0.0

    def encode(self) -> bytes:
        meta = json.dumps({
            "s": self.status, "h": self.headers, "e": self.etag, "t": self.stored_at, "ttl": self.ttl_s,
            "swr": self.swr_s, "sie": self.sie_s, "v": self.tag_versions, "o": self.origin_ms,
        }, separators=(",", ":")).encode()
        return len(meta).to_bytes(_HEADER_LEN, "big") + meta + self.body

    @classmethod
    def decode(cls, raw: bytes) -> Entry | None:
        """None for bytes that are not an entry (a foreign or truncated value is a miss, never a crash)."""
        try:
            size = int.from_bytes(raw[:_HEADER_LEN], "big")
            meta = json.loads(raw[_HEADER_LEN:_HEADER_LEN + size])
            return cls(
                status=int(meta["s"]), headers=[(k, v) for k, v in meta["h"]], body=raw[_HEADER_LEN + size:],
                etag=meta["e"], stored_at=float(meta["t"]), ttl_s=int(meta["ttl"]), swr_s=int(meta["swr"]),
                sie_s=int(meta["sie"]), tag_versions={k: int(v) for k, v in meta["v"].items()},
                origin_ms=float(meta.get("o", 0.0)),
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            return None

    def age_s(self, now: float) -> float:
        return max(0.0, now - self.stored_at)

    def is_fresh(self, now: float) -> bool:
        return self.age_s(now) < self.ttl_s

    def within_swr(self, now: float) -> bool:
        return self.age_s(now) < self.ttl_s + self.swr_s

    def within_stale_if_error(self, now: float) -> bool:
        return self.age_s(now) < self.ttl_s + self.sie_s

    def ttl_left_s(self, now: float) -> int:
        return math.floor(self.ttl_s - self.age_s(now))

    @property
    def store_ttl_ms(self) -> int:
        return int((self.ttl_s + max(self.swr_s, self.sie_s)) * 1000) + 1000

    def wants_early_refresh(self, now: float, beta: float, rand: random.Random) -> bool:
        """XFetch (Vattani et al.): refresh before expiry with a probability that rises as expiry nears."""
        if beta <= 0 or self.origin_ms <= 0:
            return False
        delta_s = self.origin_ms / 1000
        return now - delta_s * beta * math.log(max(rand.random(), 1e-12)) >= self.stored_at + self.ttl_s


def etag_of(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def etag_matches(if_none_match: str, etag: str) -> bool:
    """RFC 9110 weak comparison, as If-None-Match uses."""
    if not if_none_match:
        return False
    wanted = etag.removeprefix("W/")
    candidates = [c.strip() for c in if_none_match.split(",")]
    return any(c == "*" or c.removeprefix("W/") == wanted for c in candidates)


def adaptive_ttl_s(*, previous_ttl_s: int, unchanged: bool, ttl_min_s: int, ttl_max_s: int) -> int:
    """Grow by half while revalidation finds the same content; halve when it changed; stay in bounds."""
    proposed = math.ceil(previous_ttl_s * 1.5) if unchanged else previous_ttl_s // 2
    return max(ttl_min_s, min(ttl_max_s, proposed))
