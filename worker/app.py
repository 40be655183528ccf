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
import os
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType

from lmr.deadline import Deadline
from lmr.model.text_cache import TextCache
from worker.checkpoint import Checkpoint
from worker.connect import ConnectStopped
from worker.extract import ExtractStage
from worker.metrics import BatchStats, Health, Metrics, MetricsServer
from worker.parse import Message
from worker.pipeline import BatchResult, ErrorCallback, ModelFailing, Pipeline, PipelineOptions, ProcessingError
from worker.reload import Loader, ModelManager, runtime_loader
from worker.resolve import GeoStage, build_geo_stage
from worker.settings import WorkerSettings
from worker.sinks import FileSink, KafkaSink, Sink
from worker.sources import FileSource, KafkaSource, Offsets, Source

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_UNSENT = 3  # stopped while a batch was not acknowledged or committed; it will be redone
IDLE_POLL_S = 1.0  # longest single poll; the stop flag, health and model reload are checked between polls
CLOSE_SHARE = 0.2  # share of --shutdown-timeout-s kept for closing the clients after the drain
JOIN_S = 5.0  # longest wait for a thread of the worker's own (signal watcher) to end once told to
LIVE_EVENT_S = 3_600  # only record timestamps younger than this measure latency (archived replays do not)


def _latencies(result: BatchResult) -> list[float]:
    now_ms = time.time() * 1000
    return [
        (now_ms - r.timestamp_ms) / 1000
        for r in result.outputs
        if r.timestamp_ms is not None and 0 <= now_ms - r.timestamp_ms < LIVE_EVENT_S * 1000
    ]


def _runtime(models: ModelManager) -> str:
    return str(getattr(models.current, "runtime", ""))


