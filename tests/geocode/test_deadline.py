"""Resolution under a deadline, and a bounded cost per post (issue 32, item 4).

A remote geocoder never waits past the caller's deadline (request timeout, rate-limit
slot, backoff: tested against a real HTTP server on 127.0.0.1), and the offline
disambiguation of a post naming 1,000 towns does a bounded amount of work (counted).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import geocode.disambiguate as dis
from geocode import Resolution, Unresolved, build_resolver
from geocode.deadline import GeocoderDeadline, within
from geocode.disambiguate import MAX_JOINT, ContextPlace, choose
from geocode.gazetteer import open_gazetteer
from geocode.guard import GuardConfig
from geocode.ratelimit import SharedRateLimit
from geocode.resolver import Resolver
from geocode.results import REASONS, Candidate
from lmr.deadline import Deadline
from lmr.mentions import Mention
from tests.geocode.test_remote import FakeNominatim

SLACK_S = 0.6  # scheduling on a loaded machine: a cut call returns within this after the deadline


@pytest.fixture()
def server() -> Iterator[FakeNominatim]:
    s = FakeNominatim()
    s.thread.start()
    yield s
    s.server.shutdown()
    s.server.server_close()


def _remote(server: FakeNominatim, tmp_path: Path, **guard: Any) -> Resolver:
    cfg = {"min_delay_seconds": 0.0, "max_retries": 2, "backoff_seconds": 0.05, "failure_threshold": 3, **guard}
    return build_resolver("nominatim", url=server.url, user_agent="lmr-tests/1.0", timeout=10.0,
                          cache_path=tmp_path / "geo.sqlite", guard_config=GuardConfig(**cfg))  # fmt: skip


def _mentions(*texts: str) -> tuple[list[Mention], str]:
    post = ", ".join(texts)
    out, at = [], 0
    for t in texts:
        out.append(Mention(t, at, at + len(t), 0.9))
        at += len(t) + 2
    return out, post


def test_deadline_is_a_reason() -> None:
    assert "deadline" in REASONS


def test_a_slow_service_is_cut_at_the_deadline_and_not_blamed(server: FakeNominatim, tmp_path: Path) -> None:
    """A 10 s timeout with 2 retries would wait 30 s per mention: under a 1 s deadline the request timeout is
    shortened to what is left, the other mentions are not sent, and the breaker does not count the cut call."""
    r = _remote(server, tmp_path)
    server.fail("slow")
    server.slow_s = 5.0
    mentions, post = _mentions("Houston", "Beira", "Quito", "Lima")
    t0 = time.monotonic()
    out = r.resolve(mentions, post, deadline=Deadline.after(1.0))
    took = time.monotonic() - t0
    assert took < 1.0 + SLACK_S, took
    assert [o.reason for o in out if isinstance(o, Unresolved)] == ["deadline"] * 4
    assert len(server.requests) == 1, "only the first mention was sent; the rest had no time left"
    s = r.stats()
    assert s["failures"] == 0 and s["retries"] == 0 and s["circuit"] == "closed"
    assert s["unresolved"] == {"deadline": 4}
    server.fail("ok")
    later = r.resolve(mentions[:1], "Houston")[0]  # nothing of the cut call was cached
    assert isinstance(later, Resolution) and later.country_code == "US"


def test_a_rate_limit_slot_after_the_deadline_is_not_waited_for(server: FakeNominatim, tmp_path: Path) -> None:
    r = _remote(server, tmp_path, min_delay_seconds=2.0)
    mentions, post = _mentions("Houston", "Beira")
    t0 = time.monotonic()
    out = r.resolve(mentions, post, deadline=Deadline.after(0.8))
    assert time.monotonic() - t0 < 0.8 + SLACK_S
    assert isinstance(out[0], Resolution)
    assert isinstance(out[1], Unresolved) and out[1].reason == "deadline"
    assert r.stats()["rate_limit_wait_s"] == 0.0 and len(server.requests) == 1


def test_a_backoff_past_the_deadline_is_not_slept(server: FakeNominatim, tmp_path: Path) -> None:
    """The service fails: the retry would come after the deadline, so the call ends now with the service's error."""
    r = _remote(server, tmp_path, backoff_seconds=5.0)
    server.fail("503")
    t0 = time.monotonic()
    out = r.resolve(*_mentions("Houston"), deadline=Deadline.after(1.0))[0]
    assert time.monotonic() - t0 < 1.0
    assert isinstance(out, Unresolved) and out.reason == "backend_error"
    assert len(server.requests) == 1 and r.stats()["retries"] == 0


def test_without_a_deadline_nothing_changes(server: FakeNominatim, tmp_path: Path) -> None:
    r = _remote(server, tmp_path)
    server.fail("slow")
    server.slow_s = 0.3
    out = r.resolve(*_mentions("Houston", "Beira"))
    assert all(isinstance(o, Resolution) for o in out) and len(server.requests) == 2


