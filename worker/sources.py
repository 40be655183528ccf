"""Input sources: a Kafka consumer group member (manual commits) or a JSONL file."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from lmr.errors import BrokerError
from worker.connect import connect
from worker.parse import Message
from worker.settings import KafkaSettings

log = logging.getLogger(__name__)

Offsets = dict[tuple[str, int], int]  # (topic, partition) -> next offset to read


class Source(Protocol):
    def poll(self, max_records: int, timeout_ms: int) -> list[Message]: ...

    def commit(self, offsets: Offsets, timeout_ms: int = 10_000) -> bool: ...

    def assigned(self) -> int: ...

    def end_offsets(self) -> dict[tuple[str, int], int]: ...

    @property
    def exhausted(self) -> bool: ...

    def close(self) -> None: ...


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

    def commit(self, offsets: Offsets, timeout_ms: int = 10_000) -> bool:
        self.committed.update(offsets)
        return True

    def assigned(self) -> int:
        return 1

    def end_offsets(self) -> dict[tuple[str, int], int]:
        return {}

    @property
    def exhausted(self) -> bool:
        return self._done

    def close(self) -> None:
        self._f.close()


class KafkaSource:
    """A consumer-group member with manual commits and a rebalance hook.

    ``on_revoked(partitions)`` runs inside :meth:`poll` before partitions are taken
    away: the worker processes and commits the work in hand there.
    """

    def __init__(
        self,
        kafka: KafkaSettings,
        topic: str,
        *,
        on_revoked: Callable[[list[tuple[str, int]]], None] | None = None,
        on_assigned: Callable[[list[tuple[str, int]]], None] | None = None,
        should_stop: Callable[[], bool] = lambda: False,
        backoff_s: float = 0.5,
        backoff_max_s: float = 30.0,
    ) -> None:
        from kafka import ConsumerRebalanceListener, KafkaConsumer
        from kafka.errors import KafkaError

        self.topic = topic
        self.kafka = kafka
        self._on_revoked = on_revoked
        self._on_assigned = on_assigned
        self.consumer = connect(
            lambda: KafkaConsumer(**kafka.consumer()),
            kafka.bootstrap_servers,
            should_stop=should_stop,
            backoff_s=backoff_s,
            backoff_max_s=backoff_max_s,
            errors=(KafkaError,),
        )
        src = self

        class Listener(ConsumerRebalanceListener):  # type: ignore[misc]
            def on_partitions_revoked(self, revoked: Any) -> None:
                tps = sorted((tp.topic, tp.partition) for tp in revoked)
                log.info("partitions revoked: %s", tps)
                if src._on_revoked is not None and tps:
                    src._on_revoked(tps)

            def on_partitions_assigned(self, assigned: Any) -> None:
                tps = sorted((tp.topic, tp.partition) for tp in assigned)
                log.info("partitions assigned: %s", tps)
                if src._on_assigned is not None:
                    src._on_assigned(tps)

        self.consumer.subscribe([topic], listener=Listener())

    def poll(self, max_records: int, timeout_ms: int) -> list[Message]:
        records = self.consumer.poll(timeout_ms=timeout_ms, max_records=max(1, max_records))
        out = []
        for tp_records in records.values():
            for r in tp_records:
                headers = tuple((str(k), None if v is None else bytes(v)) for k, v in (r.headers or []))
                ts = r.timestamp if isinstance(r.timestamp, int) and r.timestamp >= 0 else None
                out.append(Message(r.value, r.topic, r.partition, r.offset, r.key, headers, ts))
        return out

    def commit(self, offsets: Offsets, timeout_ms: int = 10_000) -> bool:
        """Commit synchronously; False when the group moved on (the new owner redoes the work).

        Raises :class:`BrokerError` on a retriable failure (broker unreachable, timeout).
        """
        from kafka import OffsetAndMetadata, TopicPartition
        from kafka.errors import CommitFailedError, IllegalStateError, KafkaError

        if not offsets:
            return True
        payload = {TopicPartition(t, p): OffsetAndMetadata(o, "", -1) for (t, p), o in offsets.items()}
        try:
            self.consumer.commit(offsets=payload, timeout_ms=timeout_ms)
            return True
        except (CommitFailedError, IllegalStateError) as exc:
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

    def close(self) -> None:
        """Leave the group (no auto-commit)."""
        try:
            self.consumer.close(autocommit=False)
        except Exception as exc:  # pragma: no cover - closing is best effort
            log.warning("consumer close failed: %s", exc)
