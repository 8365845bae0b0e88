"""One minute of one endpoint's figures: what the recorder sums in memory and every store adds up."""
from __future__ import annotations

from collections.abc import Iterable, Mapping

from apps.core import histogram

STATUS_CLASSES = (1, 2, 3, 4, 5)


class MinuteAgg:
    """Counts by status class, sums, min/max and the latency histogram of one (tenant, route, method, minute)."""

    __slots__ = ("classes", "duration_ms_sum", "duration_ms_min", "duration_ms_max", "db_ms_sum", "queries_sum",
                 "bytes_sum", "hist")

    def __init__(self) -> None:
        self.classes = [0, 0, 0, 0, 0, 0]  # index = status class (1..5); 0 unused
        self.duration_ms_sum = 0.0
        self.duration_ms_min = float("inf")
        self.duration_ms_max = 0.0
        self.db_ms_sum = 0.0
        self.queries_sum = 0
        self.bytes_sum = 0
        self.hist: dict[int, int] = {}

    @property
    def count(self) -> int:
        return sum(self.classes)

    @property
    def errors(self) -> int:
        return self.classes[5]

    def add(self, status_class: int, duration_ms: float, db_ms: float, queries: int, size: int) -> None:
        self.classes[status_class] += 1
        self.duration_ms_sum += duration_ms
        if duration_ms < self.duration_ms_min:
            self.duration_ms_min = duration_ms
        if duration_ms > self.duration_ms_max:
            self.duration_ms_max = duration_ms
        self.db_ms_sum += db_ms
        self.queries_sum += queries
        self.bytes_sum += size
        bucket = histogram.bucket_of(duration_ms)
        self.hist[bucket] = self.hist.get(bucket, 0) + 1

    def merge(self, other: MinuteAgg) -> MinuteAgg:
        for i in STATUS_CLASSES:
            self.classes[i] += other.classes[i]
        self.duration_ms_sum += other.duration_ms_sum
        self.duration_ms_min = min(self.duration_ms_min, other.duration_ms_min)
        self.duration_ms_max = max(self.duration_ms_max, other.duration_ms_max)
        self.db_ms_sum += other.db_ms_sum
        self.queries_sum += other.queries_sum
        self.bytes_sum += other.bytes_sum
        for bucket, n in other.hist.items():
            self.hist[bucket] = self.hist.get(bucket, 0) + n
        return self

    # The flat field form used by the Redis hash (and parsed back from it).
    def to_fields(self) -> dict[str, float]:
        fields: dict[str, float] = {f"c{i}": self.classes[i] for i in STATUS_CLASSES if self.classes[i]}
        fields.update(dur=self.duration_ms_sum, db=self.db_ms_sum, q=self.queries_sum, bytes=self.bytes_sum)
        fields.update({f"h{b}": n for b, n in self.hist.items()})
        return fields

    @classmethod
    def from_fields(cls, fields: Mapping[str | bytes, str | bytes]) -> MinuteAgg:
        agg = cls()
        for raw_name, raw_value in fields.items():
            name = raw_name.decode() if isinstance(raw_name, bytes) else raw_name
            value = float(raw_value)
            if name.startswith("h"):
                agg.hist[int(name[1:])] = int(value)
            elif name.startswith("c"):
                agg.classes[int(name[1:])] = int(value)
            elif name == "dur":
                agg.duration_ms_sum = value
            elif name == "min":
                agg.duration_ms_min = value
            elif name == "max":
                agg.duration_ms_max = value
            elif name == "db":
                agg.db_ms_sum = value
            elif name == "q":
                agg.queries_sum = int(value)
            elif name == "bytes":
                agg.bytes_sum = int(value)
        return agg

    @classmethod
    def merged(cls, aggs: Iterable[MinuteAgg]) -> MinuteAgg:
        total = cls()
        for agg in aggs:
            total.merge(agg)
        return total
