"""The status page's data: the ring buffer of resolved places, clustering, quantiles, lag (no browser)."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from worker.metrics import Metrics
from worker.status import NAME_CHARS, Place, RecentPlaces, clusters, quantile

_lat = st.floats(-89.9, 89.9)
_lon = st.floats(-179.9, 179.9)


def _event(*geos: dict[str, Any] | None) -> dict[str, Any]:
    return {"locations": [{"text": "x", "start": 0, "end": 1, "geo": g} for g in geos]}


def test_ring_buffer_keeps_only_resolved_places_and_the_last_n() -> None:
    r = RecentPlaces(size=3)
    r.add_events([_event(None, {"resolved": False, "reason": "not_found"})])
    assert r.snapshot() == (0, [])  # nothing resolved: no new version, nothing to redraw
    geo = {"resolved": True, "lat": 29.76, "lon": -95.36, "display_name": "Houston, Texas"}
    r.add_events([_event(geo, geo), _event({**geo, "lat": 10.0}), _event({**geo, "lat": "bad"})])
    version, places = r.snapshot()
    assert version == 1 and len(places) == 3 and places[-1].lat == 10.0


@given(st.text(min_size=1, max_size=3).map(lambda c: c * 20_000), st.integers(1, 40))
def test_the_map_keeps_a_short_name_of_each_place(long: str, n: int) -> None:
    """A resolved mention can be a 50 KB word: the ring keeps 120 characters of each name, whatever comes."""
    r = RecentPlaces(size=20)
    geo = {"resolved": True, "lat": 1.0, "lon": 2.0}
    r.add_events([{"locations": [{"text": long, "geo": geo}]} for _ in range(n)])
    _, places = r.snapshot()
    assert len(places) == min(n, 20) and all(p.name == long[:NAME_CHARS] for p in places)


@given(st.lists(st.tuples(_lat, _lon), max_size=60), st.sampled_from([0.5, 2.0, 10.0]))
def test_clusters_partition_the_places(points: list[tuple[float, float]], cell: float) -> None:
    places = [Place(a, b, f"p{i % 3}") for i, (a, b) in enumerate(points)]
    cs = clusters(places, cell)
    assert sum(c.count for c in cs) == len(places)
    assert [c.count for c in cs] == sorted((c.count for c in cs), reverse=True)
    for c in cs:  # a cluster's centre lies in its grid cell
        assert -90 <= c.lat <= 90 and -180 <= c.lon <= 180
    assert len(cs) == len({(math.floor(a / cell), math.floor(b / cell)) for a, b in points})


@given(st.lists(st.integers(0, 50), min_size=1, max_size=8), st.floats(0.01, 0.99), st.floats(0.01, 0.99))
def test_quantile_is_monotone_and_inside_the_bounds(counts: list[int], q1: float, q2: float) -> None:
    bounds = [0.01 * 2**i for i in range(len(counts))] + [math.inf]
    cum, buckets = 0, []
    for b, n in zip(bounds, [*counts, 1], strict=True):
        cum += n
        buckets.append((b, float(cum)))
    lo, hi = sorted((q1, q2))
    a, b = quantile(lo, buckets), quantile(hi, buckets)
    assert a is not None and b is not None
    assert 0 <= a <= b <= bounds[-2]


def test_status_reads_the_registry() -> None:
    m = Metrics()
    m.model.info({"model": "m@v3", "ref": "/models/m", "runtime": "fused-bf16"})
    for s in (0.02, 0.02, 0.2, 3.0):
        m.event_latency.observe(s)
    m.dlq.labels("not_json").inc(2)
    m.set_lag({("posts", 0): 10, ("posts", 1): 4}, {("posts", 0): 7})
    m.set_lag({("posts", 1): 9}, {("posts", 1): 9})  # after a rebalance only partition 1 is ours
    m.set_geocode({"cache_hits": 3, "cache_misses": 1, "requests": 1})
    st_ = m.status()
    assert (st_["model"], st_["runtime"]) == ("m@v3", "fused-bf16")
    lat = st_["event_latency_s"]
    assert lat["count"] == 4 and math.isclose(lat["mean"], 3.24 / 4)
    assert 0.01 < lat["p50"] <= 0.025 and 2.5 < lat["p95"] <= 5
    assert st_["dlq"] == {"not_json": 2}
    assert st_["lag"] == [{"topic": "posts", "partition": 1, "lag": 0}]
    assert st_["geocode"]["cache_hit_rate"] == 0.75
    assert st_["geocode"]["memory_places"] is None, "no memory: the status page shows '-'"


def test_the_stream_prior_is_exported() -> None:
    from worker.metrics import Metrics

    m = Metrics()
    m.set_geocode({"cache_hits": 3, "prior_keys": 2, "prior_entries": 17, "prior_observations": 40})
    text = m.render().decode()
    assert 'lmr_worker_geocode_prior{what="keys"} 2.0' in text
    assert 'lmr_worker_geocode_prior{what="entries"} 17.0' in text
    assert 'lmr_worker_geocode_prior{what="observations"} 40.0' in text
    assert "lmr_worker_geocode_cache_hits 3.0" in text
    assert "lmr_worker_geocode_memory{" not in text, "no memory, no series"


def test_the_place_memory_is_exported() -> None:
    from worker.metrics import Metrics

    m = Metrics()
    m.set_geocode({"memory_places": 509, "memory_answers": 12})
    text = m.render().decode()
    assert 'lmr_worker_geocode_memory{what="places"} 509.0' in text
    assert 'lmr_worker_geocode_memory{what="answers"} 12.0' in text
    assert (m.status()["geocode"]["memory_places"], m.status()["geocode"]["memory_answers"]) == (509, 12)


_any_value = st.one_of(
    st.none(), st.booleans(), st.text(max_size=5), st.integers(-1000, 1000), st.floats(allow_nan=True),
    st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),
)  # fmt: skip


@given(st.lists(st.fixed_dictionaries({"resolved": st.booleans(), "lat": _any_value, "lon": _any_value}), max_size=8))
def test_only_finite_numeric_coordinates_in_range_reach_the_map(geos: list[dict[str, Any]]) -> None:
    """An event's geo comes from a geocoder (or a forged input): a lon that is a string, a list, NaN or out of
    range is skipped, never a crash of the batch's bookkeeping or of the map drawing."""
    r = RecentPlaces(size=100)
    r.add_events([_event(*geos)])
    _, places = r.snapshot()

    def ok(v: object, limit: float) -> bool:
        return type(v) in (int, float) and math.isfinite(float(v)) and abs(float(v)) <= limit  # type: ignore[arg-type]

    expected = [g for g in geos if g["resolved"] and ok(g["lat"], 90) and ok(g["lon"], 180)]
    assert [(p.lat, p.lon) for p in places] == [(float(g["lat"]), float(g["lon"])) for g in expected]
    clusters(places)  # math.floor on every coordinate: finite numbers only
