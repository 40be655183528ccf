"""The live status page served at ``/`` by the metrics server (read-only, no secrets).

``/`` is a static page whose script polls ``/status.json`` every few seconds and swaps in ``/map.svg``
when new places arrive. Everything on it comes from the worker's own Prometheus registry (model,
runtime, throughput, latency, dead letters by reason, lag per partition, geocoder cache) and from
:class:`RecentPlaces`, a ring buffer of the last resolved mentions. The map is drawn by matplotlib
over ``countryinfo`` outlines (see :mod:`lmr.report.maps`): nothing is fetched from the internet.
"""

from __future__ import annotations

import math
import threading
from collections import Counter, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from prometheus_client import CollectorRegistry

RECENT_PLACES = 500  # resolved mentions kept for the map
NAME_CHARS = 120  # characters of each one's name kept (a mention can be a 50 KB word): the ring stays under ~150 KB
CLUSTER_DEG = 2.0  # mentions within one cell of this many degrees are one point on the map


@dataclass(frozen=True)
class Place:
    lat: float
    lon: float
    name: str


@dataclass(frozen=True)
class Cluster:
    lat: float
    lon: float
    count: int
    name: str  # the most frequent name in the cluster


def _degrees(value: object, limit: float) -> float | None:
    """``value`` as degrees when it is a finite number within ``±limit``, else None (never trusted blindly)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    v = float(value)
    return v if math.isfinite(v) and -limit <= v <= limit else None


class RecentPlaces:
    """The last ``size`` resolved mentions (thread-safe); ``version`` changes whenever one is added."""

    def __init__(self, size: int = RECENT_PLACES) -> None:
        self._places: deque[Place] = deque(maxlen=size)
        self._lock = threading.Lock()
        self.version = 0

    def add_events(self, events: Iterable[dict[str, Any]]) -> None:
        """Keep every resolved location of the enriched ``events``."""
        new = []
        for ev in events:
            for loc in ev.get("locations") or []:
                geo = loc.get("geo") if isinstance(loc, dict) else None
                if not (isinstance(geo, dict) and geo.get("resolved")):
                    continue
                lat, lon = _degrees(geo.get("lat"), 90), _degrees(geo.get("lon"), 180)
                if lat is not None and lon is not None:
                    name = str(geo.get("display_name") or loc.get("text") or "")[:NAME_CHARS]
                    new.append(Place(lat, lon, name))
        if new:
            with self._lock:
                self._places.extend(new)
                self.version += 1

    def snapshot(self) -> tuple[int, list[Place]]:
        with self._lock:
            return self.version, list(self._places)


def clusters(places: Sequence[Place], cell_deg: float = CLUSTER_DEG) -> list[Cluster]:
    """Places grouped by grid cell: each cluster at its members' mean position, largest first."""
    cells: dict[tuple[int, int], list[Place]] = {}
    for p in places:
        cells.setdefault((math.floor(p.lat / cell_deg), math.floor(p.lon / cell_deg)), []).append(p)
    out = [
        Cluster(
            sum(p.lat for p in ps) / len(ps),
            sum(p.lon for p in ps) / len(ps),
            len(ps),
            Counter(p.name for p in ps).most_common(1)[0][0],
        )
        for ps in cells.values()
    ]
    return sorted(out, key=lambda c: -c.count)


def map_svg(cs: Sequence[Cluster]) -> str:
    """The map of ``cs``: one circle per cluster (``<g id="clusters">``), area growing with its count."""
    from lmr.report.charts import to_svg
    from lmr.report.maps import WORLD, points, view_box, world_axes

    fig, ax = world_axes(view_box([(c.lat, c.lon) for c in cs], pad=6) if cs else WORLD, width=7.5)
    points(
        ax,
        [(c.lat, c.lon) for c in cs],
        "clusters",
        sizes=[12 + 24 * math.sqrt(c.count) for c in cs],
        color="#e45756",
        alpha=0.65,
        edgecolors="#8c1d1d",
        linewidths=0.6,
    )
    for c in cs[:8]:
        ax.annotate(
            f"{c.name.split(',')[0][:24]} ({c.count})",
            (c.lon, c.lat),
            xytext=(5, 4),
            textcoords="offset points",
            fontsize=7,
            color="#333333",
        )
    return to_svg(fig, "live-map")


