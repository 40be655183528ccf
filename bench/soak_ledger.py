"""The soak benchmark's books: every input offset sent, every event and dead letter read back, and progress.

:class:`Ledger` records each input record the broker acknowledged (partition, offset, kind) and each
output read back: an event names its input in ``lmr.source`` (value), a dead letter in its
``lmr.source.topic``/``partition``/``offset`` headers. An input offset is *accounted for* when an event
or a dead letter of it was read; *lost* when neither was. An output that names no input of the soak
(no or unreadable provenance, another topic, an offset never sent) is *unattributed*.

:class:`Progress` samples the group's committed offsets: a partition makes no progress while input is
waiting (offsets acknowledged past its committed offset) and its committed offset does not move.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

Position = tuple[int, int]  # (partition, offset) of an input record


def _header(headers: list[tuple[str, bytes]] | None, name: str) -> str | None:
    """The last value of header ``name``, decoded leniently (a forged one must not crash the books)."""
    found = None
    for k, v in headers or []:
        if k == name:
            found = (v or b"").decode("utf-8", "replace")
    return found


@dataclass
class Ledger:
    """Input offsets sent and the outputs read back, per input position (thread-safe)."""

    topic: str
    sent: dict[Position, str] = field(default_factory=dict)
    send_failed: Counter[str] = field(default_factory=Counter)
    high: dict[int, int] = field(default_factory=dict)  # partition -> last acknowledged offset + 1
    events: Counter[Position] = field(default_factory=Counter)
    dead: Counter[Position] = field(default_factory=Counter)
    reasons: dict[Position, set[str]] = field(default_factory=lambda: defaultdict(set))
    unattributed: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_sent(self, kind: str, partition: int, offset: int) -> None:
        with self.lock:
            self.sent[(partition, offset)] = kind
            self.high[partition] = max(self.high.get(partition, 0), offset + 1)

    def on_send_failed(self, kind: str) -> None:
        with self.lock:
            self.send_failed[kind] += 1

    def on_event(self, value: bytes | None) -> None:
        try:
            src = json.loads(value or b"")["lmr"]["source"]
            pos, topic = (int(src["partition"]), int(src["offset"])), str(src["topic"])
        except (ValueError, KeyError, TypeError):
            self._unattributed("event without a readable lmr.source")
            return
        with self.lock:
            if topic != self.topic or pos not in self.sent:
                self.unattributed[f"event naming {topic}/{pos[0]}/{pos[1]}, never sent"] += 1
            else:
                self.events[pos] += 1

    def on_dead_letter(self, headers: list[tuple[str, bytes]] | None) -> None:
        topic, part, off = (_header(headers, f"lmr.source.{h}") for h in ("topic", "partition", "offset"))
        reason = _header(headers, "lmr.error.reason") or "?"
        try:
            pos = (int(part or ""), int(off or ""))
        except ValueError:
            self._unattributed(f"dead letter ({reason}) without lmr.source.partition/offset")
            return
        with self.lock:
            if topic != self.topic or pos not in self.sent:
                self.unattributed[f"dead letter ({reason}) naming {topic}/{pos[0]}/{pos[1]}, never sent"] += 1
            else:
                self.dead[pos] += 1
                self.reasons[pos].add(reason)

    def _unattributed(self, what: str) -> None:
        with self.lock:
            self.unattributed[what] += 1

    def missing(self) -> list[Position]:
        """Input positions with neither an event nor a dead letter read back yet."""
        with self.lock:
            return sorted(p for p in self.sent if p not in self.events and p not in self.dead)

    def by_kind(self) -> dict[str, dict[str, Any]]:
        """Per kind: records sent, send failures, events, dead letters by reason, lost."""
        out: dict[str, dict[str, Any]] = {}
        with self.lock:
            for pos, kind in self.sent.items():
                row = out.setdefault(kind, {"sent": 0, "events": 0, "dead_letters": Counter(), "lost": 0})
                row["sent"] += 1
                if pos in self.events:
                    row["events"] += 1
                for reason in self.reasons.get(pos, ()):
                    row["dead_letters"][reason] += 1
                if pos not in self.events and pos not in self.dead:
                    row["lost"] += 1
            for kind, n in self.send_failed.items():
                out.setdefault(kind, {"sent": 0, "events": 0, "dead_letters": Counter(), "lost": 0})["send_failed"] = n
        return {k: {**v, "dead_letters": dict(v["dead_letters"])} for k, v in sorted(out.items())}

    def summary(self) -> dict[str, Any]:
        with self.lock:
            unique = set(self.events) | set(self.dead)
            written = sum(self.events.values()) + sum(self.dead.values())
            return {
                "records_in": len(self.sent),
                "send_failed": sum(self.send_failed.values()),
                "events_out": sum(self.events.values()),
                "dead_lettered": sum(self.dead.values()),
                "both_event_and_dead_letter": len(set(self.events) & set(self.dead)),
                "accounted": len(unique),
                "lost": len(self.sent) - len(unique),
                "duplicates": written - len(unique),
                "duplicate_share": round((written - len(unique)) / max(1, len(unique)), 5),
                "unattributed": dict(self.unattributed),
            }


@dataclass
class Progress:
    """Committed offsets over time: the longest stall of any partition, and recovery after each kill."""

    ledger: Ledger
    committed: dict[int, int] = field(default_factory=dict)
    since: dict[int, float] = field(default_factory=dict)  # partition -> when it last moved (or had no backlog)
    longest: tuple[float, int] = (0.0, -1)  # (seconds, partition)
    kills: list[dict[str, Any]] = field(default_factory=list)

    def observe(self, now: float, committed: dict[int, int]) -> None:
        """One sample of the group's committed offsets (partition -> next offset to read)."""
        with self.ledger.lock:
            high = dict(self.ledger.high)
        for p in sorted(set(high) | set(committed)):
            c = committed.get(p, 0)
            if c > self.committed.get(p, 0) or c >= high.get(p, 0) or p not in self.since:
                self.since[p] = now
            self.committed[p] = max(c, self.committed.get(p, 0))
            stalled = now - self.since[p]
            if stalled > self.longest[0]:
                self.longest = (stalled, p)
        for k in self.kills:
            if k["resumed_s"] is None and all(self.committed.get(p, 0) > h for p, h in k["high"].items()):
                k["resumed_s"] = round(now - k["at"], 1)

    def on_kill(self, now: float, worker: str, t0: float) -> None:
        """A worker was killed at ``now``: progress has resumed once every partition has committed a record
        sent after the kill (an offset past the partition's end at the kill), those of the killed worker too."""
        with self.ledger.lock:
            high = dict(self.ledger.high)
        self.kills.append({"worker": worker, "at": now, "at_s": round(now - t0, 1), "high": high, "resumed_s": None})

    def summary(self) -> dict[str, Any]:
        return {
            "longest_stall_s": round(self.longest[0], 1),
            "longest_stall_partition": self.longest[1],
            "kills": [{k: v for k, v in kill.items() if k not in ("at", "high")} for kill in self.kills],
        }


def sample_forever(progress: Progress, fetch: Any, stop: threading.Event, every_s: float = 1.0) -> None:
    """Feed ``progress`` with ``fetch()`` (partition -> committed offset) every ``every_s`` until ``stop``."""
    while not stop.wait(every_s):
        try:
            committed = fetch()
        except Exception:  # a sample lost to a broker hiccup is skipped, never fatal to the soak
            continue
        progress.observe(time.monotonic(), committed)
