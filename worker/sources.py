"""Input sources: a Kafka consumer group member (manual commits) or a JSONL file."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Protocol

from lmr.backoff import Backoff
from lmr.errors import BrokerError
from worker.connect import connect
from worker.parse import Message
from worker.record_batches import guard_fetches
from worker.settings import KafkaSettings

log = logging.getLogger(__name__)

Offsets = dict[tuple[str, int], int]  # (topic, partition) -> next offset to read
Partitions = set[tuple[str, int]]
COMMIT_TIMEOUT_MS = 10_000  # longest one commit call may block (less while stopping)


class Source(Protocol):
    def poll(self, max_records: int, timeout_ms: int) -> list[Message]: ...

    def commit(self, offsets: Offsets, timeout_ms: int = COMMIT_TIMEOUT_MS) -> bool: ...

    def assigned(self) -> int: ...

    def end_offsets(self) -> dict[tuple[str, int], int]: ...
    def take_revoked(self) -> Partitions:
        """Partitions revoked (or lost) since the last call: their uncommitted records belong to the next owner."""
        ...

    def keepalive(self) -> list[Message]:
        """Stay a live group member while a batch is held (no new records for it); returns any records seen."""
        ...

    def take_assigned(self) -> Partitions | None:
        """The partitions of the last completed assignment since the last call, or None."""
        ...

    def connected(self) -> bool:
        """Whether the broker (group coordinator) is reachable, as far as the client knows."""
        ...

    @property
    def exhausted(self) -> bool: ...

    def close(self, timeout_s: float = 5.0) -> None:
        """Leave the group and release the client, waiting at most ``timeout_s``."""
        ...


class FileSource:
    """JSONL lines as messages: topic = ``file:PATH``, partition 0, offset = line index (0-based)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.topic = f"file:{self.path}"
        self._f = self.path.open("rb")
        self._line = 0
        self._done = False
        self.committed: Offsets = {}

    def poll(self, max_records: int, timeout_ms: int) -> list[Message]:
        out: list[Message] = []
        while len(out) < max_records and not self._done:
            raw = self._f.readline()
            if not raw:
                self._done = True
                break
            i = self._line
            self._line += 1
            raw = raw.rstrip(b"\r\n")
            if raw.strip():
                out.append(Message(raw, self.topic, 0, i))
        return out

    def commit(self, offsets: Offsets, timeout_ms: int = COMMIT_TIMEOUT_MS) -> bool:
        self.committed.update(offsets)
        return True

    def assigned(self) -> int:
        return 1

    def end_offsets(self) -> dict[tuple[str, int], int]:
        return {}

    def take_revoked(self) -> Partitions:
        return set()

    def keepalive(self) -> list[Message]:
        return []

    def take_assigned(self) -> Partitions | None:
        return None

    def connected(self) -> bool:
        return True

    @property
    def exhausted(self) -> bool:
        return self._done

    def close(self, timeout_s: float = 5.0) -> None:
        """A file closes at once (``timeout_s`` is for the protocol)."""
        self._f.close()


class _TopicPartition(Protocol):
    topic: str
    partition: int


def _pairs(tps: Iterable[_TopicPartition]) -> list[tuple[str, int]]:
    return sorted((tp.topic, tp.partition) for tp in tps)


