"""Output sinks: Kafka (output + DLQ topics, acknowledged delivery with retries) or JSONL files."""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

from lmr.backoff import Backoff
from lmr.errors import BrokerError
from worker.connect import connect
from worker.events import OutRecord, dlq_record, fit_dead_letter, kafka_fields
from worker.parse import EVENT_REFUSED, Rejected
from worker.settings import KafkaSettings

log = logging.getLogger(__name__)


class Sink(Protocol):
    """Where a batch's events and dead letters go; ``healthy`` is False while delivery is failing."""

    healthy: bool

    def deliver(
        self, outputs: Sequence[OutRecord], dlq: Sequence[OutRecord], *, give_up: Callable[[], bool]
    ) -> bool: ...

    def close(self, timeout_s: float = 5.0) -> None:
        """Release the client (what was not acknowledged by then is redone), waiting at most ``timeout_s``."""
        ...


class FileSink:
    """Events as JSONL; dead letters as JSONL objects with the reason, the source and the original value."""

    def __init__(self, path: str | Path, dlq_path: str | Path | None = None) -> None:
        self.healthy = True
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

    def close(self, timeout_s: float = 5.0) -> None:
        """A file closes at once (``timeout_s`` is for the protocol)."""
        self._out.close()
        if self._dlq is not None:
            self._dlq.close()


SEND_BLOCK_MS = 1_000  # longest one send() may wait for metadata or buffer space (not the flush timeout)
WAIT_SLICE_S = 0.5  # waits and flushes run in slices: a stopping worker is held at most about this long


@dataclass
class _Pending:
    """One record on its way: its topic, the future of its send (or the error), how often it was cut to fit."""

    topic: str
    record: OutRecord
    future: Any
    shrinks: int = 0
    refusals: int = 0  # times the broker refused it while it was sent alone

    def error(self) -> BaseException | None:
        """The send's error, None if acknowledged or still in flight."""
        if isinstance(self.future, BaseException):
            return self.future
        if self.future.is_done and self.future.failed():
            exc: BaseException = self.future.exception
            return exc
        return None

    def acknowledged(self) -> bool:
        return not isinstance(self.future, BaseException) and self.future.is_done and not self.future.failed()


def _too_large(exc: BaseException | None) -> bool:
    from kafka.errors import MessageSizeTooLargeError, RecordListTooLargeError

    return isinstance(exc, MessageSizeTooLargeError | RecordListTooLargeError)


def _refused(exc: BaseException | None) -> bool:
    """Whether the broker (or the client, for its arguments) refused a record for its content: sending
    the same bytes again cannot succeed (a schema or compaction rule, a timestamp out of range, a CRC)."""
    from kafka.errors import CorruptRecordError, InvalidRecordError, InvalidTimestampError

    return isinstance(exc, InvalidRecordError | CorruptRecordError | InvalidTimestampError | TypeError | ValueError)


REFUSED_TRIES = 2  # sends of a refused record alone, on a fresh producer, before it is dead-lettered


