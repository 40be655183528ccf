"""The worker's parts built from its settings: metrics server, model, geocoder, pipeline, source and sink.

:func:`build_parts` is the one place that turns :class:`~worker.settings.WorkerSettings` into
running objects (file mode: a file source and sink; otherwise Kafka). Tests and embedders may
hand in their own model loader, model manager, geocoder stage or error callback
(:class:`Overrides`); everything else comes from the settings.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from lmr.model.text_cache import TextCache
from worker.extract import ExtractStage
from worker.metrics import Health, Metrics, MetricsServer
from worker.model_hold import report_model
from worker.pipeline import ErrorCallback, Pipeline, PipelineOptions
from worker.reload import Loader, ModelManager, runtime_loader
from worker.resolve import GeoStage, build_geo_stage
from worker.settings import WorkerSettings
from worker.sinks import FileSink, KafkaSink, Sink
from worker.sources import FileSource, KafkaSource, Source

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Overrides:
    """Parts handed in instead of built from the settings (None: from the settings)."""

    loader: Loader | None = None
    models: ModelManager | None = None
    geo: GeoStage | None = None
    on_processing_error: ErrorCallback | None = None


@dataclass(frozen=True)
class Parts:
    pipeline: Pipeline
    source: Source
    sink: Sink
    server: MetricsServer | None


def build_parts(
    s: WorkerSettings,
    metrics: Metrics,
    health: Health,
    *,
    stop: threading.Event,
    idle: Callable[[], None],
    overrides: Overrides,
) -> Parts:
    """Build the worker's parts from ``s``; ``stop`` ends connection retries, ``idle`` runs during sink waits."""
    log.info("worker settings: %s", s.redacted())
    server = None
    if s.metrics_port:
        server = MetricsServer(metrics, health, s.metrics_host, s.metrics_port, s.metrics_allowed_hosts).start()
    pipeline = _pipeline(s, metrics, overrides)
    if s.source_path is not None and s.sink_path is not None:
        return Parts(pipeline, FileSource(s.source_path), FileSink(s.sink_path, s.dlq_path), server)
    sink = KafkaSink(
        s.kafka,
        s.output_topic,
        s.dlq_topic,
        flush_timeout_s=s.flush_timeout_s,
        backoff=s.backoff(stop),
        on_retry=metrics.produce_retries.inc,
        on_dead_letter=metrics.dead_letter,
        idle=idle,
    )
    source = KafkaSource(
        s.kafka,
        s.input_topic,
        backoff=s.backoff(stop),
        on_assigned=lambda tps: metrics.assigned.set(len(tps)),
    )
    return Parts(pipeline, source, sink, server)


def _pipeline(s: WorkerSettings, metrics: Metrics, overrides: Overrides) -> Pipeline:
    loader = overrides.loader or runtime_loader(s.runtime, s.device, s.threads)
    models = overrides.models or ModelManager(s.model, loader=loader, check_s=s.reload_check_s)
    report_model(metrics, models, s.model)
    geo = overrides.geo or build_geo_stage(
        s.geocoder,
        url=s.geocoder_url,
        user_agent=s.geocoder_user_agent,
        cache_path=s.geocoder_cache,
        region=s.geocoder_region,
        prior=s.geocoder_prior,
        offline_fallback=s.geocoder_offline_fallback,
        rate_limit_file=s.geocoder_rate_file,
        memory=s.geocoder_memory,
    )
    return Pipeline(
        models,
        extract=ExtractStage(
            threshold=s.threshold,
            placed_threshold=s.placed_threshold if s.geocoder else None,
            batch_size=s.inference_batch_size,
            chunk_words=s.chunk_words,
            chunk_overlap=s.chunk_overlap,
            max_chunks=s.max_chunks,
            text_cache=metrics.watch_text_cache(TextCache(s.text_cache_bytes)) if s.text_cache_bytes else None,
        ),
        geo=geo,
        options=PipelineOptions(
            text_field=s.text_field,
            id_field=s.id_field,
            max_text_bytes=s.max_text_bytes,
            keep_events=bool(s.metrics_port),  # the status page maps resolved places
        ),
        on_processing_error=overrides.on_processing_error,
    )
