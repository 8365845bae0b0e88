"""Regular series from timestamped points, and the CSV layout the commands read and write (no Django)."""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np


class SeriesError(ValueError):
    """The input is not a usable series (the message says which row and why)."""


@dataclass
class Series:
    timestamps_s: np.ndarray   # epoch seconds, sorted, regular
    values: np.ndarray
    step_s: float

    @property
    def start_s(self) -> float:
        return float(self.timestamps_s[0])


def parse_timestamp(text: str) -> float:
    text = text.strip()
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise SeriesError(f"not a timestamp: {text!r}") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def format_timestamp(epoch_s: float) -> str:
    return datetime.fromtimestamp(round(epoch_s), tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def read_csv(text: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(timestamp strings, epoch seconds, values) of a `timestamp,value` CSV; rows kept in file order (real
    exports repeat a timestamp or step back an hour now and then: the detector scores rows as they come,
    `regularise` sorts)."""
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None or [h.strip().lower() for h in header[:2]] != ["timestamp", "value"]:
        raise SeriesError("the first row must be the header `timestamp,value`")
    raw, stamps, values = [], [], []
    for lineno, row in enumerate(reader, start=2):
        if not row or not "".join(row).strip():
            continue
        if len(row) < 2:
            raise SeriesError(f"line {lineno}: expected `timestamp,value`")
        stamps.append(parse_timestamp(row[0]))
        try:
            values.append(float(row[1]))
        except ValueError:
            raise SeriesError(f"line {lineno}: not a number: {row[1]!r}") from None
        raw.append(row[0])
    ts = np.asarray(stamps, dtype=float)
    v = np.asarray(values, dtype=float)
    if len(ts) and not np.all(np.isfinite(v)):
        raise SeriesError("values must be finite numbers")
    return raw, ts, v


def median_step(timestamps_s: np.ndarray) -> float:
    """The usual spacing of the rows (repeated timestamps ignored); one hour for a single row."""
    gaps = np.diff(timestamps_s)
    gaps = gaps[gaps > 0]
    return float(np.median(gaps)) if len(gaps) else 3600.0


def regularise(timestamps_s: np.ndarray, values: np.ndarray, step_s: float) -> Series:
    """Mean per step bucket on a regular grid from the first point; empty buckets carry the last value."""
    if len(timestamps_s) == 0:
        return Series(np.zeros(0), np.zeros(0), step_s)
    order = np.argsort(timestamps_s, kind="stable")
    timestamps_s, values = timestamps_s[order], values[order]
    start = float(timestamps_s[0])
    idx = np.floor((timestamps_s - start) / step_s + 1e-9).astype(int)
    n = int(idx[-1]) + 1
    sums = np.bincount(idx, weights=values, minlength=n)
    counts = np.bincount(idx, minlength=n)
    out = np.full(n, np.nan)
    have = counts > 0
    out[have] = sums[have] / counts[have]
    last = np.where(have, np.arange(n), -1)
    np.maximum.accumulate(last, out=last)
    out = out[last]
    return Series(start + step_s * np.arange(n), out, step_s)


def parse_step(text: str) -> float:
    """'1h', '30m', '300s', '1d' -> seconds."""
    text = text.strip().lower()
    units = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
    if len(text) < 2 or text[-1] not in units:
        raise SeriesError(f"step {text!r}: use a number and a unit (s, m, h, d), e.g. 1h")
    try:
        amount = float(text[:-1])
    except ValueError:
        raise SeriesError(f"step {text!r}: use a number and a unit (s, m, h, d), e.g. 1h") from None
    if amount <= 0:
        raise SeriesError("step must be positive")
    return amount * units[text[-1]]
