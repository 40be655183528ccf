"""The worker: source -> micro-batch -> extract -> resolve -> sink -> commit, at least once.

Offsets (last offset + 1 per partition) are committed only after every output and
dead-letter record of the batch was acknowledged by the broker. On partition
revocation the batch in hand is processed, delivered and committed first. On
SIGTERM/SIGINT the worker stops polling, finishes the batch in hand, commits,
leaves the group and returns 0 (a second signal exits at once, uncommitted).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from types import FrameType
from typing import Any

from lmr.errors import BrokerError
from lmr.model.dedup import TextCache
from worker.extract import ExtractStage
from worker.geocode_stage import GeoStage, build_geo_stage
from worker.metrics import Health, Metrics, MetricsServer
from worker.models import Loader, ModelManager, runtime_loader
from worker.parse import Message
from worker.pipeline import ErrorCallback, Pipeline, PipelineOptions, ProcessingError
from worker.settings import WorkerSettings
from worker.sinks import FileSink, KafkaSink, Sink
from worker.sources import FileSource, KafkaSource, Offsets, Source

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_UNSENT = 3  # stopped while the broker did not acknowledge a batch; it will be redone
IDLE_POLL_S = 1.0  # longest single poll; the stop flag, health and model reload are checked between polls


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
        self.committed: Offsets = {}
        self._stop = threading.Event()
        self._stop_deadline: float | None = None
        self._pending: list[Message] = []
        self._batch_deadline: float | None = None
        self._signals = 0

    # -- control -------------------------------------------------------------

    def stop(self) -> None:
        """Ask the worker to drain and stop (thread-safe)."""
        if not self._stop.is_set():
            self._stop_deadline = time.monotonic() + self.settings.shutdown_timeout_s
            self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def _give_up(self) -> bool:
        return self._stop_deadline is not None and time.monotonic() > self._stop_deadline

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self._signals += 1
        if self._signals > 1:
            log.error("second signal %s: exiting now; uncommitted work will be redone by the next worker", signum)
            os._exit(130)
        log.info(
            "signal %s: draining (finish the batch in hand, flush, commit, leave the group)",
            signal.Signals(signum).name,
        )
        self.stop()

    # -- set-up --------------------------------------------------------------

    def _setup(self) -> None:
        s = self.settings
        log.info("worker settings: %s", s.redacted())
        if s.metrics_port:
            self.server = MetricsServer(self.metrics, self.health, s.metrics_host, s.metrics_port).start()
        models = self._models or ModelManager(s.model, loader=self.loader, check_s=s.reload_check_s)
        self.metrics.model.info({"model": models.current.model_id, "ref": s.model, "runtime": _runtime(models)})
        self.metrics.set_runtime(models.current)
        geo = self._geo or build_geo_stage(
            s.geocoder,
            url=s.geocoder_url,
            user_agent=s.geocoder_user_agent,
            cache_path=s.geocoder_cache,
            region=s.geocoder_region,
        )
        self.pipeline = Pipeline(
            models,
            extract=ExtractStage(
                threshold=s.threshold,
                batch_size=s.inference_batch_size,
                chunk_words=s.chunk_words,
                chunk_overlap=s.chunk_overlap,
                max_chunks=s.max_chunks,
                text_cache=self.metrics.watch_text_cache(TextCache(s.text_cache_size)) if s.text_cache_size else None,
            ),
            geo=geo,
            options=PipelineOptions(text_field=s.text_field, id_field=s.id_field, max_text_bytes=s.max_text_bytes,
                                    keep_events=bool(s.metrics_port)),  # the status page maps resolved places
            on_processing_error=self.on_processing_error,
        )
        if s.file_mode:
            assert s.source is not None and s.sink is not None
            self.source = FileSource(s.source[5:])
            self.sink = FileSink(s.sink[5:], s.dlq[5:] if s.dlq else None)
        else:
            self.sink = KafkaSink(
                s.kafka,
                s.output_topic,
                s.dlq_topic,
                flush_timeout_s=s.flush_timeout_s,
                backoff_s=s.retry_backoff_s,
                backoff_max_s=s.retry_backoff_max_s,
                on_retry=self.metrics.produce_retries.inc,
                should_stop=self._stop.is_set,
            )
            self.source = KafkaSource(
                s.kafka,
                s.input_topic,
                on_revoked=self._on_revoked,
                on_assigned=lambda tps: self.metrics.assigned.set(len(tps)),
                should_stop=self._stop.is_set,
                backoff_s=s.retry_backoff_s,
                backoff_max_s=s.retry_backoff_max_s,
            )

    def _close(self) -> None:
        if self.source is not None:
            self.source.close()
        if self.sink is not None:
            self.sink.close()
        if self.server is not None:
            self.server.stop()

    # -- processing ----------------------------------------------------------

    def _on_revoked(self, tps: list[tuple[str, int]]) -> None:
        if self._pending:
            log.info("rebalance: finishing %d messages in hand before giving partitions up", len(self._pending))
            self._process_pending()

    def _commit(self, offsets: Offsets) -> bool:
        assert self.source is not None
        delay = self.settings.retry_backoff_s
        while True:
            try:
                ok = self.source.commit(offsets)
            except BrokerError as exc:
                if self._give_up():
                    log.error("could not commit while stopping (%s); the batch will be redone", exc)
                    return False
                log.warning("%s; retrying in %.1fs", exc, delay)
                time.sleep(delay)
                delay = min(self.settings.retry_backoff_max_s, delay * 2)
                continue
            if not ok:
                self.metrics.commit_failures.inc()
                return False
            for (t, p), o in offsets.items():
                self.committed[(t, p)] = o
                self.metrics.committed.labels(t, str(p)).set(o)
            self.metrics.set_lag(self.source.end_offsets(), self.committed)
            return True

    def _process_pending(self) -> bool:
        batch, self._pending, self._batch_deadline = self._pending, [], None
        if not batch:
            return True
        return self._process(batch)

    def _process(self, batch: list[Message]) -> bool:
        """Process, deliver and commit one batch; False if it could not be delivered (nothing committed)."""
        assert self.pipeline is not None and self.sink is not None
        t0 = time.perf_counter()
        result = self.pipeline.process(batch)
        delivered = self.sink.deliver(result.outputs, result.dlq, give_up=self._give_up)
        if not delivered:
            return False
        now_ms = time.time() * 1000
        for r in result.outputs:
            # archived replays keep created_at (years old): only live timestamps measure latency
            if r.timestamp_ms is not None and 0 <= now_ms - r.timestamp_ms < 3_600_000:
                self.metrics.event_latency.observe((now_ms - r.timestamp_ms) / 1000)
        offsets: Offsets = {}
        for m in batch:
            key = (m.topic, m.partition)
            offsets[key] = max(offsets.get(key, 0), m.offset + 1)
        self._commit(offsets)
        elapsed = time.perf_counter() - t0
        mt = self.metrics
        mt.messages_in.inc(len(batch))
        mt.messages_out.inc(len(result.outputs))
        for reason in result.dlq_reasons:
            mt.dlq.labels(reason).inc()
        mt.mentions.inc(result.mentions)
        mt.truncated.inc(result.truncated)
        mt.batch_size.observe(len(batch))
        mt.batch_latency.observe(elapsed)
        mt.inference.observe(result.inference_s)
        mt.observe_rate(len(batch), elapsed)
        mt.set_geocode(self.pipeline.geo.stats())
        mt.recent.add_events(result.events)
        self.processed += len(batch)
        self.delivered += len(result.outputs) + len(result.dlq)
        log.debug(
            "batch of %d: %d events, %d dead letters, %d mentions, %.3fs (model %.3fs, %s)",
            len(batch),
            len(result.outputs),
            len(result.dlq),
            result.mentions,
            elapsed,
            result.inference_s,
            result.model_id,
        )
        return True

    # -- main loop -----------------------------------------------------------

    def run(self) -> int:
        """Run until stopped; returns the exit code (0 after a clean drain)."""
        in_main = threading.current_thread() is threading.main_thread()
        old: dict[int, Any] = {}
        if in_main:
            for sig in (signal.SIGTERM, signal.SIGINT):
                old[sig] = signal.signal(sig, self._on_signal)
        try:
            self._setup()
            return self._loop()
        except ProcessingError as exc:
            log.error("stopping: %s (offsets of the failed batch are not committed)", exc)
            return EXIT_FAILED
        finally:
            self._close()
            for signum, h in old.items():
                signal.signal(signum, h)

    def _loop(self) -> int:
        s = self.settings
        assert self.source is not None and self.pipeline is not None
        models = self.pipeline.models
        last_input = time.monotonic()
        max_wait_s = s.max_wait_ms / 1000
        log.info(
            "worker started: %s",
            "file mode" if s.file_mode else f"{s.input_topic} -> {s.output_topic} (DLQ {s.dlq_topic})",
        )
        while not self._stop.is_set():
            self.health.tick()
            if not self._pending and models.maybe_swap():
                self.metrics.model_reloads.inc()
                self.metrics.model.info({"model": models.current.model_id, "ref": s.model,
                                         "runtime": _runtime(models)})  # fmt: skip
                self.metrics.set_runtime(models.current)
            room = s.batch_size - len(self._pending)
            if s.max_messages:
                room = min(room, s.max_messages - self.processed - len(self._pending))
            if room <= 0:
                ok = self._process_pending()
                if not ok:
                    break
                if s.max_messages and self.processed >= s.max_messages:
                    log.info("processed %d messages (--max-messages); stopping", self.processed)
                    break
                continue
            now = time.monotonic()
            # with no batch in hand, poll returns as soon as a record arrives: a long wait costs no latency
            # and spares the CPU the model needs (stop and reload checks still run every second)
            wait = IDLE_POLL_S if self._batch_deadline is None else max(0.0, self._batch_deadline - now)
            msgs = self.source.poll(room, int(min(wait, IDLE_POLL_S) * 1000))
            now = time.monotonic()
            if msgs:
                last_input = now
                if not self._pending:
                    self._batch_deadline = now + max_wait_s
                self._pending.extend(msgs)
            self.health.set_ready(
                self.source.assigned() > 0 and getattr(self.sink, "healthy", True),
                "no partitions assigned" if self.source.assigned() == 0 else "broker not acknowledging",
            )
            full = len(self._pending) >= s.batch_size
            due = self._batch_deadline is not None and now >= self._batch_deadline
            if self._pending and (full or due or self.source.exhausted):
                if not self._process_pending():
                    break
                if s.max_messages and self.processed >= s.max_messages:
                    log.info("processed %d messages (--max-messages); stopping", self.processed)
                    break
            if self.source.exhausted and not self._pending:
                log.info("end of input file; %d messages processed", self.processed)
                break
            if s.idle_exit_s and now - last_input > s.idle_exit_s and not self._pending:
                log.info("no input for %.1fs (--idle-exit-s); stopping", s.idle_exit_s)
                break
        # drain: finish the batch in hand, then leave
        if self._stop_deadline is None:
            self._stop_deadline = time.monotonic() + s.shutdown_timeout_s
        ok = self._process_pending() if self._pending else True
        code = EXIT_OK if ok else EXIT_UNSENT
        log.info(
            "worker stopped: %d messages processed, %d records delivered, committed %s, exit %d",
            self.processed,
            self.delivered,
            {f"{t}/{p}": o for (t, p), o in sorted(self.committed.items())},
            code,
        )
        return code
