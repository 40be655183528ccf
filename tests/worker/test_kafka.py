"""The worker against a real Kafka-compatible broker (Tansu on a free loopback port)."""

from __future__ import annotations

import json
import shutil
import signal
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from lmr.environment import offline_env
from tests.worker_support import (
    TopicReader,
    WorkerThread,
    committed,
    post,
    produce,
    settings,
    spawn_worker,
    topics,
)
from worker.app import Worker
from worker.broker import EmbeddedBroker
from worker.events import load_schema
from worker.reload import ModelManager

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    log = tmp_path_factory.mktemp("broker") / "tansu.log"
    with EmbeddedBroker(log_file=log) as b:
        yield b


@pytest.fixture(scope="module")
def extractor(tiny_model: Path) -> Any:
    from lmr.model.extractor import load_extractor

    return load_extractor(str(tiny_model))


def in_process(broker: EmbeddedBroker, model: Path, ex: Any, t: tuple[str, str, str, str], **kw: Any) -> WorkerThread:
    inp, out, dlq, group = t
    s = settings(broker.bootstrap, model, input_topic=inp, output_topic=out, dlq_topic=dlq, group_id=group, **kw)
    models = ModelManager(str(model), extractor=ex, check_s=s.reload_check_s)
    return WorkerThread(Worker(s, models=models)).start()


def test_end_to_end_events_match_schema_offsets_and_metrics(
    broker: EmbeddedBroker, tiny_model: Path, extractor: Any
) -> None:
    t = topics(broker, 2)
    texts = [
        "Flooding reported in Houston, Texas tonight",
        "Evacuations ordered along the Guadalupe River near Victoria 🌊🌊 #HoustonFlood",
        "Earthquake shakes Ecuador, damage in Guayaquil",
        "Stay safe everyone",
    ] * 5
    values = [post(i, txt) for i, txt in enumerate(texts)]
    keys = [f"k{i}".encode() if i % 2 else None for i in range(len(values))]
    produce(broker.bootstrap, t[0], values, keys=keys, headers=[("trace", b"abc")])
    w = in_process(broker, tiny_model, extractor, t, metrics_port=0, threshold=0.05)
    try:
        reader = TopicReader(broker.bootstrap, t[1], 2)
        recs = reader.read_until(len(values))
        reader.close()
        assert len(recs) == len(values)
        assert w.wait_for(lambda: sum(v for v in w.worker.committed.values()) == len(values), 20)
    finally:
        assert w.stop() == 0
    schema = load_schema()
    seen_mentions = 0
    by_id = {}
    for r in recs:
        ev = json.loads(r.value)
        jsonschema.validate(ev, schema)
        by_id[ev["id"]] = ev
        assert ev["lmr"]["model"] == "tiny@v1"
        src = ev["lmr"]["source"]
        assert src["topic"] == t[0]
        n = ev["n"]
        assert r.key == (keys[n] if keys[n] is not None else f"p{n}".encode())  # input key, else the post id
        assert ("trace", b"abc") in [(k, bytes(v)) for k, v in r.headers]
        assert ev["text"] == texts[n]
        for loc in ev["locations"]:
            assert ev["text"][loc["start"] : loc["end"]] == loc["text"]
            assert loc["geo"] is None
            seen_mentions += 1
    assert len(by_id) == len(values)
    assert seen_mentions > 0, "threshold 0.05 on the tiny model should yield some mentions"
    # every (partition, offset) of the input appears exactly once
    positions = [
        (json.loads(r.value)["lmr"]["source"]["partition"], json.loads(r.value)["lmr"]["source"]["offset"])
        for r in recs
    ]
    assert len(set(positions)) == len(positions) == len(values)
    c = committed(broker.bootstrap, t[3], t[0], 2)
    assert sum(v or 0 for v in c.values()) == len(values)
    text = w.worker.metrics.render().decode()
    assert f"lmr_worker_messages_in_total {float(len(values))}" in text
    assert 'lmr_worker_model_info{model="tiny@v1"' in text


