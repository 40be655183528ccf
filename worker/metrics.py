"""Prometheus metrics and the ``/metrics``, ``/healthz``, ``/readyz`` HTTP endpoints, and the status page.

``/`` is the live status page (:mod:`worker.status`), fed by ``/status.json`` and ``/map.svg``.

Each :class:`Metrics` has its own registry, so several workers can live in one process.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, Info, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from lmr.lru import NAMES, held
from lmr.model.text_cache import TextCache
from worker.httpd import BoundedHTTPServer, GuardedHandler
from worker.parse import INTERNAL_ERROR, REASONS
from worker.status import MapCache, RecentPlaces, page_html, status

log = logging.getLogger(__name__)

SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


@dataclass(frozen=True)
class BatchStats:
    """What one delivered micro-batch did: everything the metrics learn from it, in one call."""

    messages: int
    outputs: int
    dlq_reasons: Sequence[str]
    mentions: int
    truncated: int
    seconds: float
    inference_s: float
    latencies_s: Sequence[float] = ()
    committed: Mapping[tuple[str, int], int] = field(default_factory=dict)
    geocode: Mapping[str, object] = field(default_factory=dict)
    events: Sequence[dict[str, Any]] = ()  # kept only for the status page's map (--metrics-port)
    scripts: Sequence[tuple[str, int]] = ()  # (script, mentions) of each event: the per-language counters
    # lag: the high watermarks of the assigned partitions and every offset committed so far
    end_offsets: Mapping[tuple[str, int], int] = field(default_factory=dict)
    all_committed: Mapping[tuple[str, int], int] = field(default_factory=dict)


class CacheBytes:
    """``lmr_worker_cache_bytes{cache}`` and ``lmr_worker_cache_max_bytes{cache}``: what each of the process's
    caches holds and may hold, in bytes (:mod:`lmr.lru`; ``cache`` is one of :data:`lmr.lru.NAMES`)."""

    def collect(self) -> Iterator[Any]:
        now = held()
        held_now = GaugeMetricFamily("lmr_worker_cache_bytes", "Bytes a cache holds (estimated).", labels=["cache"])
        bound = GaugeMetricFamily("lmr_worker_cache_max_bytes", "Bytes a cache may hold.", labels=["cache"])
        for name in NAMES:
            b, m = now.get(name, (0, 0))
            held_now.add_metric([name], b)
            bound.add_metric([name], m)
        yield held_now
        yield bound


class Metrics:
    """The worker's metrics (prefix ``lmr_worker_``)."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self._flow_metrics(r)
        self._model_metrics(r)
        self._geocode_metrics(r)
        r.register(CacheBytes())
        self.recent = RecentPlaces()  # the last resolved mentions, for the status page's map
        self._rate: float | None = None

    def _flow_metrics(self, r: CollectorRegistry) -> None:
        """Messages, batches, latency, offsets and lag."""
        self.messages_in = Counter("lmr_worker_messages_in", "Input messages consumed.", registry=r)
        self.messages_out = Counter("lmr_worker_messages_out", "Enriched events produced (acknowledged).", registry=r)
        self.dlq = Counter("lmr_worker_dlq_messages", "Messages sent to the dead-letter queue.", ["reason"], registry=r)
        self.mentions = Counter("lmr_worker_mentions", "Location mentions found.", registry=r)
        self.truncated = Counter("lmr_worker_truncated_posts", "Posts whose text was not fully read.", registry=r)
        self.events_by_script = Counter(
            "lmr_worker_events_by_script",
            "Enriched events per post script (arabic, latin, ...).",
            ["script"],
            registry=r,
        )
        self.mentions_by_script = Counter(
            "lmr_worker_mentions_by_script", "Location mentions found per post script.", ["script"], registry=r
        )
        self.batch_size = Histogram(
            "lmr_worker_batch_size", "Messages per micro-batch.", buckets=SIZE_BUCKETS, registry=r
        )
        self.batch_latency = Histogram(
            "lmr_worker_batch_seconds",
            "Micro-batch time from processing start to commit.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.event_latency = Histogram(
            "lmr_worker_event_latency_seconds",
            "Per-post latency: record timestamp to output acknowledged.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.inference = Histogram(
            "lmr_worker_inference_seconds", "Model time per micro-batch.", buckets=LATENCY_BUCKETS, registry=r
        )
        self.posts_per_s = Gauge("lmr_worker_posts_per_second", "Throughput over the last batches (EWMA).", registry=r)
        self.committed = Gauge(
            "lmr_worker_committed_offset", "Last committed offset.", ["topic", "partition"], registry=r
        )
        self.assigned = Gauge("lmr_worker_assigned_partitions", "Partitions assigned to this worker.", registry=r)
        self.produce_retries = Counter(
            "lmr_worker_produce_retries", "Produce/flush retries after broker errors.", registry=r
        )
        self.commit_failures = Counter(
            "lmr_worker_commit_failures", "Offset commits that failed (work is redone).", registry=r
        )
        self.lag = Gauge(
            "lmr_worker_consumer_lag",
            "Records after the committed offset (high watermark - committed).",
            ["topic", "partition"],
            registry=r,
        )
        self.revoked_records = Counter(
            "lmr_worker_revoked_records",
            "Uncommitted records dropped on partition revocation (the new owner reads them again).",
            registry=r,
        )

    def _model_metrics(self, r: CollectorRegistry) -> None:
        """The model in use, its reloads, holds, rollbacks and runtime."""
        self.model = Info("lmr_worker_model", "The model in use.", registry=r)
        self.model_reloads = Counter("lmr_worker_model_reloads", "Model hot reloads.", registry=r)
        self.model_holds = Counter(
            "lmr_worker_model_holds",
            "Batches held because the model failed on them and on a canary post (nothing committed).",
            registry=r,
        )
        self.model_rollbacks = Counter("lmr_worker_model_rollbacks", "Rollbacks to the previous model.", registry=r)
        self.runtime = Info("lmr_worker_runtime", "The inference runtime and how auto chose it.", registry=r)
        self.runtime_candidate_rate = Gauge(
            "lmr_worker_runtime_candidate_posts_per_second",
            "Speed of each runtime auto measured on the calibration set.",
            ["runtime"],
            registry=r,
        )
        self.runtime_candidate_agreement = Gauge(
            "lmr_worker_runtime_candidate_agreement_f1",
            "Span F1 of each runtime auto measured against the exact runtime on the calibration set.",
            ["runtime"],
            registry=r,
        )

    def _geocode_metrics(self, r: CollectorRegistry) -> None:
        """The geocoder's cache, requests and stream prior (copied from the resolver's stats)."""
        self.geocode_cache_hits = Gauge(
            "lmr_worker_geocode_cache_hits", "Geocoder cache hits (from the resolver).", registry=r
        )
        self.geocode_requests = Gauge(
            "lmr_worker_geocode_requests", "Geocoder requests (from the resolver).", registry=r
        )
        self.geocode_prior = Gauge(
            "lmr_worker_geocode_prior",
            "The geocoder's stream prior: keys (topic/event), entries (places remembered), observations.",
            ["what"],
            registry=r,
        )
        self.geocode_cache_misses = Gauge(
            "lmr_worker_geocode_cache_misses", "Geocoder cache misses (from the resolver).", registry=r
        )
        self.geocode_memory = Gauge(
            "lmr_worker_geocode_memory",
            "The geocoder's place memory (--geocoder-memory): places (names it keeps), answers (mentions it placed).",
            ["what"],
            registry=r,
        )

    def dead_letter(self, reason: str) -> None:
        """Count one dead letter; the label is always one of the closed list of reasons."""
        self.dlq.labels(reason if reason in REASONS else INTERNAL_ERROR).inc()

    def observe_batch(self, b: BatchStats) -> None:
        """Every per-batch metric from one delivered batch."""
        self.messages_in.inc(b.messages)
        self.messages_out.inc(b.outputs)
        for reason in b.dlq_reasons:
            self.dead_letter(reason)
        self.mentions.inc(b.mentions)
        self.truncated.inc(b.truncated)
        for script, mentions in b.scripts:
            self.events_by_script.labels(script).inc()
            self.mentions_by_script.labels(script).inc(mentions)
        self.batch_size.observe(b.messages)
        self.batch_latency.observe(b.seconds)
        self.inference.observe(b.inference_s)
        for latency in b.latencies_s:
            self.event_latency.observe(latency)
        for (topic, partition), offset in b.committed.items():
            self.committed.labels(topic, str(partition)).set(offset)
        self.observe_rate(b.messages, b.seconds)
        self.set_geocode(b.geocode)
        self.recent.add_events(b.events)
        self.set_lag(b.end_offsets, b.all_committed)

    def observe_rate(self, n: int, seconds: float) -> None:
        if seconds <= 0:
            return
        rate = n / seconds
        self._rate = rate if self._rate is None else 0.7 * self._rate + 0.3 * rate
        self.posts_per_s.set(self._rate)

    def set_geocode(self, stats: Mapping[str, object]) -> None:
        gauges = (
            ("cache_hits", self.geocode_cache_hits),
            ("cache_misses", self.geocode_cache_misses),
            ("requests", self.geocode_requests),
        )
        for key, gauge in gauges:
            v = stats.get(key)
            if isinstance(v, int | float):
                gauge.set(v)
        labelled = (
            (self.geocode_prior, "prior", ("keys", "entries", "observations")),
            (self.geocode_memory, "memory", ("places", "answers")),
        )
        for labelled_gauge, prefix, whats in labelled:
            for what in whats:
                v = stats.get(f"{prefix}_{what}")
                if isinstance(v, int | float):
                    labelled_gauge.labels(what).set(v)

    def set_lag(self, end_offsets: Mapping[tuple[str, int], int], committed: Mapping[tuple[str, int], int]) -> None:
        """Lag per partition of ``end_offsets`` (high watermarks) behind the ``committed`` offsets.

        Only the partitions in ``end_offsets`` (those assigned now) keep a series: after a rebalance the
        new owner reports a partition, not the old one.
        """
        self.lag.clear()
        for (t, p), end in end_offsets.items():
            self.lag.labels(t, str(p)).set(max(0, end - committed.get((t, p), 0)))

    def forget_partitions(self, partitions: Iterable[tuple[str, int]]) -> None:
        """Drop the per-partition series (committed offset, lag) of partitions now owned by another member."""
        for topic, partition in partitions:
            for gauge in (self.committed, self.lag):
                with contextlib.suppress(KeyError):
                    gauge.remove(topic, str(partition))

    def set_runtime(self, extractor: Any) -> None:
        """The extractor's runtime and, when ``auto`` chose it, the figures it chose on."""
        choice = getattr(extractor, "runtime_choice", None)
        info = {"runtime": str(getattr(extractor, "runtime", "")), "chosen_by": "auto" if choice else "setting"}
        if choice is not None:
            info |= {"reason": choice.reason, "cached": str(choice.cached), "probe_seconds": str(choice.seconds)}
            for c in choice.candidates:
                self.runtime_candidate_rate.labels(c.runtime).set(c.posts_per_s)
                self.runtime_candidate_agreement.labels(c.runtime).set(c.agreement_f1)
        self.runtime.info(info)

    def watch_text_cache(self, cache: TextCache) -> TextCache:
        """Export ``cache``'s hits and lookups (``lmr_worker_text_cache_*``); returns the cache."""

        class Collector:
            def collect(self) -> Iterator[Any]:
                st = cache.stats()
                yield CounterMetricFamily(
                    "lmr_worker_text_cache_hits", "Posts (or windows) whose text was already read.", st["hits"]
                )
                yield CounterMetricFamily(
                    "lmr_worker_text_cache_lookups", "Posts (or windows) looked up in the text cache.", st["lookups"]
                )
                yield GaugeMetricFamily("lmr_worker_text_cache_hit_ratio", "Hits / lookups so far.", st["hit_rate"])
                yield GaugeMetricFamily("lmr_worker_text_cache_entries", "Distinct texts held.", st["size"])

        self.registry.register(Collector())
        return cache

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def status(self) -> dict[str, Any]:
        """What the status page shows (JSON-ready)."""
        return status(self.registry, self.recent)


