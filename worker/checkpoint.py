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
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from lmr.backoff import Backoff
from lmr.errors import BrokerError
from worker.events import OutRecord
from worker.parse import Message
from worker.sinks import Sink
from worker.sources import COMMIT_TIMEOUT_MS, Offsets, Partitions, Source

log = logging.getLogger(__name__)


class Delivery(Protocol):
    """What a batch hands the sink: its events and its dead letters (a ``BatchResult``)."""

    @property
    def outputs(self) -> Sequence[OutRecord]: ...

    @property
    def dlq(self) -> Sequence[OutRecord]: ...


class Waiter(Protocol):
    """The worker while the checkpoint waits on the broker: it keeps the group membership (``idle``), drops
    partitions revoked meanwhile from the checkpoint (``apply_revocations``) and, once stopping, says how
    long the drain may still take (``time_left``) and when to give up."""

    def apply_revocations(self) -> object: ...

    def idle(self) -> None: ...

    def give_up(self) -> bool: ...

    def time_left(self) -> float | None: ...

    def backoff(self) -> Backoff: ...


@dataclass(frozen=True)
class Committed:
    """The outcome of a delivered batch: the offsets committed, or ``refused`` (partitions moved: none)."""

    offsets: Offsets
    refused: bool = False


class CheckpointAbandoned(RuntimeError):
    """A stopping worker ran out of drain time: nothing of the batch is committed; the next worker redoes it."""


class DeliveryAbandoned(CheckpointAbandoned):
    """Stopped before the broker acknowledged every event and dead letter of the batch."""


class CommitAbandoned(CheckpointAbandoned):
    """The batch was delivered but the offsets could not be committed before the drain time ran out."""


class Checkpoint:
    """Up to ``size`` records, due ``max_wait_s`` after the first one arrived."""

    def __init__(self, size: int, max_wait_s: float) -> None:
        self.size = size
        self.max_wait_s = max_wait_s
        self.messages: list[Message] = []
        self.deadline: float | None = None
        self.lost: Partitions = set()  # revoked while this batch was being processed

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

    def commit(self, sink: Sink, source: Source, result: Delivery, *, waiter: Waiter) -> Committed:
        """Deliver (acknowledged), then commit offset + 1 per partition still owned.

        Returns :class:`Committed` (``refused`` when the group refused the offsets: partitions moved, their
        new owner redoes them); raises :class:`DeliveryAbandoned` or :class:`CommitAbandoned` when a stopping
        worker gave up (nothing of the batch committed: it will be redone).
        """
        waiter.apply_revocations()  # the worker drops revoked partitions from this checkpoint (see drop())
        if not sink.deliver(self.owned(result.outputs), self.owned(result.dlq), give_up=waiter.give_up):
            raise DeliveryAbandoned("stopped before the broker acknowledged the batch; it will be redone")
        backoff = waiter.backoff()
        while True:
            waiter.apply_revocations()
            offsets = self.offsets()
            left = waiter.time_left()
            timeout_ms = COMMIT_TIMEOUT_MS if left is None else int(min(COMMIT_TIMEOUT_MS, max(0.0, left) * 1000))
            try:
                if source.commit(offsets, timeout_ms):
                    return Committed(offsets)
                return Committed({}, refused=True)
            except BrokerError as exc:
                if waiter.give_up():
                    log.error("could not commit while stopping (%s); the batch will be redone", exc)
                    raise CommitAbandoned(f"could not commit while stopping: {exc}") from exc
                log.warning("%s; retrying in %.1fs", exc, backoff.delay)
            end = time.monotonic() + backoff.next_delay()
            while time.monotonic() < end and not waiter.give_up():
                waiter.idle()
                time.sleep(min(0.5, max(0.0, end - time.monotonic())))