def test_dlq_reasons_keep_original_bytes_and_headers(broker: EmbeddedBroker, tiny_model: Path, extractor: Any) -> None:
    t = topics(broker, 1)
    bad = {
        "not_utf8": b'{"id": "u", "text": "caf\xe9 \xff"}',
        "not_json": b'{"id": "j", "text": ',
        "not_object": b'["a list"]',
        "no_text": b'{"id": "x", "body": "no text here"}',
        "empty_text": b'{"id": "e", "text": "  \\n "}',
        "text_too_large": json.dumps({"id": "big", "text": "Houston " * 300}).encode(),
        "wrong_type": b'{"id": "w", "text": ["Houston"]}',
    }
    good = [post(i) for i in range(3)]
    values = [
        good[0],
        *bad.values(),
        good[1],
        good[2],
        json.dumps({"tweet_id": 7, "full_text": "Rain in Miami"}).encode(),
    ]
    produce(broker.bootstrap, t[0], values, keys=[f"k{i}".encode() for i in range(len(values))])
    w = in_process(broker, tiny_model, extractor, t, max_text_bytes=1000)
    try:
        dlq = TopicReader(broker.bootstrap, t[2], 1).read_until(len(bad))
        out = TopicReader(broker.bootstrap, t[1], 1).read_until(4)
    finally:
        assert w.stop() == 0
    assert len(out) == 4
    assert {json.loads(r.value).get("id", json.loads(r.value).get("tweet_id")) for r in out} == {"p0", "p1", "p2", 7}
    alt = next(json.loads(r.value) for r in out if "tweet_id" in json.loads(r.value))
    assert alt["lmr"]["text_field"] == "full_text"
    assert len(dlq) == len(bad)
    for r in dlq:
        h = {k: bytes(v).decode() for k, v in r.headers}
        reason = h["lmr.error.reason"]
        assert r.value == bad[reason], reason  # original bytes unchanged
        assert h["lmr.source.topic"] == t[0]
        assert h["lmr.source.partition"] == "0"
        off = int(h["lmr.source.offset"])
        assert values[off] == r.value
        assert r.key == f"k{off}".encode()
        assert h["lmr.error.message"]
    assert w.worker.metrics.dlq.labels("not_utf8")._value.get() == 1


def test_model_failure_isolates_the_bad_post(broker: EmbeddedBroker, tiny_model: Path, extractor: Any) -> None:
    """A model that fails on one post (injected loader: a real model wrapped to fail on a marker)."""

    class FailsOnBoom:
        def __init__(self, inner: Any) -> None:
            self.inner, self.name, self.version = inner, inner.name, inner.version
            self.model_id, self.max_words = inner.model_id, inner.max_words

        def predict_words(self, words_list: Any, texts: Any, **kw: Any) -> Any:
            if any("BOOM" in t for t in texts):
                raise RuntimeError("CUDA error: device-side assert (simulated)")
            return self.inner.predict_words(words_list, texts, **kw)

    t = topics(broker, 1)
    values = [post(0), post(1, "BOOM in Houston"), post(2), post(3)]
    produce(broker.bootstrap, t[0], values)
    inp, out, dlq, group = t
    s = settings(broker.bootstrap, tiny_model, input_topic=inp, output_topic=out, dlq_topic=dlq, group_id=group)
    w = WorkerThread(Worker(s, models=ModelManager(str(tiny_model), extractor=FailsOnBoom(extractor)))).start()
    try:
        outs = TopicReader(broker.bootstrap, out, 1).read_until(3)
        dl = TopicReader(broker.bootstrap, dlq, 1).read_until(1)
    finally:
        assert w.stop() == 0
    assert sorted(json.loads(r.value)["id"] for r in outs) == ["p0", "p2", "p3"]
    assert len(dl) == 1 and dl[0].value == values[1]
    h = {k: bytes(v).decode() for k, v in dl[0].headers}
    assert h["lmr.error.reason"] == "model_error" and "simulated" in h["lmr.error.message"]


