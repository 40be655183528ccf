"""The batch in hand, as quix-streams' ``Checkpoint``: its records, when it is due, its offsets, its commit.

Records are added as they are polled; :meth:`Checkpoint.due` says when the
micro-batch closes (full, or ``max_wait_s`` after its first record);
:meth:`Checkpoint.commit` runs the steps in order: deliver every event and dead
letter and wait until the broker acknowledged them (sink flush), then commit
offset + 1 per partition (past a whole unreadable batch), skipping partitions revoked meanwhile (their next owner
reads them again from the last commit: duplicates, never losses).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from lmr.backoff import Backoff
from lmr.errors import BrokerError
from worker.events import OutRecord
from worker.parse import Message
from worker.sinks import Sink
from worker.sources import COMMIT_TIMEOUT_MS, Offsets, Partitions, Source

log = logging.getLogger(__name__)


class Checkpoint:
    """Up to ``size`` records, due ``max_wait_s`` after the first one arrived."""

    def __init__(self, size: int, max_wait_s: float) -> None:
        self.size = size
        self.max_wait_s = max_wait_s
        self.messages: list[Message] = []
        self.deadline: float | None = None
        self.lost: Partitions = set()  # revoked while this batch was being processed
        self.refused = False  # the group refused the commit (partitions moved): the new owner redoes them

    def __len__(self) -> int:
        return len(self.messages)

    def add(self, messages: Sequence[Message], now: float) -> None:
        if messages and not self.messages:
            self.deadline = now + self.max_wait_s
        self.messages.extend(messages)

    def room(self, limit: int | None = None) -> int:
        """How many more records fit (``limit``: an outer cap such as ``--max-messages`` left)."""
        room = self.size - len(self.messages)
        return room if limit is None else min(room, limit - len(self.messages))

    def due(self, now: float) -> bool:
        return bool(self.messages) and (len(self.messages) >= self.size or (self.deadline or now) <= now)

    def wait_s(self, now: float, idle_s: float) -> float:
        """How long the next poll may wait: until the batch is due, at most ``idle_s``."""
        return idle_s if self.deadline is None else max(0.0, min(idle_s, self.deadline - now))

    def drop(self, partitions: Partitions) -> Offsets:
        """Forget the records of revoked partitions (uncommitted: the new owner reads them again).

        Returns the first dropped offset per partition, where the consumer must resume if the
        partition comes back to this worker.
        """
        if not partitions:
            return {}
        self.lost |= partitions
        first: Offsets = {}
        kept = []
        for m in self.messages:
            key = (m.topic, m.partition)
            if key in partitions:
                first[key] = min(first.get(key, m.offset), m.offset)
            else:
                kept.append(m)
        self.messages = kept
        return first

    def owned(self, records: Sequence[OutRecord]) -> list[OutRecord]:
        """``records`` whose input partition was not revoked during the batch."""
        return [r for r in records if (r.source.topic, r.source.partition) not in self.lost]

    def offsets(self) -> Offsets:
        """Last offset + 1 per partition still owned."""
        out: Offsets = {}
        for m in self.messages:
            key = (m.topic, m.partition)
            if key not in self.lost:
                out[key] = max(out.get(key, 0), m.next_offset)
        return out

    def commit(
        self,
        sink: Sink,
        outputs: Sequence[OutRecord],
        dlq: Sequence[OutRecord],
        source: Source,
        *,
        backoff: Backoff,
        give_up: Callable[[], bool],
        time_left: Callable[[], float | None],
        apply_revocations: Callable[[], object],
        idle: Callable[[], None],
    ) -> Offsets | None:
        """Deliver (acknowledged), then commit: the committed offsets (empty if the group refused them,
        see ``refused``), or None when a stopping worker gave up (nothing of the batch committed)."""
        apply_revocations()  # the worker drops revoked partitions from this checkpoint (see drop())
        if not sink.deliver(self.owned(outputs), self.owned(dlq), give_up=give_up):
            return None
        while True:
            apply_revocations()
            offsets = self.offsets()
            left = time_left()
            timeout_ms = COMMIT_TIMEOUT_MS if left is None else int(min(COMMIT_TIMEOUT_MS, max(0.0, left) * 1000))
            try:
                if source.commit(offsets, timeout_ms):
                    return offsets
                self.refused = True
                return {}
            except BrokerError as exc:
                if give_up():
                    log.error("could not commit while stopping (%s); the batch will be redone", exc)
                    return None
                log.warning("%s; retrying in %.1fs", exc, backoff.delay)
            end = time.monotonic() + backoff.next_delay()
            while time.monotonic() < end and not give_up():
                idle()
                time.sleep(min(0.5, max(0.0, end - time.monotonic())))
