"""Every batch has a deadline (issue 32, item 4): extraction first, geocoding what the deadline allows, the rest
``geo: null`` with a reason, never a stall; the group membership stays alive meanwhile.

The slow geocoder is a real HTTP server on 127.0.0.1 (tests/geocode/test_remote.py), the broker the embedded one.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from geocode.resolver import Resolver
from geocode.results import Candidate, GeoContext
from lmr.deadline import Deadline
from tests.conftest import TINY_POSTS, tiny_idrisi_records
from tests.geocode.test_remote import FakeNominatim
from tests.worker_support import TopicReader, WorkerThread, committed, post, produce, topics
from tests.worker_support import settings as worker_settings
from worker.app import Worker
from worker.broker import EmbeddedBroker
from worker.events import load_schema
from worker.extract import ExtractStage
from worker.parse import Message
from worker.pipeline import Pipeline, PipelineOptions
from worker.reload import ModelManager
from worker.resolve import DEADLINE, GEOCODER_ERROR, SKIP_REASONS, ResolverStage, build_geo_stage
from worker.settings import BATCH_DEADLINE_SHARE, WorkerSettings

SLACK_S = 1.0  # a loaded machine: how late a batch may end after its deadline (the last cut request returning)


@pytest.fixture()
def server() -> Iterator[FakeNominatim]:
    s = FakeNominatim()
    s.thread.start()
    yield s
    s.server.shutdown()
    s.server.server_close()


@pytest.fixture(scope="module")
def extractor(tiny_model: Path) -> Any:
    from lmr.model.extractor import load_extractor

    return load_extractor(str(tiny_model))


def _locations(events: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [loc for e in events for loc in e["locations"]]


def _check_events(events: Sequence[dict[str, Any]]) -> None:
    """Schema-valid, and with a geocoder configured ``geo`` is null exactly when a reason says why."""
    schema = load_schema()
    for e in events:
        jsonschema.validate(e, schema)
    for loc in _locations(events):
        assert (loc["geo"] is None) == ("geo_skipped" in loc), loc
        assert loc.get("geo_skipped", DEADLINE) in SKIP_REASONS


# -- the rule ------------------------------------------------------------------------------------


def test_the_deadline_is_a_share_of_the_poll_interval_and_the_schema_lists_every_reason() -> None:
    s = WorkerSettings.from_params({"model": "m", "max_poll_interval_ms": 120_000})
    assert s.batch_deadline_s == 120 * BATCH_DEADLINE_SHARE and 0 < BATCH_DEADLINE_SHARE < 1
    item = load_schema()["properties"]["locations"]["items"]["properties"]
    assert tuple(item["geo_skipped"]["enum"]) == SKIP_REASONS


def test_deadline_time_left_and_caps() -> None:
    now = [100.0]
    d = Deadline.after(5.0, clock=lambda: now[0])
    assert d.left() == 5.0 and d.cap(10.0) == 5.0 and d.cap(2.0) == 2.0 and d.cap(None) == 5.0
    now[0] = 106.0
    assert d.expired and d.left() == 0.0 and d.cap(10.0) == 0.0


# -- the pipeline ----------------------------------------------------------------------------------


def _messages() -> list[Message]:
    return [Message(json.dumps(r).encode(), "t", 0, i) for i, r in enumerate(tiny_idrisi_records())]


def test_geocoding_ends_by_the_deadline_and_the_rest_is_null_with_a_reason(
    server: FakeNominatim, tiny_model: Path, extractor: Any
) -> None:
    """A geocoder answering in 6 s (10 s timeout, 2 retries, 1 request/s: a minute for this batch) gets what is
    left of a 4 s deadline; every post still becomes an event, and the keepalive runs between posts."""
    server.fail("slow")
    server.slow_s = 6.0
    stage = build_geo_stage("nominatim", url=server.url, user_agent="lmr-tests/1.0", prior=False)
    models = ModelManager(str(tiny_model), extractor=extractor)
    pipe = Pipeline(models, extract=ExtractStage(threshold=0.05), geo=stage, options=PipelineOptions(keep_events=True))
    msgs = _messages()
    Pipeline(models, extract=ExtractStage(threshold=0.05)).process(msgs)  # warm: the model's first pass is slow
    ticks: list[float] = []
    t0 = time.monotonic()
    r = pipe.process(msgs, deadline=Deadline.after(4.0), idle=lambda: ticks.append(time.monotonic()))
    took = time.monotonic() - t0
    assert took < max(4.0, r.inference_s) + SLACK_S, (took, r.inference_s)  # extraction first, then geocoding
    assert len(r.outputs) == len(msgs) and not r.dlq
    _check_events(r.events)
    locs = _locations(r.events)
    late = [loc for loc in locs if loc.get("geo_skipped") == DEADLINE]
    assert len(locs) >= 4 and late, "the tiny model finds the posts' places; most of them could not be resolved"
    assert r.late == len(late) == stage.stats()["skipped"][DEADLINE]
    assert len(server.requests) <= 2, "no request is started once the deadline has passed"
    assert ticks, "the worker's keepalive poll ran while the batch was geocoded"


class _BrokenSource:
    """A candidate source with a bug (not a geocoder error): the one failure no real service produces."""

    name = "broken"
    context_aware = False

    def query(self, text: str) -> str:
        return text

    def candidates(self, query: str, context: GeoContext | None = None) -> list[Candidate]:
        raise RuntimeError("a bug in the geocoder")

    def stats(self) -> dict[str, Any]:
        return {}


def test_a_geocoder_failing_on_a_post_leaves_geo_null_with_its_reason(tiny_model: Path, extractor: Any) -> None:
    stage = ResolverStage(Resolver(_BrokenSource()))
    pipe = Pipeline(ModelManager(str(tiny_model), extractor=extractor), extract=ExtractStage(threshold=0.05),
                    geo=stage, options=PipelineOptions(keep_events=True))  # fmt: skip
    r = pipe.process(_messages())
    assert len(r.outputs) == len(_messages()) and not r.dlq
    _check_events(r.events)
    locs = _locations(r.events)
    assert locs and {loc["geo_skipped"] for loc in locs} == {GEOCODER_ERROR} and r.late == 0


# -- through the real broker -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(log_file=tmp_path_factory.mktemp("broker") / "tansu.log") as b:
        yield b


@pytest.mark.slow
def test_a_slow_geocoder_never_holds_a_batch_past_the_poll_interval(
    broker: EmbeddedBroker, server: FakeNominatim, tiny_model: Path, extractor: Any
) -> None:
    """A geocoder answering in 4 s, a 10 s max.poll.interval.ms: before, a batch of 8 posts spent a minute in
    the geocoder, Kafka gave the partition away, the commit was refused and the batch was redone forever.
    Now each batch ends by its 5 s deadline: every post exactly once, offsets committed, no rebalance."""
    server.fail("slow")
    server.slow_s = 4.0
    inp, out, dlq, group = topics(broker, 1)
    n = 16
    texts = [f"{TINY_POSTS[i % len(TINY_POSTS)][0]} ({i})" for i in range(n)]
    produce(broker.bootstrap, inp, [post(i, x) for i, x in enumerate(texts)])
    s = worker_settings(broker.bootstrap, tiny_model, input_topic=inp, output_topic=out, dlq_topic=dlq,
                        group_id=group, threshold=0.05, max_poll_interval_ms=10_000, geocoder="nominatim",
                        geocoder_url=server.url, geocoder_user_agent="lmr-tests/1.0", geocoder_prior=False)  # fmt: skip
    assert s.batch_deadline_s == 5.0
    w = WorkerThread(Worker(s, models=ModelManager(str(tiny_model), extractor=extractor))).start()
    reader = TopicReader(broker.bootstrap, out, 1)
    try:
        records = reader.read_until(n, timeout_s=120, settle_s=1.0)
        assert w.wait_for(lambda: committed(broker.bootstrap, group, inp, 1)[0] == n, timeout_s=30)
    finally:
        code = w.stop()
        reader.close()
    events = [json.loads(r.value) for r in records]
    assert sorted(e["id"] for e in events) == sorted(f"p{i}" for i in range(n)), "every post exactly once"
    _check_events(events)
    assert any(loc.get("geo_skipped") == DEADLINE for loc in _locations(events))
    reg = w.worker.metrics.registry
    batches = reg.get_sample_value("lmr_worker_batch_seconds_count") or 0
    assert batches >= 2
    assert reg.get_sample_value("lmr_worker_batch_seconds_bucket", {"le": "10.0"}) == batches, "a batch overran"
    assert not reg.get_sample_value("lmr_worker_commit_failures_total") and w.worker.revoked_records == 0
    assert code == 0