def test_two_workers_split_four_partitions(broker: EmbeddedBroker, tiny_model: Path, extractor: Any) -> None:
    t = topics(broker, 4)
    w1 = in_process(broker, tiny_model, extractor, t, client_id="w1")
    w2 = in_process(broker, tiny_model, extractor, t, client_id="w2")
    try:

        def both() -> bool:
            s1, s2 = w1.worker.source, w2.worker.source
            return s1 is not None and s2 is not None and s1.assigned() > 0 and s2.assigned() > 0

        assert w1.wait_for(both, 45), "both workers should get partitions"
        assert w1.worker.source is not None and w2.worker.source is not None
        assert w1.worker.source.assigned() + w2.worker.source.assigned() == 4
        n = 40
        produce(broker.bootstrap, t[0], [post(i) for i in range(n)], keys=[f"k{i}".encode() for i in range(n)])
        recs = TopicReader(broker.bootstrap, t[1], 4).read_until(n, settle_s=1.0)
    finally:
        c1, c2 = w1.stop(), w2.stop()
    assert (c1, c2) == (0, 0)
    ids = sorted(json.loads(r.value)["id"] for r in recs)
    assert sorted(set(ids)) == sorted(f"p{i}" for i in range(n))
    assert w1.worker.processed > 0 and w2.worker.processed > 0
    assert w1.worker.processed + w2.worker.processed >= n


def test_hot_reload_picks_up_new_latest(
    broker: EmbeddedBroker, tiny_model: Path, extractor: Any, tmp_path: Path
) -> None:
    from lmr.model import registry

    reg = tmp_path / "registry" / "tiny"
    reg.mkdir(parents=True)
    shutil.copytree(tiny_model / "v1", reg / "v1")
    registry.set_latest(reg, "v1")
    t = topics(broker, 1)
    inp, out, dlq, group = t
    s = settings(
        broker.bootstrap, reg, input_topic=inp, output_topic=out, dlq_topic=dlq, group_id=group, reload_check_s=0.2
    )
    w = WorkerThread(Worker(s)).start()
    reader = TopicReader(broker.bootstrap, out, 1)
    try:
        produce(broker.bootstrap, inp, [post(i) for i in range(10)])
        assert len(reader.read_until(10)) == 10
        # publish v2: same weights, a changed model card, sealed with a manifest, then LATEST -> v2
        shutil.copytree(reg / "v1", reg / ".v2-tmp")
        (reg / ".v2-tmp" / "README.md").write_text("v2 card\n")
        registry.write_manifest(reg / ".v2-tmp", ["location"], 0.5, {"name": "tiny", "version": "v2"})
        (reg / ".v2-tmp").rename(reg / "v2")
        registry.set_latest(reg, "v2")
        assert w.wait_for(
            lambda: w.worker.pipeline is not None and w.worker.pipeline.models.current.version == "v2", 60
        )
        produce(broker.bootstrap, inp, [post(i) for i in range(10, 20)])
        recs = reader.read_until(20, settle_s=1.0)
    finally:
        reader.close()
        assert w.stop() == 0
    events = [json.loads(r.value) for r in recs]
    offsets = sorted(e["lmr"]["source"]["offset"] for e in events)
    assert offsets == list(range(20)), "no message lost or processed twice"
    models = {e["n"]: e["lmr"]["model"] for e in events}
    assert all(models[i] == "tiny@v1" for i in range(10))
    assert all(models[i] == "tiny@v2" for i in range(10, 20))
    assert w.worker.metrics.model_reloads._value.get() == 1


def test_metrics_and_health_endpoints(broker: EmbeddedBroker, tiny_model: Path, extractor: Any) -> None:
    from worker.broker import free_port

    t = topics(broker, 1)
    port = free_port()
    w = in_process(broker, tiny_model, extractor, t, metrics_port=port)
    try:
        produce(broker.bootstrap, t[0], [post(i) for i in range(5)])
        TopicReader(broker.bootstrap, t[1], 1).read_until(5)
        assert w.wait_for(lambda: w.worker.health.ready, 20)
        base = f"http://127.0.0.1:{port}"
        with urllib.request.urlopen(base + "/healthz", timeout=5) as r:
            assert r.status == 200
        with urllib.request.urlopen(base + "/readyz", timeout=5) as r:
            assert r.status == 200
        assert w.wait_for(lambda: w.worker.processed == 5, 10)
        with urllib.request.urlopen(base + "/metrics", timeout=5) as r:
            body = r.read().decode()
    finally:
        assert w.stop() == 0
    for name in (
        "lmr_worker_messages_in_total 5.0",
        "lmr_worker_messages_out_total 5.0",
        "lmr_worker_batch_size_bucket",
        "lmr_worker_batch_seconds_bucket",
        "lmr_worker_inference_seconds_bucket",
        "lmr_worker_posts_per_second",
        f'lmr_worker_committed_offset{{partition="0",topic="{t[0]}"}} 5.0',
        "lmr_worker_model_info",
        "lmr_worker_event_latency_seconds_count 5.0",
    ):
        assert name in body, name


