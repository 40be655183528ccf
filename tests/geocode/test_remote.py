"""Remote geocoding through geopy against a real HTTP server on 127.0.0.1.

The server answers Nominatim's ``/search`` in Nominatim's JSON format. When
IDRISI-D is present its ``osm_json`` objects (real Nominatim answers) are the
bodies; otherwise hand-written ones of the same shape.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from geocode import GeoContext, Resolution, Unresolved, build_resolver
from geocode.guard import GuardConfig
from lmr.datasets import find_idrisi
from lmr.errors import ConfigError
from lmr.mentions import Mention

IDRISI = find_idrisi()

HAND_WRITTEN: dict[str, dict[str, Any]] = {
    "houston": {
        "place_id": 1, "osm_type": "relation", "osm_id": 2688911, "lat": "29.7589382", "lon": "-95.3676974",
        "boundingbox": ["29.5370705", "30.1103506", "-95.9097419", "-95.0120525"],
        "display_name": "Houston, Harris County, Texas, United States", "place_rank": 16, "category": "boundary",
        "type": "administrative", "importance": 0.78,
        "address": {"city": "Houston", "county": "Harris County", "state": "Texas", "country": "United States",
                    "country_code": "us"},
    },
    "beira": {
        "place_id": 2, "osm_type": "node", "osm_id": 1, "lat": "-19.8315949", "lon": "34.8370183",
        "boundingbox": ["-19.99", "-19.67", "34.67", "34.99"], "display_name": "Beira, Sofala, Moçambique",
        "place_rank": 16, "category": "place", "type": "city", "importance": 0.6,
        "address": {"city": "Beira", "state": "Sofala", "country": "Moçambique", "country_code": "mz"},
    },
}  # fmt: skip


def _bodies() -> dict[str, dict[str, Any]]:
    bodies = dict(HAND_WRITTEN)
    if IDRISI is not None:
        for f in sorted(IDRISI.glob("lmd/*/train.jsonl")):
            for line in f.open(encoding="utf-8"):
                for m in json.loads(line)["location_mentions"]:
                    key = m["text"].lower()
                    if key in ("houston", "beira") and "lat" in m.get("osm_json", {}):
                        bodies[key] = m["osm_json"]
    return bodies


class FakeNominatim:
    """A Nominatim-like server with switchable failure modes."""

    def __init__(self) -> None:
        self.bodies = _bodies()
        self.mode = "ok"  # ok | 429 | 503 | slow
        self.slow_s = 1.0  # how long a slow answer takes
        self.fail_times = 0  # fail this many requests, then answer normally
        self.requests: list[dict[str, list[str]]] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                with outer.lock:
                    outer.requests.append(query)
                    mode = outer.mode
                    if outer.fail_times > 0:
                        outer.fail_times -= 1
                    elif outer.fail_times == 0 and mode != "ok" and outer._recover:
                        mode = "ok"
                if mode == "slow":
                    time.sleep(outer.slow_s)
                if mode in ("429", "503"):
                    # No Retry-After header: urllib3 would otherwise retry below geopy, unseen by the Guard.
                    self.send_response(int(mode))
                    self.end_headers()
                    return
                q = (query.get("q") or [""])[0].strip().lower()
                body = [outer.bodies[q]] if q in outer.bodies else []
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(data)

        self._recover = False
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def fail(self, mode: str, times: int | None = None) -> None:
        """Fail with ``mode``; with ``times`` recover after that many requests."""
        with self.lock:
            self.mode = mode
            self.fail_times = times if times is not None else -1
            self._recover = times is not None


@pytest.fixture()
def server() -> Iterator[FakeNominatim]:
    s = FakeNominatim()
    s.thread.start()
    yield s
    s.server.shutdown()
    s.server.server_close()


def _resolver(server: FakeNominatim, tmp_path: Path, **kw: Any) -> Any:
    kw.setdefault("guard_config", GuardConfig(min_delay_seconds=0.0, max_retries=1, backoff_seconds=0.01,
                                              failure_threshold=3, reset_after=60.0))  # fmt: skip
    kw.setdefault("cache_path", tmp_path / "geo.sqlite")
    return build_resolver("nominatim", url=server.url, user_agent="lmr-tests/1.0", timeout=5.0, **kw)


def _m(text: str) -> Mention:
    return Mention(text, 0, len(text), 1.0)


def test_nominatim_answer_becomes_resolution(server: FakeNominatim, tmp_path: Path) -> None:
    r = _resolver(server, tmp_path)
    res = r.resolve([_m("Houston")], "Houston", GeoContext(country_codes=("US",)))[0]
    assert isinstance(res, Resolution)
    expected = server.bodies["houston"]
    assert res.lat == pytest.approx(float(expected["lat"])) and res.lon == pytest.approx(float(expected["lon"]))
    assert res.backend == "nominatim" and res.country_code == "US" and res.admin1 == "Texas"
    assert res.bbox is not None and res.bbox[0] < res.lat < res.bbox[2]
    q = server.requests[-1]
    assert q["q"] == ["Houston"] and q["countrycodes"] == ["us"] and q["format"] == ["json"]
    nothing = r.resolve([_m("Nowhereville")], "Nowhereville")[0]
    assert isinstance(nothing, Unresolved) and nothing.reason == "no_candidate"


def test_outage_becomes_backend_error_and_stream_continues(server: FakeNominatim, tmp_path: Path) -> None:
    r = _resolver(server, tmp_path)
    server.fail("503")
    out = r.resolve([_m("Houston")], "Houston")
    assert isinstance(out[0], Unresolved) and out[0].reason == "backend_error"
    assert len(server.requests) == 2  # one try + one retry
    server.fail("ok")
    out = r.resolve([_m("Beira")], "Beira")
    assert isinstance(out[0], Resolution) and out[0].country_code == "MZ"
    # Errors are not cached: the failed query is asked again once the service is back.
    out = r.resolve([_m("Houston")], "Houston")
    assert isinstance(out[0], Resolution)


def test_429_is_retried_with_backoff_then_reported(server: FakeNominatim, tmp_path: Path) -> None:
    r = _resolver(server, tmp_path)
    server.fail("429", times=1)
    res = r.resolve([_m("Houston")], "Houston")[0]
    assert isinstance(res, Resolution)
    assert r.stats()["retries"] == 1
    server.fail("429")
    res = r.resolve([_m("Beira")], "Beira")[0]
    assert isinstance(res, Unresolved) and res.reason == "rate_limited"


def test_timeout_is_a_backend_error(server: FakeNominatim, tmp_path: Path) -> None:
    r = build_resolver("nominatim", url=server.url, user_agent="lmr-tests/1.0", timeout=0.2,
                       guard_config=GuardConfig(min_delay_seconds=0.0, max_retries=0))  # fmt: skip
    server.fail("slow")
    res = r.resolve([_m("Houston")], "Houston")[0]
    assert isinstance(res, Unresolved) and res.reason == "backend_error"
    assert "in time" in res.detail


def test_circuit_breaker_stops_calling_a_dead_service(server: FakeNominatim, tmp_path: Path) -> None:
    r = _resolver(server, tmp_path)
    server.fail("503")
    names = ["Alpha", "Bravo", "Charlie", "Delta", "Echo"]
    out = r.resolve([_m(n) for n in names], " ".join(names))
    assert all(isinstance(o, Unresolved) and o.reason == "backend_error" for o in out)
    # 3 consecutive failures open the circuit; later mentions fail fast without a request.
    assert len(server.requests) == 3
    assert r.stats()["circuit"] == "open" and r.stats()["short_circuited"] >= 2


def test_cache_persists_across_restarts(server: FakeNominatim, tmp_path: Path) -> None:
    r1 = _resolver(server, tmp_path)
    first = [r1.resolve([_m("Houston")], "Houston")[0], r1.resolve([_m("Nowhereville")], "Nowhereville")[0]]
    assert len(server.requests) == 2
    r1.close()
    server.fail("503")  # the service is down after the restart: only the cache can answer
    r2 = _resolver(server, tmp_path)
    second = [r2.resolve([_m("Houston")], "Houston")[0], r2.resolve([_m("Nowhereville")], "Nowhereville")[0]]
    assert len(server.requests) == 2
    assert second[0] == first[0]
    assert isinstance(second[1], Unresolved) and second[1].reason == "no_candidate"  # negative cache
    s = r2.stats()
    assert s["cache_disk_hits"] == 2 and s["cache_misses"] == 0


def test_rate_limiter_spaces_requests_but_never_delays_cache_hits(server: FakeNominatim, tmp_path: Path) -> None:
    r = _resolver(server, tmp_path, guard_config=GuardConfig(min_delay_seconds=0.3, max_retries=0))
    r.resolve([_m("Houston")], "Houston")
    r.resolve([_m("Beira")], "Beira")
    s = r.stats()
    assert s["requests"] == 2 and s["rate_limit_wait_s"] > 0.1  # distinct queries were spaced
    waited = s["rate_limit_wait_s"]
    for _ in range(20):
        out = r.resolve([_m("Houston"), _m("Beira")], "Houston Beira")
        assert all(isinstance(o, Resolution) for o in out)
    s = r.stats()
    assert s["requests"] == 2 and s["rate_limit_wait_s"] == waited
    assert s["cache_hits"] == 40


def test_user_agent_is_required_and_keys_only_from_environment(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="user agent"):
        build_resolver("nominatim", url="http://127.0.0.1:9")
    with pytest.raises(ConfigError, match="LMR_GEOCODER_API_KEY"):
        build_resolver("nominatim", url="http://127.0.0.1:9", user_agent="x", options={"api_key": "k"})
    with pytest.raises(ConfigError, match="Unknown geocoder"):
        build_resolver("no-such-service")


def test_api_key_is_sent_but_never_logged(
    server: FakeNominatim, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("LMR_GEOCODER_API_KEY", "sekrit-123")
    caplog.set_level(logging.DEBUG)
    # geopy's PickPoint speaks Nominatim's protocol and takes a key.
    r = build_resolver("pickpoint", url=server.url, user_agent="lmr-tests/1.0", cache_path=tmp_path / "c.sqlite",
                       guard_config=GuardConfig(min_delay_seconds=0.0, max_retries=0))  # fmt: skip
    r.resolve([_m("Houston")], "Houston")
    assert server.requests[-1]["key"] == ["sekrit-123"]
    assert "geocode: " in caplog.text  # geopy logged the request URL...
    assert "sekrit-123" not in caplog.text  # ...without the key


def test_offline_fallback_answers_during_an_outage_and_is_not_cached_as_remote(
    server: FakeNominatim, tmp_path: Path
) -> None:
    r = _resolver(server, tmp_path, offline_fallback=True)
    server.fail("503")
    out = r.resolve([_m("Beira")], "Beira")[0]
    assert isinstance(out, Resolution) and out.backend == "offline" and out.country_code == "MZ"
    assert r.stats()["fallbacks"] == 1
    server.fail("ok")
    back = r.resolve([_m("Beira")], "Beira")[0]  # the service is back: it answers again (nothing cached for it)
    assert isinstance(back, Resolution) and back.backend == "nominatim"
    assert back.lat == pytest.approx(float(server.bodies["beira"]["lat"]))


def test_batch_through_geopy_shares_cache_breaker_and_fallback(server: FakeNominatim, tmp_path: Path) -> None:
    """A batch of posts: the cache answers repeats, an outage opens the circuit, the gazetteer answers meanwhile."""
    r = _resolver(server, tmp_path, offline_fallback=True)
    posts = ["Houston", "Beira", "Houston", "Beira"]
    first = [r.resolve([_m(p)], p)[0] for p in posts]
    assert all(isinstance(x, Resolution) and x.backend == "nominatim" for x in first)
    assert len(server.requests) == 2 and r.stats()["cache_hits"] == 2
    server.fail("503")
    during = [r.resolve([_m(p)], p)[0] for p in ("Paris", "Luling", "Nairobi", "Quito", "Lima")]
    assert all(isinstance(x, Resolution) and x.backend == "offline" for x in during)
    assert r.stats()["circuit"] == "open" and r.stats()["short_circuited"] >= 1
    assert len(server.requests) == 2 + 3  # three failures opened the circuit; later calls never reached the server


def test_public_nominatim_refuses_a_faster_rate() -> None:
    with pytest.raises(ConfigError, match="one request per second"):
        build_resolver("nominatim", user_agent="lmr-tests/1.0", min_delay_seconds=0.2)
    with pytest.raises(ConfigError, match="one request per second"):
        build_resolver("nominatim", url="https://nominatim.openstreetmap.org", user_agent="x", min_delay_seconds=0)
    build_resolver("nominatim", url="http://127.0.0.1:9", user_agent="x", min_delay_seconds=0)  # self-hosted: any


def _shared_calls(path: str, n: int, delay: float, out: Any) -> None:
    from geocode.ratelimit import SharedRateLimit

    limited = SharedRateLimit(time.time, path, min_delay_seconds=delay)
    for _ in range(n):
        out.put(limited())


def test_shared_rate_limit_spaces_calls_across_processes(tmp_path: Path) -> None:
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    q = ctx.Queue()
    delay = 0.2
    procs = [ctx.Process(target=_shared_calls, args=(str(tmp_path / "rate"), 3, delay, q)) for _ in range(2)]
    for p in procs:
        p.start()
    stamps = sorted(q.get(timeout=30) for _ in range(6))
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    # Two processes together kept one rate (a call runs just after its turn, so allow some scheduling slack).
    assert stamps[-1] - stamps[0] >= 5 * delay * 0.9 and min(gaps) >= delay * 0.5, gaps


def test_shared_rate_limit_file_must_be_writable(tmp_path: Path) -> None:
    from geocode.ratelimit import SharedRateLimit

    (tmp_path / "ro").mkdir(mode=0o500)
    target = tmp_path / "ro" / "sub" / "rate"
    if os.geteuid() == 0:
        target = tmp_path / "file-not-dir"
        target.write_text("x")
        target = target / "rate"
    with pytest.raises(ConfigError, match="rate-limit file"):
        SharedRateLimit(time.time, target, min_delay_seconds=1.0)