class KafkaSource:
    """A consumer-group member with manual commits.

    kafka-python 3 runs the rebalance listener on its network thread, inside the
    main thread's ``poll``. The listener therefore only records what was revoked
    or lost (no model, no delivery, no commit there; a commit from that thread
    would raise "Cannot block on net.run() from the IO thread itself"); the worker
    drops the uncommitted records of partitions the new assignment gives to another
    member (their new owner reads them again from the last commit) and commits only
    partitions it still owns (see :mod:`worker.app`).
    """

    def __init__(
        self,
        kafka: KafkaSettings,
        topic: str,
        *,
        backoff: Backoff,
        on_assigned: Callable[[list[tuple[str, int]]], None] | None = None,
    ) -> None:
        from kafka import ConsumerRebalanceListener, KafkaConsumer
        from kafka.errors import KafkaError

        self.topic = topic
        self.kafka = kafka
        self._on_assigned = on_assigned
        self._revoked: Partitions = set()
        self._assigned: Partitions | None = None  # the last assignment not yet taken by take_assigned()
        self._lock = threading.Lock()
        self.consumer = connect(
            lambda: KafkaConsumer(**kafka.consumer()), kafka.bootstrap_servers, backoff=backoff, errors=(KafkaError,)
        )
        guard_fetches(self.consumer)  # a record kafka-python cannot read comes back marked, never raises
        src = self

        class Listener(ConsumerRebalanceListener):  # type: ignore[misc]
            """Runs on kafka-python's network thread: record and return, never block."""

            def on_partitions_revoked(self, revoked: Iterable[_TopicPartition]) -> None:
                tps = _pairs(revoked)
                log.info("partitions revoked: %s", tps)
                with src._lock:
                    src._revoked.update(tps)

            def on_partitions_lost(self, lost: Iterable[_TopicPartition]) -> None:
                tps = _pairs(lost)
                log.warning("partitions lost (group membership expired): %s", tps)
                with src._lock:
                    src._revoked.update(tps)

            def on_partitions_assigned(self, assigned: Iterable[_TopicPartition]) -> None:
                tps = _pairs(assigned)
                log.info("partitions assigned: %s", tps)
                with src._lock:
                    src._assigned = set(tps)
                if src._on_assigned is not None:
                    src._on_assigned(tps)

        self.consumer.subscribe([topic], listener=Listener())

    def take_revoked(self) -> Partitions:
        with self._lock:
            out, self._revoked = self._revoked, set()
        return out

    def poll(self, max_records: int, timeout_ms: int) -> list[Message]:
        records = self.consumer.poll(timeout_ms=timeout_ms, max_records=max(1, max_records))
        out = []
        for tp_records in records.values():
            for r in tp_records:
                headers = tuple((str(k), None if v is None else bytes(v)) for k, v in (r.headers or []))
                ts = r.timestamp if isinstance(r.timestamp, int) and r.timestamp >= 0 else None
                error, last = getattr(r, "error", None), getattr(r, "last_offset", None)  # see record_batches
                out.append(Message(r.value, r.topic, r.partition, r.offset, r.key, headers, ts, error, last))
        return out

    def keepalive(self) -> list[Message]:
        """Poll with every assigned partition paused: resets ``max.poll.interval.ms`` without taking work.

        Partitions assigned during this poll (a rebalance) are not paused: their records are returned.
        """
        self.consumer.pause(*self.consumer.assignment())
        try:
            return self.poll(self.kafka.max_poll_records, 0)
        finally:
            self.consumer.resume(*self.consumer.paused())

    def take_assigned(self) -> Partitions | None:
        """The partitions of the last completed assignment since the last call, or None."""
        with self._lock:
            out, self._assigned = self._assigned, None
        return out

    def connected(self) -> bool:
        coordinator = getattr(self.consumer, "_coordinator", None)
        try:
            return coordinator is None or not coordinator.coordinator_unknown()
        except Exception:  # pragma: no cover - a kafka-python without this internal: assume reachable
            return True

    def commit(self, offsets: Offsets, timeout_ms: int = COMMIT_TIMEOUT_MS) -> bool:
        """Commit synchronously; False when the group moved on (the new owner redoes the work).

        Raises :class:`BrokerError` on a retriable failure (broker unreachable, timeout).
        """
        from kafka import OffsetAndMetadata, TopicPartition
        from kafka.errors import (
            CommitFailedError,
            IllegalGenerationError,
            IllegalStateError,
            KafkaError,
            RebalanceInProgressError,
            UnknownMemberIdError,
        )

        if not offsets:
            return True
        payload = {TopicPartition(t, p): OffsetAndMetadata(o, "", -1) for (t, p), o in offsets.items()}
        try:
            self.consumer.commit(offsets=payload, timeout_ms=max(1, timeout_ms))
            return True
        except (
            CommitFailedError,
            IllegalStateError,
            RebalanceInProgressError,
            UnknownMemberIdError,
            IllegalGenerationError,
        ) as exc:
            log.warning("offset commit refused (partitions were reassigned); the new owner will redo them: %s", exc)
            return False
        except KafkaError as exc:
            raise BrokerError(f"offset commit failed: {exc!r}", "the worker retries; check the broker.") from exc

    def assigned(self) -> int:
        return len(self.consumer.assignment())

    def end_offsets(self) -> dict[tuple[str, int], int]:
        """High watermark per assigned partition, as last seen in fetch responses (no request)."""
        out = {}
        for tp in self.consumer.assignment():
            hw = self.consumer.highwater(tp)
            if hw is not None:
                out[(tp.topic, tp.partition)] = int(hw)
        return out

    @property
    def exhausted(self) -> bool:
        return False

    def close(self, timeout_s: float = 5.0) -> None:
        """Leave the group (no auto-commit), waiting at most ``timeout_s``."""
        try:
            self.consumer.close(autocommit=False, timeout_ms=int(max(0.0, timeout_s) * 1000))
        except TypeError:  # a kafka-python without close(timeout_ms=)
            self.consumer.close(autocommit=False)
        except Exception as exc:  # pragma: no cover - closing is best effort
            log.warning("consumer close failed: %s", exc)