class KafkaSink:
    """Produces events and dead letters; :meth:`deliver` returns only once the broker acknowledged all of them.

    Failed sends are retried with exponential backoff (the caller does not commit
    meanwhile; ``idle()`` runs during the waits so the worker stays alive in its
    group). After a fatal producer error (e.g. the idempotent producer's id is
    unknown to a restarted broker), or every few failed rounds, the producer is
    rebuilt and everything unacknowledged is sent again. A record refused as too
    large (non-retriable) is never resent as it was: an event becomes an
    ``event_too_large`` dead letter of its input, a dead letter is cut to fit
    (``lmr.original.bytes`` keeps the size; input headers and key go too when
    they alone are too large), then sent with lmr's headers only, then dropped
    with an error log: at most three tries. A record refused for its content
    (:func:`_refused`; kafka-python's idempotent producer then fails every record
    after it with the same error) is resent alone on a fresh producer, up to
    :data:`REFUSED_TRIES` times; refused alone each time, an event becomes an
    ``event_refused`` dead letter of its input and a dead letter is dropped with
    an error log, while the rest of the batch is delivered. Other errors
    (authorisation, an unknown topic, the broker down) are retried until they
    clear, the worker not ready meanwhile. ``give_up()`` lets a stopping
    worker leave with the work uncommitted; no send, flush or wait holds it longer
    than about a second past that.
    """

    REBUILD_EVERY = 5

    def __init__(
        self,
        kafka: KafkaSettings,
        output_topic: str,
        dlq_topic: str | None,
        *,
        flush_timeout_s: float,
        backoff: Backoff,
        on_retry: Callable[[], None] | None = None,
        on_dead_letter: Callable[[str], None] | None = None,
        idle: Callable[[], None] | None = None,
    ) -> None:
        self.output_topic = output_topic
        self.dlq_topic = dlq_topic
        self.flush_timeout_s = flush_timeout_s
        self.backoff = backoff
        self.on_retry = on_retry
        self.on_dead_letter = on_dead_letter
        self.idle = idle
        self.healthy = True
        self.rebuilds = 0
        self.max_request_size = kafka.max_request_size
        self._bootstrap = kafka.bootstrap_servers
        self._cfg = {**kafka.producer(), "max_block_ms": SEND_BLOCK_MS}
        self.producer: Any = connect(self._new_producer, self._bootstrap, backoff=backoff)

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

    def _send_all(self, items: list[_Pending]) -> None:
        """Send every item; after a send times out (no metadata: broker down) the rest are not tried this round."""
        from kafka.errors import KafkaTimeoutError

        blocked: BaseException | None = None if self.producer is not None else BrokerError("no producer")
        for item in items:
            if blocked is not None:
                item.future = blocked
                continue
            value, key, headers = kafka_fields(item.record)
            try:
                item.future = self.producer.send(item.topic, value=value, key=key, headers=headers or None)
            except KafkaTimeoutError as exc:
                item.future = blocked = exc
            except Exception as exc:  # too large, buffer full, producer closed...
                item.future = exc

    def _flush(self, items: list[_Pending], give_up: Callable[[], bool]) -> None:
        """Flush until everything is done, ``flush_timeout_s`` passed, or ``give_up()``."""
        if self.producer is None or all(isinstance(i.future, BaseException) for i in items):
            return
        deadline = time.monotonic() + self.flush_timeout_s
        while True:
            left = deadline - time.monotonic()
            try:
                self.producer.flush(timeout=max(0.0, min(WAIT_SLICE_S, left)))
                return
            except Exception as exc:  # KafkaTimeoutError: still in flight
                log.debug("flush did not complete: %s", exc)
            if left <= WAIT_SLICE_S or give_up():
                return
            if self.idle is not None:
                self.idle()

    def _wait(self, delay: float, give_up: Callable[[], bool]) -> None:
        end = time.monotonic() + delay
        while not give_up() and (left := end - time.monotonic()) > 0:
            if self.idle is not None:
                self.idle()
            time.sleep(min(WAIT_SLICE_S, left))

    def _reroute(self, item: _Pending) -> _Pending | None:
        """The bounded answer to a record refused as too large (see the class docstring); None = dropped."""
        if self.dlq_topic is None or item.shrinks >= 2:
            log.error(
                "record for %s/%d@%d refused as too large even as a %d-byte dead letter; dropped (%s)",
                item.record.source.topic,
                item.record.source.partition,
                item.record.source.offset,
                len(item.record.value or b""),
                "no --dlq-topic" if self.dlq_topic is None else "the broker's size limit is below the headers",
            )
            return None
        fitted = fit_dead_letter(item.record, self.max_request_size if item.shrinks == 0 else 0)
        reason = fitted.reason or ""
        log.warning(
            "record for %s/%d@%d is too large (%s); sending a %d-byte %s dead letter instead",
            item.record.source.topic,
            item.record.source.partition,
            item.record.source.offset,
            item.error(),
            len(fitted.value or b""),
            reason,
        )
        if item.topic != self.dlq_topic and self.on_dead_letter is not None:
            self.on_dead_letter(reason)
        return _Pending(self.dlq_topic, fitted, None, item.shrinks + 1)

    def _isolate(self, refused: list[_Pending], give_up: Callable[[], bool]) -> list[_Pending]:
        """Resend each refused record alone on a fresh producer; the ones refused alone :data:`REFUSED_TRIES`
        times are replaced by their dead letter (an event) or dropped (a dead letter). Returns what to track."""
        out, poisoned = [], True  # after a refusal kafka-python's idempotent producer refuses everything
        for item in refused:
            while _refused(item.error()) and item.refusals < REFUSED_TRIES and not give_up():
                if poisoned:
                    self._rebuild()
                item.refusals += 1
                self._send_all([item])
                self._flush([item], give_up)
                poisoned = not item.acknowledged()
            if not _refused(item.error()) or item.refusals < REFUSED_TRIES:
                out.append(item)
            elif (dead := self._refused_dead_letter(item)) is not None:
                if poisoned:
                    self._rebuild()
                    poisoned = False
                self._send_all([dead])
                out.append(dead)
        if poisoned:
            self._rebuild()
        return out

    def _refused_dead_letter(self, item: _Pending) -> _Pending | None:
        """The ``event_refused`` dead letter of an event refused alone; None (dropped, logged) for a dead letter."""
        src = item.record.source
        where = f"{src.topic}/{src.partition}@{src.offset}"
        if item.topic == self.dlq_topic or self.dlq_topic is None:
            log.error(
                "the broker refused the record for %s alone %d times (%r); dropped", where, item.refusals, item.error()
            )
            return None
        error = f"the broker refused the enriched event ({item.error()!r}), sent alone {item.refusals} times"
        log.warning("record for %s refused by the broker; sending an %s dead letter: %s", where, EVENT_REFUSED, error)
        if self.on_dead_letter is not None:
            self.on_dead_letter(EVENT_REFUSED)
        return _Pending(self.dlq_topic, dlq_record(Rejected(src, EVENT_REFUSED, error)), None)

    def deliver(self, outputs: Sequence[OutRecord], dlq: Sequence[OutRecord], *, give_up: Callable[[], bool]) -> bool:
        """Send, flush and check every record; retry failures until acknowledged or ``give_up()``."""
        todo = [_Pending(self.output_topic, r, None) for r in outputs]
        if self.dlq_topic:
            todo += [_Pending(self.dlq_topic, r, None) for r in dlq]
        elif dlq:
            log.warning("%d dead letters dropped: no --dlq-topic configured", len(dlq))
        self._send_all(todo)
        backoff = Backoff(self.backoff.initial_s, self.backoff.max_s)
        while True:
            self._flush(todo, give_up)
            rerouted = [self._reroute(i) for i in todo if _too_large(i.error())]
            if rerouted:  # non-retriable: replaced at once, not retried as they were
                fresh = [i for i in rerouted if i is not None]
                self._send_all(fresh)
                todo = [i for i in todo if not _too_large(i.error())] + fresh
                continue
            refused = [i for i in todo if _refused(i.error())]
            if refused and not give_up():
                todo = [i for i in todo if not _refused(i.error())] + self._isolate(refused, give_up)
                continue
            left = [i for i in todo if not i.acknowledged()]
            if not left:
                if not self.healthy:
                    log.info("broker acknowledged the pending records again; resuming consumption")
                self.healthy = True
                return True
            self.healthy = False
            errors = [e for e in (i.error() for i in left) if e is not None]
            if give_up():
                log.error("giving up on %d unacknowledged records while stopping; offsets stay uncommitted", len(left))
                return False
            log.warning(
                "%d of %d records not acknowledged by the broker (%s); nothing committed; retry %d in %.1fs",
                len(left),
                len(todo),
                repr(errors[0]) if errors else "flush timed out",
                backoff.attempt + 1,
                backoff.delay,
            )
            if self.on_retry is not None:
                self.on_retry()
            self._wait(backoff.delay, give_up)
            backoff.attempt += 1
            fatal = any(not getattr(e, "retriable", False) and not isinstance(e, BrokerError) for e in errors)
            if self.producer is None or fatal or backoff.attempt % self.REBUILD_EVERY == 0:
                self._rebuild()
                self._send_all(left)
            else:  # resend what failed; what is merely slow stays in flight
                self._send_all([i for i in left if i.error() is not None])
            todo = left

    def close(self, timeout_s: float = 5.0) -> None:
        if self.producer is None:
            return
        try:
            self.producer.close(timeout=timeout_s)
        except Exception as exc:  # pragma: no cover - closing is best effort
            log.warning("producer close failed: %s", exc)