class MapCache:
    """Renders the map only when the ring buffer changed (one render at a time)."""

    def __init__(self, recent: RecentPlaces) -> None:
        self.recent = recent
        self._lock = threading.Lock()
        self._svg: tuple[int, str] | None = None

    def svg(self) -> str:
        with self._lock:
            version, places = self.recent.snapshot()
            if self._svg is None or self._svg[0] != version:
                self._svg = (version, map_svg(clusters(places)))
            return self._svg[1]


def _samples(registry: CollectorRegistry) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in registry.collect():
        for s in family.samples:
            out.setdefault(s.name, []).append((dict(s.labels), float(s.value)))
    return out


def _one(samples: dict[str, list[tuple[dict[str, str], float]]], name: str) -> float:
    return sum(v for _, v in samples.get(name, []))


def quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float | None:
    """The ``q`` quantile of cumulative ``(upper bound, count)`` buckets, interpolated linearly inside the
    bucket it falls in (as Prometheus's ``histogram_quantile``); the largest finite bound if in ``+Inf``."""
    total = buckets[-1][1] if buckets else 0.0
    if not total:
        return None
    rank, lower, below = q * total, 0.0, 0.0
    for upper, cum in buckets:
        if cum >= rank:
            if math.isinf(upper):
                return lower
            return lower + (upper - lower) * ((rank - below) / (cum - below) if cum > below else 1.0)
        lower, below = upper, cum
    return lower


def _histogram(samples: dict[str, list[tuple[dict[str, str], float]]], name: str) -> dict[str, float | None]:
    """Count, mean, p50 and p95 of a histogram."""
    count = _one(samples, f"{name}_count")
    buckets = sorted((float(lb["le"]), v) for lb, v in samples.get(f"{name}_bucket", []))
    out: dict[str, float | None] = {"count": count, "mean": _one(samples, f"{name}_sum") / count if count else None}
    for q in (0.5, 0.95):
        out[f"p{int(q * 100)}"] = quantile(q, buckets)
    return out


def _lag(samples: dict[str, list[tuple[dict[str, str], float]]]) -> list[dict[str, Any]]:
    rows = [(lb["topic"], int(lb["partition"]), int(v)) for lb, v in samples.get("lmr_worker_consumer_lag", [])]
    return [{"topic": t, "partition": p, "lag": n} for t, p, n in sorted(rows)]


def status(registry: CollectorRegistry, recent: RecentPlaces) -> dict[str, Any]:
    """What the page shows, read from the registry (JSON-ready)."""
    s = _samples(registry)
    model = next((lb for lb, _ in s.get("lmr_worker_model_info", [])), {})
    hits, misses = _one(s, "lmr_worker_geocode_cache_hits"), _one(s, "lmr_worker_geocode_cache_misses")
    memory = {lb["what"]: int(v) for lb, v in s.get("lmr_worker_geocode_memory", [])}
    version, places = recent.snapshot()
    cs = clusters(places)
    return {
        "model": model.get("model", ""),
        "model_ref": model.get("ref", ""),
        "runtime": model.get("runtime", ""),
        "posts_per_second": round(_one(s, "lmr_worker_posts_per_second"), 2),
        "messages_in": int(_one(s, "lmr_worker_messages_in_total")),
        "messages_out": int(_one(s, "lmr_worker_messages_out_total")),
        "mentions": int(_one(s, "lmr_worker_mentions_total")),
        "event_latency_s": _histogram(s, "lmr_worker_event_latency_seconds"),
        "batch_seconds": _histogram(s, "lmr_worker_batch_seconds"),
        "dlq": {lb["reason"]: int(v) for lb, v in s.get("lmr_worker_dlq_messages_total", [])},
        "lag": _lag(s),
        "assigned_partitions": int(_one(s, "lmr_worker_assigned_partitions")),
        "geocode": {
            "cache_hits": int(hits),
            "cache_misses": int(misses),
            "cache_hit_rate": round(hits / (hits + misses), 4) if hits + misses else None,
            "memory_places": memory.get("places"),  # None without --geocoder-memory
            "memory_answers": memory.get("answers"),
        },
        "map": {
            "version": version,
            "places": len(places),
            "clusters": len(cs),
            "top": [{"name": c.name, "count": c.count, "lat": round(c.lat, 3), "lon": round(c.lon, 3)} for c in cs[:9]],
        },
    }


def page_html() -> bytes:
    """The static page (``worker/status.html``, shipped in the package)."""
    return resources.files("worker").joinpath("status.html").read_bytes()
