"""Output sinks: Kafka (output + DLQ topics, acknowledged delivery with retries) or JSONL files."""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any, Protocol

from lmr.errors import BrokerError
from worker.connect import connect
from worker.events import OutRecord, kafka_fields
from worker.settings import KafkaSettings

log = logging.getLogger(__name__)


class Sink(Protocol):
    def deliver(
        self, outputs: Sequence[OutRecord], dlq: Sequence[OutRecord], *, give_up: Callable[[], bool]
    ) -> bool: ...

    def close(self) -> None: ...


class FileSink:
    """Events as JSONL; dead letters as JSONL objects with the reason, the source and the original value."""

    def __init__(self, path: str | Path, dlq_path: str | Path | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._out: IO[bytes] = self.path.open("ab")
        self._dlq: IO[bytes] | None = None
        if dlq_path:
            Path(dlq_path).parent.mkdir(parents=True, exist_ok=True)
            self._dlq = Path(dlq_path).open("ab")  # noqa: SIM115 - closed in close()

    def deliver(self, outputs: Sequence[OutRecord], dlq: Sequence[OutRecord], *, give_up: Callable[[], bool]) -> bool:
        for r in outputs:
            self._out.write((r.value or b"") + b"\n")
        self._out.flush()
        if self._dlq is not None:
            for r in dlq:
                rec: dict[str, Any] = {
                    k: None if v is None else v.decode("utf-8", "replace") for k, v in r.headers if k.startswith("lmr.")
                }
                try:
                    rec["value"] = None if r.value is None else r.value.decode("utf-8")
                except UnicodeDecodeError:
                    rec["value_base64"] = base64.b64encode(r.value or b"").decode()
                self._dlq.write(json.dumps(rec, ensure_ascii=False).encode("utf-8") + b"\n")
            self._dlq.flush()
        return True

    def close(self) -> None:
        self._out.close()
        if self._dlq is not None:
            self._dlq.close()


class KafkaSink:
    """Produces events and dead letters; :meth:`deliver` returns only once the broker acknowledged all of them.

    Failed sends are retried with exponential backoff (the caller does not poll or
    commit meanwhile, so consumption pauses). After a fatal producer error (e.g. the
    idempotent producer's id is unknown to a restarted broker), or every few failed
    rounds, the producer is rebuilt and everything unacknowledged is sent again.
    ``give_up()`` lets a stopping worker leave with the work uncommitted.
    """

    REBUILD_EVERY = 5

    def __init__(
        self,
        kafka: KafkaSettings,
        output_topic: str,
        dlq_topic: str | None,
        *,
        flush_timeout_s: float = 10.0,
        backoff_s: float = 0.5,
        backoff_max_s: float = 30.0,
        on_retry: Callable[[], None] | None = None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        self.output_topic = output_topic
        self.dlq_topic = dlq_topic
        self.flush_timeout_s = flush_timeout_s
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.on_retry = on_retry
        self.healthy = True
        self.rebuilds = 0
        self._bootstrap = kafka.bootstrap_servers
        self._cfg = {**kafka.producer(), "max_block_ms": int(max(1.0, flush_timeout_s) * 1000)}
        self.producer: Any = connect(
            self._new_producer,
            self._bootstrap,
            should_stop=should_stop,
            backoff_s=backoff_s,
            backoff_max_s=backoff_max_s,
        )

    def _new_producer(self) -> Any:
        from kafka import KafkaProducer

        return KafkaProducer(**self._cfg)

    def _rebuild(self) -> None:
        old, self.producer = self.producer, None
        if old is not None:
            try:
                old.close(timeout=0)
            except Exception as exc:  # pragma: no cover - best effort
                log.debug("closing the old producer failed: %s", exc)
        try:
            self.producer = self._new_producer()
            self.rebuilds += 1
            log.info("producer rebuilt (%d); resending unacknowledged records", self.rebuilds)
        except Exception as exc:
            log.warning("producer cannot be rebuilt yet (%s)", exc)

    def _send(self, topic: str, r: OutRecord) -> Any:
        if self.producer is None:
            return BrokerError("no producer (broker unreachable)")
        try:
            value, key, headers = kafka_fields(r)
            return self.producer.send(topic, value=value, key=key, headers=headers or None)
        except Exception as exc:  # KafkaTimeoutError (no metadata), buffer full, producer closed...
            return exc

    def deliver(self, outputs: Sequence[OutRecord], dlq: Sequence[OutRecord], *, give_up: Callable[[], bool]) -> bool:
        """Send, flush and check every record; retry failures until acknowledged or ``give_up()``."""
        todo: list[tuple[str, OutRecord]] = [(self.output_topic, r) for r in outputs]
        if self.dlq_topic:
            todo += [(self.dlq_topic, r) for r in dlq]
        elif dlq:
            log.warning("%d dead letters dropped: no --dlq-topic configured", len(dlq))
        inflight = [(t, r, self._send(t, r)) for t, r in todo]
        delay = self.backoff_s
        attempt = 0
        while True:
            if self.producer is not None and any(not isinstance(f, BaseException) for _, _, f in inflight):
                try:
                    self.producer.flush(timeout=self.flush_timeout_s)
                except Exception as exc:  # KafkaTimeoutError: still in flight
                    log.debug("flush did not complete: %s", exc)
            left: list[tuple[str, OutRecord, Any]] = []
            errors: list[BaseException] = []
            for t, r, f in inflight:
                if isinstance(f, BaseException):
                    left.append((t, r, f))
                    errors.append(f)
                elif not f.is_done:
                    left.append((t, r, f))
                elif f.failed():
                    left.append((t, r, f.exception))
                    errors.append(f.exception)
            if not left:
                if not self.healthy:
                    log.info("broker acknowledged the pending records again; resuming consumption")
                self.healthy = True
                return True
            self.healthy = False
            attempt += 1
            if give_up():
                log.error("giving up on %d unacknowledged records while stopping; offsets stay uncommitted", len(left))
                return False
            log.warning(
                "%d of %d records not acknowledged by the broker (%s); consumption paused, nothing committed; "
                "retry %d in %.1fs",
                len(left),
                len(todo),
                repr(errors[0]) if errors else "flush timed out",
                attempt,
                delay,
            )
            if self.on_retry is not None:
                self.on_retry()
            time.sleep(delay)
            delay = min(self.backoff_max_s, delay * 2)
            fatal = any(not getattr(e, "retriable", False) and not isinstance(e, BrokerError) for e in errors)
            if self.producer is None or fatal or attempt % self.REBUILD_EVERY == 0:
                self._rebuild()
                inflight = [(t, r, self._send(t, r)) for t, r, _ in left]
            else:  # resend what failed; what is merely slow stays in flight
                inflight = [(t, r, self._send(t, r) if isinstance(f, BaseException) else f) for t, r, f in left]

    def close(self, timeout_s: float = 5.0) -> None:
        if self.producer is None:
            return
        try:
            self.producer.close(timeout=timeout_s)
        except Exception as exc:  # pragma: no cover - closing is best effort
            log.warning("producer close failed: %s", exc)
