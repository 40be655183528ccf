"""The worker: source -> micro-batch -> extract -> resolve -> sink -> commit, at least once.

Offsets (last offset + 1 per partition) are committed only after every output and
dead-letter record of the batch was acknowledged by the broker (see
:class:`worker.checkpoint.Checkpoint`). On partition revocation (a rebalance) the
uncommitted records of the revoked partitions are dropped from the batch in hand
and not committed: the new owner reads them again (duplicates of uncommitted
records, never losses; records of partitions given back are kept); nothing runs on
kafka-python's network thread. While a
batch is held (broker not acknowledging, model failing) the worker keeps polling
with its partitions paused, so ``max.poll.interval.ms`` only has to cover one
model pass over a batch; each batch has a deadline well inside it
(``WorkerSettings.batch_deadline_s``): geocoding ends by then (the rest: geo null,
reason deadline) and polls the same way between posts. When the model fails on
posts and on a canary post, the batch is held (not ready, nothing committed), a
fresh reload is rolled back, and the batch is retried with backoff. On SIGTERM/SIGINT the worker stops polling,
finishes the batch in hand, commits, leaves the group and returns 0, or 3 when
the batch could not be delivered or committed before ``--shutdown-timeout-s``
(it will be redone); the process ends within that timeout in every state. A
second signal exits at once, uncommitted.
"""

from __future__ import annotations

import logging
import time

from lmr.backoff import Backoff
from worker.checkpoint import Checkpoint, CheckpointAbandoned, Committed
from worker.connect import ConnectStopped
from worker.metrics import BatchStats, Health, Metrics, MetricsServer
from worker.model_hold import ModelHold
from worker.parse import Message
from worker.pipeline import BatchResult, ErrorCallback, Pipeline, ProcessingError
from worker.rebalance import Rebalance
from worker.reload import Loader, ModelManager
from worker.resolve import GeoStage
from worker.settings import WorkerSettings
from worker.shutdown import EXIT_UNSENT, Shutdown, SignalWatcher
from worker.sinks import Sink
from worker.sources import Offsets, Source
from worker.wiring import Overrides, build_parts

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1
IDLE_POLL_S = 1.0  # longest single poll; the stop flag, health and model reload are checked between polls
LIVE_EVENT_S = 3_600  # only record timestamps younger than this measure latency (archived replays do not)


def _latencies(result: BatchResult) -> list[float]:
    now_ms = time.time() * 1000
    return [
        (now_ms - r.timestamp_ms) / 1000
        for r in result.outputs
        if r.timestamp_ms is not None and 0 <= now_ms - r.timestamp_ms < LIVE_EVENT_S * 1000
    ]