def _wait_file(path: Path, text: str, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text(errors="replace"):
            return True
        time.sleep(0.2)
    return False


def _cli_args(broker: EmbeddedBroker, model: Path, t: tuple[str, str, str, str], *extra: str) -> list[str]:
    inp, out, dlq, group = t
    return [
        "run",
        "--bootstrap-servers", broker.bootstrap,
        "--input-topic", inp, "--output-topic", out, "--dlq-topic", dlq, "--group-id", group,
        "--model", str(model),
        "--session-timeout-ms", "6000", "--heartbeat-interval-ms", "1000",
        *extra,
    ]  # fmt: skip


def test_kill9_mid_stream_then_restart_loses_nothing(broker: EmbeddedBroker, tiny_model: Path, tmp_path: Path) -> None:
    t = topics(broker, 2)
    n = 120
    values = [post(i) if i % 37 else b"\xff not utf8" for i in range(n)]
    produce(broker.bootstrap, t[0], values, keys=[f"k{i}".encode() for i in range(n)])
    log = tmp_path / "worker.log"
    args = _cli_args(broker, tiny_model, t, "--batch-size", "4", "--max-wait-ms", "50")
    p = spawn_worker(args, log)
    reader = TopicReader(broker.bootstrap, t[1], 2)
    try:
        first = reader.read_until(10, timeout_s=90)
        assert len(first) >= 10, log.read_text()[-3000:]
        p.send_signal(signal.SIGKILL)  # mid-stream: batches in flight, some produced but not committed
        p.wait(10)
        before = committed(broker.bootstrap, t[3], t[0], 2)
        assert sum(v or 0 for v in before.values()) < n, "the kill should land mid-stream"
        p2 = spawn_worker([*args, "--idle-exit-s", "4"], log)
        assert p2.wait(180) == 0, log.read_text()[-3000:]
    finally:
        if p.poll() is None:
            p.kill()
    outs = reader.read_until(n, timeout_s=10, settle_s=0.5)
    reader.close()
    dlq = TopicReader(broker.bootstrap, t[2], 1).read_until(1, timeout_s=10, settle_s=0.5)
    seen = {
        (json.loads(r.value)["lmr"]["source"]["partition"], json.loads(r.value)["lmr"]["source"]["offset"])
        for r in outs
    }
    for r in dlq:
        h = {k: bytes(v).decode() for k, v in r.headers}
        seen.add((int(h["lmr.source.partition"]), int(h["lmr.source.offset"])))
    after = committed(broker.bootstrap, t[3], t[0], 2)
    # every input offset below the committed end of each partition is in the output or the DLQ
    expected = {(p, o) for p, end in after.items() for o in range(end or 0)}
    assert sum(v or 0 for v in after.values()) == n
    assert expected <= seen, sorted(expected - seen)[:10]
    assert len(seen) == n


def test_sigterm_drains_commits_and_exits_zero(broker: EmbeddedBroker, tiny_model: Path, tmp_path: Path) -> None:
    t = topics(broker, 1)
    n = 150
    produce(broker.bootstrap, t[0], [post(i) for i in range(n)])
    log = tmp_path / "worker.log"
    p = spawn_worker(_cli_args(broker, tiny_model, t, "--batch-size", "16", "--shutdown-timeout-s", "20"), log)
    reader = TopicReader(broker.bootstrap, t[1], 1)
    try:
        assert len(reader.read_until(16, timeout_s=90)) >= 16, log.read_text()[-3000:]
        t0 = time.monotonic()
        p.send_signal(signal.SIGTERM)
        code = p.wait(30)
        took = time.monotonic() - t0
    finally:
        if p.poll() is None:
            p.kill()
    assert code == 0, log.read_text()[-3000:]
    assert took < 25
    text = log.read_text()
    assert "draining" in text and "worker stopped" in text
    end = committed(broker.bootstrap, t[3], t[0], 1)[0]
    assert end is not None and end > 0
    outs = reader.read_until(end, timeout_s=10, settle_s=0.5)
    reader.close()
    offsets = {json.loads(r.value)["lmr"]["source"]["offset"] for r in outs}
    assert set(range(end)) <= offsets, "every committed offset was delivered before the commit"
    assert offsets == set(range(end)), "a clean drain delivers exactly what it commits"


def test_sink_retries_through_a_broker_outage_and_resumes(tmp_path: Path) -> None:
    """Produce failures: the sink keeps retrying (nothing acknowledged, so nothing would be committed) and
    delivers once a broker is back on the same address; a stopping worker can give up instead."""
    import threading

    from lmr.backoff import Backoff
    from worker.events import OutRecord
    from worker.parse import Message
    from worker.sinks import KafkaSink

    b1 = EmbeddedBroker(log_file=tmp_path / "b1.log").start()
    port = b1.port
    b1.create_topic("o", 1)
    s = settings(b1.bootstrap, "unused-model-path", request_timeout_ms=3000, flush_timeout_s=0.5)
    src = Message(b"{}", "in", 0, 0)
    sink = KafkaSink(s.kafka, "o", "d", flush_timeout_s=0.5, backoff=Backoff(0.2, 0.5))
    assert sink.deliver([OutRecord(b"first", b"k", (), src)], [], give_up=lambda: False)
    b1.stop()
    result: list[bool] = []
    stop = threading.Event()
    th = threading.Thread(
        target=lambda: result.append(sink.deliver([OutRecord(b"second", b"k", (), src)], [], give_up=stop.is_set)),
        daemon=True,
    )
    th.start()
    time.sleep(3)
    assert th.is_alive() and not result and not sink.healthy, "delivery must wait for the broker"
    b2 = EmbeddedBroker(port, log_file=tmp_path / "b2.log").start()
    try:
        b2.create_topic("o", 1)
        b2.create_topic("d", 1)
        th.join(60)
        assert result == [True] and sink.healthy
        recs = TopicReader(b2.bootstrap, "o", 1).read_until(1, timeout_s=20)
        assert [r.value for r in recs] == [b"second"]
        b2.stop()
        t0 = time.monotonic()
        assert (
            sink.deliver([OutRecord(b"third", None, (), src)], [], give_up=lambda: time.monotonic() - t0 > 1) is False
        )
    finally:
        stop.set()
        b2.stop()
        sink.close(timeout_s=1)


def test_replay_cli_orders_by_created_at_with_timestamps_and_keys(broker: EmbeddedBroker, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from worker.cli import main
    from worker.replay import parse_created_at

    f1, f2 = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    f1.write_text(
        json.dumps({"tweet_id": "2", "text": "b", "created_at": "Wed Aug 30 21:18:09 +0000 2017"})
        + "\n"
        + json.dumps({"tweet_id": "0", "text": "a", "created_at": "Wed Aug 30 21:18:07 +0000 2017"})
        + "\n"
    )
    f2.write_text(json.dumps({"id": 1, "text": "c", "created_at": "2017-08-30T21:18:08Z"}) + "\n")
    topic = f"replay-{uuid.uuid4().hex[:6]}"
    broker.create_topic(topic, 1)
    res = CliRunner().invoke(
        main, ["replay", str(f1), str(f2), "--bootstrap-servers", broker.bootstrap, "--topic", topic, "--rate", "50"]
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.output.strip().splitlines()[-1])["sent"] == 3
    recs = TopicReader(broker.bootstrap, topic, 1).read_until(3, timeout_s=20)
    assert [r.key for r in recs] == [b"0", b"1", b"2"]
    assert [r.timestamp for r in recs] == [parse_created_at(json.loads(r.value)["created_at"]) for r in recs]
    assert recs[0].timestamp < recs[1].timestamp < recs[2].timestamp


def test_broker_command_starts_tansu_with_topics(tmp_path: Path) -> None:
    import subprocess

    from kafka.admin import KafkaAdminClient

    from tests.worker_support import worker_cmd
    from worker.broker import free_port, wait_for_port

    port = free_port()
    p = subprocess.Popen(worker_cmd("broker", "--port", str(port), "--topic", "posts:3"), stderr=subprocess.PIPE)
    try:
        assert wait_for_port("127.0.0.1", port, 30)
        deadline = time.monotonic() + 30
        topics_seen: list[str] = []
        while time.monotonic() < deadline and "posts" not in topics_seen:
            admin = KafkaAdminClient(bootstrap_servers=f"127.0.0.1:{port}")
            topics_seen = admin.list_topics()
            if "posts" in topics_seen:
                desc = admin.describe_topics(["posts"])
                assert len(desc[0]["partitions"]) == 3
            admin.close()
            time.sleep(0.2)
        assert "posts" in topics_seen
    finally:
        p.send_signal(signal.SIGTERM)
        assert p.wait(10) == 0
    assert not wait_for_port("127.0.0.1", port, 0.5), "the Tansu child stops with the command"


POISON = {
    "surrogate": b'{"id": "s", "text": "Help in Houston \\ud800 now", "\\udfff": "\\ud83d"}',  # repaired: an event
    "deep": b'{"id": "d", "text": "Rain in Houston", "a": ' + b"[" * 3000 + b"]" * 3000 + b"}",
    "bigint": b'{"id": "b", "text": "Rain in Houston", "n": ' + b"9" * 5000 + b"}",
    "nan": b'{"id": "f", "text": "Rain in Houston", "x": NaN}',
    "tombstone": None,
}
EXPECTED_REASON = {"deep": "too_deep", "bigint": "not_json", "nan": "not_json", "tombstone": "tombstone"}


def test_poison_mid_stream_kill9_and_restart_move_past_it(
    broker: EmbeddedBroker, tiny_model: Path, tmp_path: Path
) -> None:
    """Messages that used to crash the worker on every restart: one event or one dead letter each, stream moves on."""
    t = topics(broker, 1)
    values: list[bytes | None] = [post(i) for i in range(48)]
    at = {"surrogate": 6, "deep": 14, "bigint": 15, "nan": 30, "tombstone": 31}
    for name, i in at.items():
        values[i] = POISON[name]
    n = len(values)
    produce(broker.bootstrap, t[0], values, keys=[f"k{i}".encode() for i in range(n)])  # type: ignore[arg-type]
    log = tmp_path / "worker.log"
    args = _cli_args(broker, tiny_model, t, "--batch-size", "4", "--max-wait-ms", "50")
    p = spawn_worker(args, log)
    reader = TopicReader(broker.bootstrap, t[1], 1)
    try:
        assert len(reader.read_until(8, timeout_s=120)) >= 8, log.read_text()[-3000:]
        p.send_signal(signal.SIGKILL)
        p.wait(10)
        p2 = spawn_worker([*args, "--idle-exit-s", "4"], log)
        assert p2.wait(240) == 0, log.read_text()[-3000:]
    finally:
        if p.poll() is None:
            p.kill()
    assert committed(broker.bootstrap, t[3], t[0], 1)[0] == n, "the committed offset moved past every poison message"
    events = {
        json.loads(r.value)["lmr"]["source"]["offset"]: json.loads(r.value) for r in reader.read_until(n, 10, 0.5)
    }
    reader.close()
    dlq = TopicReader(broker.bootstrap, t[2], 1).read_until(4, timeout_s=10, settle_s=0.5)
    dead = {int(dict(r.headers)["lmr.source.offset"]): r for r in dlq}
    assert set(events) | set(dead) == set(range(n)) and not set(events) & set(dead)
    assert events[at["surrogate"]]["text"] == "Help in Houston \ufffd now"
    for name, reason in EXPECTED_REASON.items():
        r = dead[at[name]]
        assert dict(r.headers)["lmr.error.reason"] == reason.encode(), name
        assert r.value == POISON[name], "dead letters keep the original bytes (a tombstone stays null)"
    assert "Traceback" not in log.read_text()


def test_secrets_never_reach_a_log_line_at_debug_level(
    broker: EmbeddedBroker, tiny_model: Path, tmp_path: Path
) -> None:
    """Real runs at DEBUG level in both formats, with every secret set: kafka-python's admin client logs its whole
    configuration (SASL password included) and geopy its request URLs (a password in --geocoder-url)."""
    import subprocess

    from tests.worker_support import REPO, worker_cmd

    secrets = {"LMR_SASL_PASSWORD": "sasl-Pa55-9f3e", "LMR_SSL_KEY_PASSWORD": "sslkey-Pa55-77"}
    url_password = "urlPa55-31x"
    env = {**os_environ(), **secrets, "LMR_GEOCODER_API_KEY": "geo-Key-4411"}
    runs = []
    for fmt in ("plain", "json"):
        t = topics(broker, 1)
        produce(broker.bootstrap, t[0], [post(i) for i in range(3)])
        base = _cli_args(broker, tiny_model, t, "--create-topics", "2", "--batch-size", "3")
        sasl = [*base, "--security-protocol", "SASL_PLAINTEXT", "--sasl-mechanism", "PLAIN", "--sasl-username", "u"]
        geo = [*base, "--max-messages", "3", "--geocoder", "nominatim", "--geocoder-user-agent", "lmr-test/1",
               "--geocoder-url", f"http://geo-user:{url_password}@127.0.0.1:9/"]  # fmt: skip
        for name, args in (("sasl", sasl), ("geo", geo)):
            out = tmp_path / f"{name}-{fmt}.log"
            cmd = worker_cmd("--log-level", "DEBUG", "--log-format", fmt, *args)
            with out.open("wb") as f:
                runs.append((out, subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=REPO, env=env)))
    for _, proc in runs:
        proc.wait(300)
    texts = {out.name: out.read_text(errors="replace") for out, _ in runs}
    assert "Starting KafkaAdminClient with configuration" in texts["sasl-plain.log"]
    assert "KafkaAdminClient" in texts["sasl-json.log"] and "sasl_plain_password" in texts["sasl-json.log"]
    assert "geo-user:***@" in texts["geo-plain.log"] and "worker stopped" in texts["geo-json.log"]
    for name, text in texts.items():
        assert text.count("\n") > 20, name  # DEBUG: many lines were written and scanned
        for secret in [*secrets.values(), url_password, "geo-Key-4411"]:
            assert secret not in text, (name, secret)
    for line in texts["geo-json.log"].splitlines():
        if line.startswith("{"):
            json.loads(line)


def os_environ() -> dict[str, str]:
    return offline_env()


def test_tombstones_and_null_headers_reach_the_dlq_topic_as_they_were(broker: EmbeddedBroker, tmp_path: Path) -> None:
    """Through a real producer and broker: the tombstone stays null, null header values are named."""
    from lmr.backoff import Backoff
    from worker.events import dlq_record
    from worker.parse import TOMBSTONE, Message, Rejected
    from worker.sinks import KafkaSink

    t = topics(broker, 1)
    s = settings(broker.bootstrap, "unused-model-path")
    sink = KafkaSink(s.kafka, t[1], t[2], flush_timeout_s=5.0, backoff=Backoff(0.2, 0.5))
    src = Message(None, t[0], 0, 3, b"k", (("trace", None), ("h", b"1")))
    try:
        assert sink.deliver(
            [], [dlq_record(Rejected(src, TOMBSTONE, "the message has no value"))], give_up=lambda: True
        )
    finally:
        sink.close()
    (r,) = TopicReader(broker.bootstrap, t[2], 1).read_until(1, timeout_s=20)
    h = dict(r.headers)
    assert r.value is None and r.key == b"k"
    assert h["trace"] == b"" and h["lmr.source.null_headers"] == b"0" and h["lmr.error.reason"] == b"tombstone"
