"""The batch's pass through the model, held while the model is broken.

When the model fails on posts and on a canary post (:class:`worker.pipeline.ModelFailing`),
the batch is held: the worker reports not ready, nothing is committed, a fresh reload is
rolled back, and the batch is retried with backoff, polling meanwhile to stay in the group.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from lmr.deadline import Deadline
from worker.checkpoint import Checkpoint
from worker.metrics import Health, Metrics
from worker.pipeline import BatchResult, ModelFailing, Pipeline
from worker.reload import ModelManager
from worker.settings import WorkerSettings

log = logging.getLogger(__name__)


def report_model(metrics: Metrics, models: ModelManager, ref: str) -> None:
    """Export the model in use (id, the reference it follows, its runtime)."""
    runtime = str(getattr(models.current, "runtime", ""))
    metrics.model.info({"model": models.current.model_id, "ref": ref, "runtime": runtime})
    metrics.set_runtime(models.current)


class ModelHold:
    """Runs batches through ``pipeline``; ``failing`` says why the model is held (None while it works)."""

    def __init__(self, pipeline: Pipeline, settings: WorkerSettings, metrics: Metrics, health: Health) -> None:
        self.pipeline = pipeline
        self.settings = settings
        self.metrics = metrics
        self.health = health
        self.failing: str | None = None

    @property
    def models(self) -> ModelManager:
        return self.pipeline.models

    def reload(self) -> None:
        """Swap in a newly published model version, if there is one (between batches)."""
        if self.models.maybe_swap():
            self.metrics.model_reloads.inc()
            report_model(self.metrics, self.models, self.settings.model)

    def process(
        self, batch: Checkpoint, *, idle: Callable[[], None], hold: Callable[[float], bool]
    ) -> BatchResult | None:
        """The records of ``batch`` (as revocations leave it) extracted and resolved; while the model is broken,
        holds (``hold``: wait, polling; False when stopping) and retries. None when stopping."""
        backoff = self.settings.backoff()
        limit_s = self.settings.kafka.max_poll_interval_ms / 1000
        while True:
            self.health.batch_started(limit_s)
            try:
                deadline = Deadline.after(self.settings.batch_deadline_s)
                result = self.pipeline.process(batch.messages, deadline=deadline, idle=idle)
            except ModelFailing as exc:
                self.health.batch_ended()
                self.failing = str(exc)
                self.metrics.model_holds.inc()
                self.health.set_ready(False, f"model failing: {exc.problem}")
                if self.models.rollback(exc.problem):
                    self.metrics.model_rollbacks.inc()
                    report_model(self.metrics, self.models, self.settings.model)
                    continue
                log.error("%s; batch of %d held, retrying in %.1fs", exc, len(batch), backoff.delay)
                delay = backoff.delay
                backoff.attempt += 1
                if not hold(delay):
                    return None
                continue
            finally:
                self.health.batch_ended()
            self._warn_past_deadline(result, limit_s)
            if self.failing is not None:
                log.info("model works again (%s); resuming", self.models.current.model_id)
                self.failing = None
            return result

    def _warn_past_deadline(self, result: BatchResult, limit_s: float) -> None:
        if result.inference_s > self.settings.batch_deadline_s:
            log.warning(
                "the model alone took %.0fs of a batch, past its deadline (%.0fs; the geocoder stops there, the "
                "model cannot): Kafka gives the partitions away past --max-poll-interval-ms (%.0fs); raise it "
                "or lower --batch-size/--max-chunks",
                result.inference_s,
                self.settings.batch_deadline_s,
                limit_s,
            )
