"""Replay an archived stream (JSONL of posts, e.g. IDRISI) into a topic in ``created_at`` order.

Each record keeps its original line bytes as value, ``created_at`` (Twitter
``Wed Aug 30 21:18:07 +0000 2017`` or ISO 8601) as its timestamp (ms) and the
post id as key. Pacing: ``rate`` records/s, ``speed`` x the original time gaps,
or as fast as possible.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lmr.errors import DataError
from lmr.posts import DEFAULT_ID_FIELD, post_id

log = logging.getLogger(__name__)

TWITTER_FORMAT = "%a %b %d %H:%M:%S %z %Y"


def parse_created_at(value: Any) -> int | None:
    """Milliseconds since the epoch, from Twitter's format, ISO 8601, or epoch seconds/ms; None if unknown."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        v = float(value)
        return int(v if v > 1e11 else v * 1000)
    if not isinstance(value, str) or not value.strip():
        return None
    s = value.strip()
    for parse in (
        lambda x: datetime.strptime(x, TWITTER_FORMAT),
        lambda x: datetime.fromisoformat(x.replace("Z", "+00:00")),
    ):
        try:
            dt = parse(s)
        except ValueError:
            continue
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        return int(dt.timestamp() * 1000)
    return None


@dataclass(frozen=True)
class ReplayRecord:
    value: bytes
    key: bytes | None
    timestamp_ms: int | None
    order: int


def read_records(
    paths: Sequence[str | Path], *, id_field: str = DEFAULT_ID_FIELD, time_field: str = "created_at"
) -> list[ReplayRecord]:
    """All non-blank lines of ``paths``, sorted by timestamp (records without one keep file order, at the end)."""
    recs: list[ReplayRecord] = []
    for path in paths:
        p = Path(path)
        if not p.is_file():
            raise DataError(f"Replay file {p} does not exist.", "pass existing JSONL files.")
        with p.open("rb") as f:
            for raw in f:
                raw = raw.rstrip(b"\r\n")
                if not raw.strip():
                    continue
                key = ts = None
                try:
                    obj = json.loads(raw)
                except (ValueError, UnicodeDecodeError):
                    obj = None
                if isinstance(obj, dict):
                    ts = parse_created_at(obj.get(time_field))
                    pid = post_id(obj, id_field)
                    key = pid.encode("utf-8") if pid is not None else None
                recs.append(ReplayRecord(raw, key, ts, len(recs)))
    recs.sort(key=lambda r: (r.timestamp_ms is None, r.timestamp_ms or 0, r.order))
    return recs


class Pacer:
    """Sleeps so that records go out at ``rate`` per second, or ``speed`` x real time, or at once."""

    def __init__(
        self, *, rate: float | None = None, speed: float | None = None, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self.rate, self.speed, self.sleep = rate, speed, sleep
        self.t0 = time.monotonic()
        self.first_ts: int | None = None
        self.n = 0

    def wait(self, rec: ReplayRecord) -> None:
        target = None
        if self.rate:
            target = self.n / self.rate
        elif self.speed and rec.timestamp_ms is not None:
            if self.first_ts is None:
                self.first_ts = rec.timestamp_ms
            target = (rec.timestamp_ms - self.first_ts) / 1000 / self.speed
        self.n += 1
        if target is not None:
            delay = target - (time.monotonic() - self.t0)
            if delay > 0:
                self.sleep(delay)


def replay(
    producer: Any,
    topic: str,
    records: Iterable[ReplayRecord],
    *,
    rate: float | None = None,
    speed: float | None = None,
    keep_timestamps: bool = True,
) -> dict[str, Any]:
    """Send ``records`` to ``topic`` with pacing; flushes at the end; returns counts and timing."""
    pacer = Pacer(rate=rate, speed=speed)
    t0 = time.perf_counter()
    n = 0
    futures = []
    for rec in records:
        pacer.wait(rec)
        ts = rec.timestamp_ms if keep_timestamps else None
        futures.append(producer.send(topic, value=rec.value, key=rec.key, timestamp_ms=ts))
        n += 1
    producer.flush()
    failed = sum(1 for f in futures if f.failed())
    wall = time.perf_counter() - t0
    return {
        "sent": n - failed,
        "failed": failed,
        "seconds": round(wall, 3),
        "per_s": round(n / wall, 1) if wall > 0 else None,
    }