def test_an_expired_deadline_sends_nothing(server: FakeNominatim, tmp_path: Path) -> None:
    r = _remote(server, tmp_path)
    out = r.resolve(*_mentions("Houston"), deadline=Deadline.after(0.0))
    assert isinstance(out[0], Unresolved) and out[0].reason == "deadline" and not server.requests


def test_shared_rate_limit_turn_after_the_deadline_is_not_taken(tmp_path: Path) -> None:
    calls: list[float] = []
    limited = SharedRateLimit(lambda: calls.append(time.time()), tmp_path / "rate", min_delay_seconds=2.0)
    limited()
    with within(Deadline.after(0.5)), pytest.raises(GeocoderDeadline):
        limited()
    assert len(calls) == 1 and limited.waited == 0.0
    with within(Deadline.after(5.0)):
        limited()  # enough time: waits for its turn, then calls
    assert len(calls) == 2 and calls[1] - calls[0] >= 1.9


# -- the offline disambiguation's work per post ---------------------------------------------------


def _candidate(name: str, lat: float, lon: float, cc: str, match: float = 1.0) -> Candidate:
    return Candidate(name, lat, lon, "city", "city", country_code=cc, population=50_000, importance=0.5, match=match)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(MAX_JOINT + 1, MAX_JOINT + 6), seed=st.integers(0, 10_000))
def test_mentions_past_max_joint_are_scored_alone(n: int, seed: int) -> None:
    """The first MAX_JOINT mentions with candidates are scored together exactly as a post of those alone; every
    later one exactly as if it were the post's only mention."""
    import random

    rnd = random.Random(seed)
    texts = [f"Town{i}" for i in range(n)]
    spans = [(10 * i, 10 * i + 5) for i in range(n)]
    cands = [
        [_candidate(t, rnd.uniform(-40, 40), rnd.uniform(-40, 40), rnd.choice("ABC") * 2, rnd.uniform(0.7, 1))
         for _ in range(rnd.randint(1, 4))]
        for t in texts
    ]  # fmt: skip
    extra = [ContextPlace((_candidate("Aland", 0, 0, "AA"),), 0.6, "aland", (10 * n, 10 * n + 5))]
    got = choose(texts, spans, cands, extra, None)
    head = choose(texts[:MAX_JOINT], spans[:MAX_JOINT], cands[:MAX_JOINT], extra, None)
    assert [c.scores for c in got[:MAX_JOINT]] == [c.scores for c in head]
    for i in range(MAX_JOINT, n):
        alone = choose([texts[i]], [spans[i]], [cands[i]], [], None)[0]
        assert got[i].scores == alone.scores and got[i].probs == alone.probs


@settings(max_examples=200, deadline=None)
@given(
    spans=st.lists(st.tuples(st.integers(0, 60), st.integers(1, 12)).map(lambda t: (t[0], t[0] + t[1])), max_size=30),
    probe=st.tuples(st.integers(0, 70), st.integers(1, 12)).map(lambda t: (t[0], t[0] + t[1])),
)
def test_span_index_finds_the_same_overlaps_as_a_pairwise_scan(
    spans: list[tuple[int, int]], probe: tuple[int, int]
) -> None:
    pairwise = any(dis._overlap(probe, s) for s in spans)
    assert dis._Spans(spans).overlaps(*probe) == pairwise


def _towns(n: int) -> list[str]:
    """``n`` distinct town names of the offline gazetteer (title case, as a post would write them)."""
    out: list[str] = []
    for key, kind, pop, caps in open_gazetteer().names():
        if kind == "city" and pop >= 1000 and not caps and key.replace(" ", "").isalpha() and key.isascii():
            name = key.title()
            if name not in out:
                out.append(name)
                if len(out) == n:
                    break
    return out


def test_a_post_naming_1000_towns_does_bounded_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before, the joint step compared every candidate of every mention with every other (rounds x (1,000 x
    candidates)^2 place relations: hours). Now it relates the first MAX_JOINT mentions only (counted here)."""
    r = build_resolver("offline")
    towns = _towns(1000)
    mentions, post = _mentions(*towns)
    counted = {"relation": 0}
    real = dis.relation

    def counting(*args: Any) -> float:
        counted["relation"] += 1
        return real(*args)

    monkeypatch.setattr(dis, "relation", counting)
    out = r.resolve(mentions, post)
    assert len(out) == 1000
    resolved = sum(isinstance(o, Resolution) for o in out)
    assert resolved >= 900, resolved
    sizes = [len(r.candidates(t, None)) for t in towns]
    joint = [c for c in sizes if c][:MAX_JOINT]
    context_places = 8 * 6  # scan_post: at most 8 places of at most 6 candidates each
    bound = dis.Weights().rounds * sum(joint) * (sum(joint) + context_places)
    everyone = dis.Weights().rounds * sum(sizes) * sum(sizes)
    assert 0 < counted["relation"] <= bound, (counted, bound)
    assert bound * 100 < everyone, "the bound is what makes the post cheap"