class Worker:
    """``Worker(settings).run()`` runs until stopped (signal, :meth:`stop`, end of input, limits); returns exit code.

    Its parts are built from the settings by :func:`worker.wiring.build_parts` when it runs; signals
    and the shutdown clock live in :mod:`worker.shutdown`, rebalances in :mod:`worker.rebalance`, the
    model's holds in :mod:`worker.model_hold`.
    """

    def __init__(
        self,
        settings: WorkerSettings,
        *,
        loader: Loader | None = None,
        models: ModelManager | None = None,
        geo: GeoStage | None = None,
        on_processing_error: ErrorCallback | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.settings = settings
        self.overrides = Overrides(loader, models, geo, on_processing_error)
        self.metrics = metrics or Metrics()
        self.health = Health()
        self.shutdown = Shutdown(settings.shutdown_timeout_s)
        self._signals = SignalWatcher(self.shutdown)
        self.pipeline: Pipeline | None = None
        self.source: Source | None = None
        self.sink: Sink | None = None
        self.server: MetricsServer | None = None
        self.model: ModelHold | None = None
        self.processed = 0
        self.delivered = 0
        self.committed: Offsets = {}
        self.checkpoint = self._new_checkpoint()
        self.rebalance = Rebalance(self.metrics)
        self._stash: list[Message] = []  # records seen while a batch was held (keepalive polls)
        self._unsent = False

    # -- control -------------------------------------------------------------

    def stop(self) -> None:
        """Ask the worker to drain and stop (thread-safe)."""
        self.shutdown.stop()

    @property
    def stopping(self) -> bool:
        return self.shutdown.stopping

    @property
    def signalled(self) -> bool:
        return self._signals.signalled

    @property
    def model_failing(self) -> str | None:
        return self.model.failing if self.model is not None else None

    @property
    def revoked_records(self) -> int:
        return self.rebalance.dropped

    # -- run -----------------------------------------------------------------

    def run(self) -> int:
        """Run until stopped; returns the exit code (0 after a clean drain)."""
        with self._signals:
            try:
                return self._loop(self._start())
            except ConnectStopped as exc:
                if not self.stopping:
                    raise
                log.info("worker stopped before Kafka could be reached (%s): nothing consumed, exit %d", exc, EXIT_OK)
                return EXIT_OK
            except ProcessingError as exc:
                log.error("stopping: %s (offsets of the failed batch are not committed)", exc)
                return EXIT_FAILED
            finally:
                self._close()

    def _start(self) -> Source:
        """Build the parts from the settings (:func:`worker.wiring.build_parts`); returns the source."""
        parts = build_parts(
            self.settings, self.metrics, self.health, stop=self.shutdown.event, idle=self.idle, overrides=self.overrides
        )
        self.pipeline, self.source, self.sink, self.server = parts.pipeline, parts.source, parts.sink, parts.server
        self.model = ModelHold(parts.pipeline, self.settings, self.metrics, self.health)
        return parts.source

    def _loop(self, source: Source) -> int:
        s = self.settings
        last_input = time.monotonic()
        log.info(
            "worker started: %s",
            "file mode" if s.file_mode else f"{s.input_topic} -> {s.output_topic} (DLQ {s.dlq_topic})",
        )
        while not self.shutdown.stopping:
            self.health.tick()
            room = self.checkpoint.room(s.max_messages - self.processed if s.max_messages else None)
            if room > 0:
                before = len(self.checkpoint)
                self._poll(source, room)
                if len(self.checkpoint) > before or source.assigned() == 0:
                    last_input = time.monotonic()  # idle means no input while partitions are assigned
            ready = room <= 0 or self.checkpoint.due(time.monotonic()) or source.exhausted
            if self.checkpoint.messages and ready and not self._process():
                self._unsent = True
                break
            reason = self._done(source, last_input)
            if reason is not None:
                log.info("%s; stopping", reason)
                break
        self.shutdown.start_drain()  # finish the batch in hand, then leave
        if self.checkpoint.messages and not self._unsent and not self._process():
            self._unsent = True
        return self._exit_code()

    def _poll(self, source: Source, room: int) -> None:
        """Reload check (between batches), one poll into the batch in hand, revocations, readiness."""
        assert self.model is not None
        if not self.checkpoint.messages:
            self.model.reload()
        wait = self.checkpoint.wait_s(time.monotonic(), IDLE_POLL_S)
        fresh = self._revoked(source.poll(room, int(wait * 1000)))
        self.checkpoint.add(fresh, time.monotonic())
        self.health.set_ready(*self._readiness())

    def _process(self) -> bool:
        """Extract, resolve, deliver and commit the batch in hand; False if it could not be delivered or committed."""
        assert self.sink is not None and self.source is not None and self.model is not None
        batch = self.checkpoint
        t0 = time.perf_counter()
        try:
            self._revoked()
            if not batch.messages:
                return True
            result = self.model.process(batch, idle=self.idle, hold=self._hold)  # extract -> resolve
            if result is None:
                return False
            committed = batch.commit(self.sink, self.source, result, waiter=self)  # deliver -> commit
            self._count(result, committed, time.perf_counter() - t0)
            return True
        except CheckpointAbandoned:
            return False
        finally:
            self.checkpoint = self._new_checkpoint()
            self.checkpoint.add(self._stash, time.monotonic())
            self._stash = []

    def _done(self, source: Source, last_input: float) -> str | None:
        """Why the loop ends now (limits, end of input), or None."""
        s = self.settings
        if s.max_messages and self.processed >= s.max_messages:
            return f"processed {self.processed} messages (--max-messages)"
        if self.checkpoint.messages:
            return None
        if source.exhausted:
            return f"end of input file; {self.processed} messages processed"
        if s.idle_exit_s and time.monotonic() - last_input > s.idle_exit_s:
            return f"no input for {s.idle_exit_s:.1f}s (--idle-exit-s)"
        return None

    def _exit_code(self) -> int:
        code = EXIT_UNSENT if self._unsent else EXIT_OK
        log.info(
            "worker stopped: %d messages processed, %d records delivered, committed %s, exit %d",
            self.processed,
            self.delivered,
            {f"{t}/{p}": o for (t, p), o in sorted(self.committed.items())},
            code,
        )
        return code

    def _new_checkpoint(self) -> Checkpoint:
        return Checkpoint(self.settings.batch_size, self.settings.max_wait_ms / 1000)

    def _close(self) -> None:
        left = self.shutdown.close_left()
        if self.source is not None:
            self.source.close(timeout_s=left / 2)
        if self.sink is not None:
            self.sink.close(timeout_s=left / 2)
        if self.server is not None:
            self.server.stop()
        if self.pipeline is not None:
            self.pipeline.models.close(left)

    # -- while a batch is held (the checkpoint's Waiter) -----------------------

    def idle(self) -> None:
        """Runs during every wait inside a batch: the loop is alive, and the group membership too."""
        self.health.tick()
        if self.source is not None and self.sink is not None:
            self._stash.extend(self._revoked(self.source.keepalive()))
            self.health.set_ready(*self._readiness())

    def apply_revocations(self) -> None:
        self._revoked()

    def give_up(self) -> bool:
        return self.shutdown.give_up()

    def time_left(self) -> float | None:
        return self.shutdown.drain_left()

    def backoff(self) -> Backoff:
        return self.settings.backoff()

    def _revoked(self, fresh: list[Message] | None = None) -> list[Message]:
        """Apply the last poll's rebalance (:mod:`worker.rebalance`); returns what of ``fresh`` is kept."""
        assert self.source is not None
        self._stash, kept = self.rebalance.apply(self.source, self.checkpoint, self._stash, fresh or [])
        return kept

    def _hold(self, seconds: float) -> bool:
        """Wait (polling to stay in the group); False if the worker is stopping."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if self.shutdown.stopping:
                return False
            self.idle()
            self._revoked()
            self.shutdown.wait(min(0.5, max(0.0, end - time.monotonic())))
        return not self.shutdown.stopping

    def _readiness(self) -> tuple[bool, str]:
        assert self.source is not None and self.sink is not None
        if self.model_failing is not None:
            return False, "model failing"
        if self.source.assigned() == 0:
            return False, "no partitions assigned"
        if not self.source.connected():
            return False, "broker unreachable"
        if not self.sink.healthy:
            return False, "broker not acknowledging"
        return True, ""

    # -- figures ---------------------------------------------------------------

    def _count(self, result: BatchResult, committed: Committed, elapsed: float) -> None:
        assert self.pipeline is not None
        if committed.refused:
            self.metrics.commit_failures.inc()
        self.committed.update(committed.offsets)
        self.metrics.observe_batch(
            BatchStats(
                messages=result.messages,
                outputs=len(result.outputs),
                dlq_reasons=result.dlq_reasons,
                mentions=result.mentions,
                truncated=result.truncated,
                seconds=elapsed,
                inference_s=result.inference_s,
                latencies_s=_latencies(result),
                committed=committed.offsets,
                geocode=self.pipeline.geo.stats(),
                events=result.events,
                scripts=result.scripts,
                end_offsets=self.source.end_offsets() if self.source is not None else {},
                all_committed=self.committed,
            )
        )
        self.processed += result.messages
        self.delivered += len(result.outputs) + len(result.dlq)
        log.debug(
            "batch of %d: %d events, %d dead letters, %d mentions, %.3fs (model %.3fs, %s)",
            result.messages,
            len(result.outputs),
            len(result.dlq),
            result.mentions,
            elapsed,
            result.inference_s,
            result.model_id,
        )