class Worker:
    """``Worker(settings).run()`` runs until stopped (signal, :meth:`stop`, end of input, limits); returns exit code."""

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
        self.loader = loader or runtime_loader(settings.runtime, settings.device, settings.threads)
        self._models = models
        self._geo = geo
        self.on_processing_error = on_processing_error
        self.metrics = metrics or Metrics()
        self.health = Health()
        self.pipeline: Pipeline | None = None
        self.source: Source | None = None
        self.sink: Sink | None = None
        self.server: MetricsServer | None = None
        self.processed = 0
        self.delivered = 0
        self.revoked_records = 0
        self.committed: Offsets = {}
        self.model_failing: str | None = None
        self.checkpoint = Checkpoint(settings.batch_size, settings.max_wait_ms / 1000)
        self._stop = threading.Event()
        self._stop_at: float | None = None
        self._stash: list[Message] = []  # records seen while a batch was held (keepalive polls)
        self._pending_revoked: set[tuple[str, int]] = set()  # revoked, until the new assignment says where they go
        self._unsent = False
        self._signals = 0

    # -- control -------------------------------------------------------------

    def stop(self) -> None:
        """Ask the worker to drain and stop (thread-safe)."""
        if not self._stop.is_set():
            self._stop_at = time.monotonic()
            self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def _drain_left(self) -> float | None:
        """Seconds left for the drain (None when not stopping); the rest of the timeout is for closing."""
        if self._stop_at is None:
            return None
        budget = self.settings.shutdown_timeout_s * (1 - CLOSE_SHARE)
        return self._stop_at + budget - time.monotonic()

    def _give_up(self) -> bool:
        left = self._drain_left()
        return left is not None and left <= 0

    def _on_signal(self, signum: int) -> None:
        """Runs on the signal-watching thread as soon as a signal arrives, whatever the main thread is doing."""
        self._signals += 1
        if self._signals > 1:
            log.error("second signal %s: exiting now; uncommitted work will be redone by the next worker", signum)
            os._exit(130)
        log.info(
            "signal %s: draining (finish the batch in hand, flush, commit, leave the group; at most %.0fs)",
            signal.Signals(signum).name,
            self.settings.shutdown_timeout_s,
        )
        self.stop()
        watchdog = threading.Timer(self.settings.shutdown_timeout_s, self._overdue)
        watchdog.daemon = True
        watchdog.start()

    def _overdue(self) -> None:
        """The last resort of the shutdown bound: whatever blocks, the process ends (uncommitted work is redone)."""
        os.write(2, b"lmr-worker: shutdown reached --shutdown-timeout-s; exiting now, uncommitted work is redone\n")
        os._exit(EXIT_UNSENT)

    def _watch_signals(self, fd: int) -> None:
        """Read the signal numbers Python's C-level handler writes to the wakeup pipe (it does so at once, even
        while the main thread is inside a long call), so the shutdown clock starts when the signal arrives."""
        while data := os.read(fd, 64):
            for signum in data:
                if signum in (signal.SIGTERM, signal.SIGINT):
                    self._on_signal(signum)
        os.close(fd)

    @property
    def signalled(self) -> bool:
        return self._signals > 0

    # -- set-up --------------------------------------------------------------

    def _setup(self) -> None:
        s = self.settings
        log.info("worker settings: %s", s.redacted())
        if s.metrics_port:
            self.server = MetricsServer(
                self.metrics, self.health, s.metrics_host, s.metrics_port, s.metrics_allowed_hosts
            ).start()
        models = self._models or ModelManager(s.model, loader=self.loader, check_s=s.reload_check_s)
        self._model_info(models)
        geo = self._geo or build_geo_stage(
            s.geocoder,
            url=s.geocoder_url,
            user_agent=s.geocoder_user_agent,
            cache_path=s.geocoder_cache,
            region=s.geocoder_region,
            prior=s.geocoder_prior,
            offline_fallback=s.geocoder_offline_fallback,
            rate_limit_file=s.geocoder_rate_file,
        )
        self.pipeline = Pipeline(
            models,
            extract=ExtractStage(
                threshold=s.threshold,
                batch_size=s.inference_batch_size,
                chunk_words=s.chunk_words,
                chunk_overlap=s.chunk_overlap,
                max_chunks=s.max_chunks,
                text_cache=self.metrics.watch_text_cache(TextCache(s.text_cache_bytes)) if s.text_cache_bytes else None,
            ),
            geo=geo,
            options=PipelineOptions(
                text_field=s.text_field,
                id_field=s.id_field,
                max_text_bytes=s.max_text_bytes,
                keep_events=bool(s.metrics_port),  # the status page maps resolved places
            ),
            on_processing_error=self.on_processing_error,
        )
        if s.source_path is not None and s.sink_path is not None:
            self.source = FileSource(s.source_path)
            self.sink = FileSink(s.sink_path, s.dlq_path)
            return
        self.sink = KafkaSink(
            s.kafka,
            s.output_topic,
            s.dlq_topic,
            flush_timeout_s=s.flush_timeout_s,
            backoff=s.backoff(self._stop),
            on_retry=self.metrics.produce_retries.inc,
            on_dead_letter=self.metrics.dead_letter,
            idle=self._idle,
        )
        self.source = KafkaSource(
            s.kafka,
            s.input_topic,
            backoff=s.backoff(self._stop),
            on_assigned=lambda tps: self.metrics.assigned.set(len(tps)),
        )

    def _close(self) -> None:
        left = self.settings.shutdown_timeout_s * CLOSE_SHARE
        if self._stop_at is not None:
            left = max(0.5, self._stop_at + self.settings.shutdown_timeout_s - time.monotonic() - 0.5)
        if isinstance(self.source, KafkaSource):
            self.source.close(timeout_s=left / 2)
        elif self.source is not None:
            self.source.close()
        if isinstance(self.sink, KafkaSink):
            self.sink.close(timeout_s=left / 2)
        elif self.sink is not None:
            self.sink.close()
        if self.server is not None:
            self.server.stop()
        if self.pipeline is not None:
            self.pipeline.models.close(left)

    # -- while a batch is held ---------------------------------------------------

    def _idle(self) -> None:
        """Runs during every wait inside a batch: the loop is alive, and the group membership too."""
        self.health.tick()
        if self.source is not None and self.sink is not None:
            self._stash.extend(self._revoked(self.source.keepalive()))
            self.health.set_ready(*self._readiness())

    def _revoked(self, fresh: list[Message] | None = None) -> list[Message]:
        """Apply the last poll's rebalance. Revoked partitions wait for the new assignment: those given to
        another member are dropped from the batch in hand and the stash (uncommitted: the new owner reads
        them again from the last commit); those given back are kept, since kafka-python keeps their fetch
        position. ``fresh`` (what that poll returned) comes back unchanged."""
        assert self.source is not None
        fresh = fresh or []
        self._pending_revoked |= self.source.take_revoked()
        assigned = self.source.take_assigned()
        if assigned is None or not self._pending_revoked:
            return fresh
        gone, self._pending_revoked = self._pending_revoked - assigned, set()
        self.metrics.forget_partitions(gone)  # their offsets and lag are the new owner's to report
        held = len(self.checkpoint) + len(self._stash)
        self.checkpoint.drop(gone)
        self._stash = [m for m in self._stash if (m.topic, m.partition) not in gone]
        dropped = held - len(self.checkpoint) - len(self._stash)
        if dropped:
            self.revoked_records += dropped
            self.metrics.revoked_records.inc(dropped)
            log.info(
                "rebalance: %d uncommitted records of partitions now owned elsewhere %s dropped from the batch "
                "in hand (their new owner reads them again)",
                dropped,
                sorted(gone),
            )
        return [m for m in fresh if (m.topic, m.partition) not in gone]

    def _hold(self, seconds: float) -> bool:
        """Wait (polling to stay in the group); False if the worker is stopping."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if self._stop.is_set():
                return False
            self._idle()
            self._revoked()
            self._stop.wait(min(0.5, max(0.0, end - time.monotonic())))
        return not self._stop.is_set()

    # -- processing ----------------------------------------------------------

    def _run_pipeline(self) -> BatchResult | None:
        """The batch's records; holds and retries while the model is broken. None when stopping."""
        assert self.pipeline is not None
        models = self.pipeline.models
        backoff = self.settings.backoff()
        limit_s = self.settings.kafka.max_poll_interval_ms / 1000
        while True:
            self.health.batch_started(limit_s)
            try:
                deadline = Deadline.after(self.settings.batch_deadline_s)
                result = self.pipeline.process(self.checkpoint.messages, deadline=deadline, idle=self._idle)
            except ModelFailing as exc:
                self.health.batch_ended()
                self.model_failing = str(exc)
                self.metrics.model_holds.inc()
                self.health.set_ready(False, f"model failing: {exc.problem}")
                if models.rollback(exc.problem):
                    self.metrics.model_rollbacks.inc()
                    self._model_info(models)
                    continue
                log.error("%s; batch of %d held, retrying in %.1fs", exc, len(self.checkpoint), backoff.delay)
                delay = backoff.delay
                backoff.attempt += 1
                if not self._hold(delay):
                    return None
                continue
            finally:
                self.health.batch_ended()
            if result.inference_s > self.settings.batch_deadline_s:
                log.warning(
                    "the model alone took %.0fs of a batch, past its deadline (%.0fs; the geocoder stops there, the "
                    "model cannot): Kafka gives the partitions away past --max-poll-interval-ms (%.0fs); raise it "
                    "or lower --batch-size/--max-chunks",
                    result.inference_s,
                    self.settings.batch_deadline_s,
                    limit_s,
                )
            if self.model_failing is not None:
                log.info("model works again (%s); resuming", models.current.model_id)
                self.model_failing = None
            return result

    def _process(self) -> bool:
        """Process, deliver and commit the batch in hand; False if it could not be delivered or committed."""
        assert self.sink is not None and self.source is not None and self.pipeline is not None
        batch = self.checkpoint
        t0 = time.perf_counter()
        try:
            self._revoked()
            if not batch.messages:
                return True
            result = self._run_pipeline()
            if result is None:
                return False
            committed = batch.commit(
                self.sink,
                result.outputs,
                result.dlq,
                self.source,
                backoff=self.settings.backoff(),
                give_up=self._give_up,
                time_left=self._drain_left,
                apply_revocations=self._revoked,
                idle=self._idle,
            )
            if committed is None:
                return False
            if batch.refused:
                self.metrics.commit_failures.inc()
            self.committed.update(committed)
            self._count(result, committed, time.perf_counter() - t0)
            return True
        finally:
            self.checkpoint = Checkpoint(self.settings.batch_size, self.settings.max_wait_ms / 1000)
            self.checkpoint.add(self._stash, time.monotonic())
            self._stash = []

    def _model_info(self, models: ModelManager) -> None:
        info = {"model": models.current.model_id, "ref": self.settings.model, "runtime": _runtime(models)}
        self.metrics.model.info(info)
        self.metrics.set_runtime(models.current)

    def _count(self, result: BatchResult, committed: Offsets, elapsed: float) -> None:
        assert self.pipeline is not None
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
                committed=committed,
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

    # -- main loop -----------------------------------------------------------

    def run(self) -> int:
        """Run until stopped; returns the exit code (0 after a clean drain)."""
        in_main = threading.current_thread() is threading.main_thread()
        old: dict[int, Callable[[int, FrameType | None], object] | int | None] = {}
        old_fd, pipe = -1, (-1, -1)
        watcher: threading.Thread | None = None
        if in_main:
            pipe = os.pipe()
            os.set_blocking(pipe[1], False)
            old_fd = signal.set_wakeup_fd(pipe[1])
            watcher = threading.Thread(target=self._watch_signals, args=(pipe[0],), name="lmr-signals", daemon=True)
            watcher.start()
            for sig in (signal.SIGTERM, signal.SIGINT):
                old[sig] = signal.signal(sig, lambda _signum, _frame: None)  # handled by _watch_signals
        try:
            self._setup()
            return self._loop()
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
            for signum, h in old.items():
                signal.signal(signum, h)
            if in_main:
                signal.set_wakeup_fd(old_fd)
                os.close(pipe[1])  # the watcher reads EOF and ends
            if watcher is not None:
                # Wait for it: a thread ending after run() returned drops its reference to this worker (its
                # target is a bound method) and may free the model's tensors while the interpreter exits,
                # which aborts the process ("terminate called without an active exception", rc 134).
                watcher.join(JOIN_S)

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

    def _next_batch(self, room: int) -> None:
        """Reload check, one poll, revocations, readiness."""
        assert self.source is not None and self.pipeline is not None
        models = self.pipeline.models
        if not self.checkpoint.messages and models.maybe_swap():
            self.metrics.model_reloads.inc()
            self._model_info(models)
        wait = self.checkpoint.wait_s(time.monotonic(), IDLE_POLL_S)
        msgs = self._revoked(self.source.poll(room, int(wait * 1000)))
        self.checkpoint.add(msgs, time.monotonic())
        self.health.set_ready(*self._readiness())

    def _done(self, last_input: float) -> str | None:
        """Why the loop ends now (limits, end of input), or None."""
        s = self.settings
        assert self.source is not None
        if s.max_messages and self.processed >= s.max_messages:
            return f"processed {self.processed} messages (--max-messages)"
        if self.checkpoint.messages:
            return None
        if self.source.exhausted:
            return f"end of input file; {self.processed} messages processed"
        if s.idle_exit_s and time.monotonic() - last_input > s.idle_exit_s:
            return f"no input for {s.idle_exit_s:.1f}s (--idle-exit-s)"
        return None

    def _loop(self) -> int:
        s = self.settings
        assert self.source is not None
        last_input = time.monotonic()
        log.info(
            "worker started: %s",
            "file mode" if s.file_mode else f"{s.input_topic} -> {s.output_topic} (DLQ {s.dlq_topic})",
        )
        while not self._stop.is_set():
            self.health.tick()
            limit = s.max_messages - self.processed if s.max_messages else None
            room = self.checkpoint.room(limit)
            if room > 0:
                before = len(self.checkpoint)
                self._next_batch(room)
                if len(self.checkpoint) > before or self.source.assigned() == 0:
                    last_input = time.monotonic()  # idle means no input while partitions are assigned
            ready = room <= 0 or self.checkpoint.due(time.monotonic()) or self.source.exhausted
            if self.checkpoint.messages and ready and not self._process():
                self._unsent = True
                break
            reason = self._done(last_input)
            if reason is not None:
                log.info("%s; stopping", reason)
                break
        # drain: finish the batch in hand, then leave
        if self._stop_at is None:
            self._stop_at = time.monotonic()
        if self.checkpoint.messages and not self._unsent and not self._process():
            self._unsent = True
        code = EXIT_UNSENT if self._unsent else EXIT_OK
        log.info(
            "worker stopped: %d messages processed, %d records delivered, committed %s, exit %d",
            self.processed,
            self.delivered,
            {f"{t}/{p}": o for (t, p), o in sorted(self.committed.items())},
            code,
        )
        return code
