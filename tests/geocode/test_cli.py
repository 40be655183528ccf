"""lmr-geocode CLI, the cache's TTLs and the circuit breaker's clock."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from geocode.cache import GeoCache
from geocode.cli import main
from geocode.guard import Guard, GuardConfig
from lmr.datasets import find_idrisi
from lmr.errors import GeocoderUnavailable
from lmr.lru import ENTRY_OVERHEAD, footprint

IDRISI = find_idrisi()


def _record(text: str, mention: str, lat: float, lon: float, typ: str) -> str:
    i = text.index(mention)
    m = {"text": mention, "type": typ, "start_offset": i, "end_offset": i + len(mention),
         "osm_json": {"lat": str(lat), "lon": str(lon), "display_name": mention}}  # fmt: skip
    return json.dumps({"tweet_id": "1", "text": text, "location_mentions": [m]})


@pytest.fixture()
def tiny_lmd(tmp_path: Path) -> Path:
    f = tmp_path / "lmd" / "hurricane_test" / "dev.jsonl"
    f.parent.mkdir(parents=True)
    f.write_text(
        "\n".join([
            _record("Flooding across Texas tonight", "Texas", 31.26, -98.54, "State"),
            _record("Rescue boats in Houston", "Houston", 29.76, -95.37, "City/town"),
            _record("Aid flights land in Mozambique", "Mozambique", -19.3, 34.9, "Country"),
            _record("Storm in Paris overnight", "Paris", 33.66, -95.55, "City/town"),  # Paris, Texas
        ]) + "\n",
        encoding="utf-8",
    )  # fmt: skip
    return f


def test_resolve_prints_json_and_table() -> None:
    runner = CliRunner()
    out = runner.invoke(main, ["resolve", "Flooding in Luling, Texas tonight", "-m", "Luling", "-m", "Texas", "--json"])
    assert out.exit_code == 0, out.output
    rows = [json.loads(line) for line in out.output.splitlines()]
    assert [r["text"] for r in rows] == ["Luling", "Texas"]
    assert rows[0]["admin1"] == "Texas" and rows[0]["resolved"] is True
    out = runner.invoke(main, ["resolve", "Georgia", "--region", "US"])
    assert out.exit_code == 0 and "state" in out.output and "Georgia" in out.output
    bad = runner.invoke(main, ["resolve", "Houston", "-m", "Dallas"])
    assert bad.exit_code != 0 and "does not occur" in bad.output
    bad = runner.invoke(main, ["resolve", "Houston", "--region", "USA"])
    assert bad.exit_code != 0 and "alpha-2" in bad.output


def test_evaluate_small_file_and_region(tiny_lmd: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = runner.invoke(main, ["evaluate", str(tiny_lmd), "--json"])
    assert out.exit_code == 0, out.output
    m = json.loads(out.output)
    assert m["n"] == 4 and m["coverage"] == 1.0
    assert m["acc_161"] == 0.75  # Paris -> France without context
    assert set(m["by_type"]) == {"State", "City/town", "Country"}
    assert {"median_km", "mean_km"} <= set(m)
    rmap = tmp_path / "regions.json"
    rmap.write_text(json.dumps({"hurricane_test": {"country_codes": ["US", "MZ"]}}), encoding="utf-8")
    details = tmp_path / "details.jsonl"
    out = runner.invoke(main, ["evaluate", str(tiny_lmd), "--region-map", str(rmap), "--json",
                               "--details", str(details)])  # fmt: skip
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["acc_161"] == 1.0
    assert len(details.read_text(encoding="utf-8").splitlines()) == 4
    table = runner.invoke(main, ["evaluate", str(tiny_lmd)])
    assert table.exit_code == 0 and "acc_161=0.7500" in table.output and "City/town" in table.output


def test_evaluate_rejects_files_without_gold_points(tmp_path: Path) -> None:
    f = tmp_path / "lmr.jsonl"
    f.write_text(json.dumps({"text": "Texas", "location_mentions": [
        {"text": "Texas", "type": "State", "start_offset": 0, "end_offset": 5}]}) + "\n", encoding="utf-8")  # fmt: skip
    out = CliRunner().invoke(main, ["evaluate", str(f)])
    assert out.exit_code != 0 and "osm_json" in out.output


def test_help_has_examples() -> None:
    for cmd in ("resolve", "evaluate", "build-index"):
        out = CliRunner().invoke(main, [cmd, "--help"])
        assert out.exit_code == 0 and "Example" in out.output


@pytest.mark.skipif(IDRISI is None, reason="IDRISI not found (see lmr/datasets.py)")
def test_offline_accuracy_on_idrisi_dev() -> None:
    out = CliRunner().invoke(main, ["evaluate", "idrisi:lmd/dev", "--json"])
    assert out.exit_code == 0, out.output
    m = json.loads(out.output)
    assert m["n"] >= 900
    assert m["acc_161"] >= 0.85, m


def test_cache_ttl_negative_ttl_and_lru(tmp_path: Path) -> None:
    now = [1000.0]
    entry = ENTRY_OVERHEAD + footprint(("b", "houston", "")) + footprint((0.0, [{"x": 1}]))
    c = GeoCache(tmp_path / "c.sqlite", max_bytes=2 * entry, ttl=100, negative_ttl=10, clock=lambda: now[0])
    c.put("b", "houston", "", [{"x": 1}])
    c.put("b", "nowhere", "", [])
    assert c.get("b", "houston", "") == [{"x": 1}] and c.get("b", "nowhere", "") == []
    assert c.get("b", "houston", "US") is None  # the context is part of the key
    now[0] += 11
    assert c.get("b", "nowhere", "") is None  # negative entries expire sooner
    assert c.get("b", "houston", "") == [{"x": 1}]
    c.put("b", "a", "", [{"a": 1}])
    c.put("b", "bb", "", [{"b": 1}])
    assert len(c._lru) == 2 and c.stats()["cache_bytes"] <= 2 * entry  # LRU bounded; the SQLite file has everything
    assert c.get("b", "houston", "") == [{"x": 1}] and c.disk_hits >= 1
    now[0] += 100
    assert c.get("b", "houston", "") is None
    assert c.purge_expired() >= 1


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 60_000), min_size=1, max_size=12), st.integers(2_000, 200_000))
def test_long_queries_keep_the_lru_under_its_byte_bound(lengths: list[int], bound: int) -> None:
    """Queries as long as hostile mentions (up to 60,000 characters) are counted by their bytes."""
    c = GeoCache(max_bytes=bound)
    for i, n in enumerate(lengths):
        c.put("offline", ("é" if i % 2 else "a") * n, "US", [{"name": "x" * (n % 500)}])
        assert c.stats()["cache_bytes"] <= bound
    small = "houston"
    c.put("offline", small, "", [{"x": 1}])
    assert c.get("offline", small, "") == [{"x": 1}]  # a small entry always fits after the long ones


def test_circuit_breaker_half_opens_after_reset() -> None:
    now = [0.0]
    calls = []

    def flaky(q: str) -> str:
        calls.append(q)
        if len(calls) <= 2:
            raise GeocoderUnavailable("down")
        return q.upper()

    g = Guard(flaky, GuardConfig(min_delay_seconds=0.0, max_retries=0, failure_threshold=2, reset_after=30.0),
              clock=lambda: now[0], sleep=lambda s: None)  # fmt: skip
    for _ in range(2):
        with pytest.raises(GeocoderUnavailable):
            g("a")
    with pytest.raises(GeocoderUnavailable, match="circuit is open"):
        g("a")
    assert len(calls) == 2 and g.state == "open"
    now[0] = 31.0
    assert g.state == "half-open"
    assert g("a") == "A" and g.state == "closed"


def test_half_open_breaker_lets_exactly_one_trial_through() -> None:
    """Concurrent calls after ``reset_after``: one trial reaches the service, the others fail fast until it ends."""
    import threading

    now = [0.0]
    entered, release = threading.Event(), threading.Event()
    calls: list[str] = []

    def service(q: str) -> str:
        calls.append(q)
        if len(calls) <= 2:
            raise GeocoderUnavailable("down")
        entered.set()
        release.wait(10)
        return q.upper()

    g = Guard(service, GuardConfig(min_delay_seconds=0.0, max_retries=0, failure_threshold=2, reset_after=30.0),
              clock=lambda: now[0], sleep=lambda s: None)  # fmt: skip
    for _ in range(2):
        with pytest.raises(GeocoderUnavailable):
            g("a")
    now[0] = 31.0
    results: list[str] = []
    trial = threading.Thread(target=lambda: results.append(g("trial")))
    trial.start()
    assert entered.wait(10)
    for _ in range(5):  # while the trial runs, everyone else is short-circuited
        with pytest.raises(GeocoderUnavailable, match="circuit is open"):
            g("other")
    release.set()
    trial.join(10)
    assert results == ["TRIAL"] and calls.count("other") == 0 and g.state == "closed"
    assert g("b") == "B"