class Health:
    """Liveness and readiness.

    Alive: the main loop ticked within ``stall_s``, or it is inside one batch that started less than
    the batch's time limit ago (a long model pass is not a stall; ``max.poll.interval.ms`` is the
    limit, past which Kafka gives the partitions away anyway). Ready: model serving, partitions
    assigned, broker reachable and acknowledging (set by the loop with the reason when not).
    """

    def __init__(self, stall_s: float = 120.0) -> None:
        self.stall_s = stall_s
        self.last_tick = time.monotonic()
        self.batch_until: float | None = None
        self.ready = False
        self.reason = "starting"

    def tick(self) -> None:
        self.last_tick = time.monotonic()

    def batch_started(self, limit_s: float) -> None:
        self.tick()
        self.batch_until = time.monotonic() + limit_s

    def batch_ended(self) -> None:
        self.batch_until = None
        self.tick()

    def set_ready(self, ready: bool, reason: str = "") -> None:
        self.ready, self.reason = ready, reason

    def alive(self) -> bool:
        now = time.monotonic()
        return now - self.last_tick < self.stall_s or (self.batch_until is not None and now < self.batch_until)


class MetricsServer:
    """``/metrics``, ``/healthz``, ``/readyz`` and the status page ``/`` on a :class:`worker.httpd.BoundedHTTPServer`
    (bounded threads and connections, socket timeouts, a Host allow-list)."""

    def __init__(
        self,
        metrics: Metrics,
        health: Health,
        host: str = "127.0.0.1",
        port: int = 0,
        allowed_hosts: Sequence[str] = (),
    ) -> None:
        self.metrics, self.health = metrics, health
        self.map = MapCache(metrics.recent)
        self.server = BoundedHTTPServer((host, port), self._handler(), allowed_hosts=allowed_hosts)
        self.port = int(self.server.server_address[1])
        self.host = host

    def _handler(self) -> Callable[..., GuardedHandler]:
        metrics, health, live_map = self.metrics, self.health, self.map

        class Handler(GuardedHandler):
            def _send(self, code: int, body: bytes, ctype: str = "text/plain; charset=utf-8") -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                if path == "/metrics":
                    self._send(200, metrics.render(), CONTENT_TYPE_LATEST)
                elif path == "/healthz":
                    ok = health.alive()
                    self._send(200 if ok else 503, b"ok\n" if ok else b"main loop stalled\n")
                elif path == "/readyz":
                    ok = health.ready and health.alive()
                    self._send(200 if ok else 503, b"ready\n" if ok else f"not ready: {health.reason}\n".encode())
                elif path in ("/", "/index.html"):
                    self._send(200, page_html(), "text/html; charset=utf-8")
                elif path == "/status.json":
                    self._send(200, json.dumps(metrics.status()).encode(), "application/json")
                elif path == "/map.svg":
                    self._send(200, live_map.svg().encode(), "image/svg+xml")
                else:
                    self._send(404, b"try /, /metrics, /healthz or /readyz\n")

        return Handler

    def start(self) -> MetricsServer:
        self.server.start()
        log.info("status page on http://%s:%d/ (also /metrics, /healthz, /readyz)", self.host, self.port)
        return self

    def stop(self) -> None:
        self.server.stop()
