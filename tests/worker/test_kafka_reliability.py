"""The worker's worst minutes against the real broker: a rebalance with a batch in hand, an oversized record,
and SIGTERM during a broker outage."""

from __future__ import annotations

import json
import signal
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

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
from worker.broker import EmbeddedBroker, free_port
from worker.reload import ModelManager

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(log_file=tmp_path_factory.mktemp("broker") / "tansu.log") as b:
        yield b


@pytest.fixture(scope="module")
def extractor(tiny_model: Path) -> Any:
    from lmr.model.extractor import load_extractor

    return load_extractor(str(tiny_model))


def worker(broker: EmbeddedBroker, model: Path, ex: Any, t: tuple[str, str, str, str], **kw: Any) -> WorkerThread:
    inp, out, dlq, group = t
    s = settings(broker.bootstrap, model, input_topic=inp, output_topic=out, dlq_topic=dlq, group_id=group, **kw)
    return WorkerThread(Worker(s, models=ModelManager(str(model), extractor=ex)))


def _positions(recs: list[Any]) -> list[tuple[int, int]]:
    out = []
    for r in recs:
        src = json.loads(r.value)["lmr"]["source"]
        out.append((src["partition"], src["offset"]))
    return out


def test_a_worker_joining_while_the_first_holds_a_batch(
    broker: EmbeddedBroker, tiny_model: Path, extractor: Any
) -> None:
    """(a) The first worker always has a partial batch in hand (long --max-wait-ms, a steady trickle of posts)
    when the second joins: no crash, no lost offset (records of a partition given back are kept, those of a
    partition given away are dropped and read again by the new owner), duplicates only of refused commits."""
    t = topics(broker, 2)
    n = 120
    w1 = worker(broker, tiny_model, extractor, t, client_id="w1", batch_size=1000, max_wait_ms=2500).start()
    w2 = worker(broker, tiny_model, extractor, t, client_id="w2", batch_size=1000, max_wait_ms=2500)
    stop = threading.Event()

    def trickle() -> None:
        for i in range(n):
            if stop.is_set():
                return
            produce(broker.bootstrap, t[0], [post(i)], keys=[f"k{i}".encode()])
            time.sleep(0.25)

    feeder = threading.Thread(target=trickle, daemon=True)
    try:
        assert w1.wait_for(lambda: w1.worker.source is not None and w1.worker.source.assigned() == 2, 180)
        feeder.start()
        assert w1.wait_for(lambda: len(w1.worker.checkpoint) > 0, 20), "w1 holds a batch"
        w2.start()
        assert w2.wait_for(lambda: w2.worker.source is not None and w2.worker.source.assigned() > 0, 180)
        feeder.join(60)
        assert w1.wait_for(lambda: sum((committed(broker.bootstrap, t[3], t[0], 2)[p] or 0) for p in (0, 1)) == n, 180)
        recs = TopicReader(broker.bootstrap, t[1], 2).read_until(n, settle_s=1.0)
    finally:
        stop.set()
        codes = (w1.stop(), w2.stop() if w2.thread.is_alive() else 0)
    assert codes == (0, 0) and w1.error is None and w2.error is None
    assert w1.worker.processed > 0 and w2.worker.processed > 0
    pos = _positions(recs)
    end = committed(broker.bootstrap, t[3], t[0], 2)
    assert {(p, o) for p in (0, 1) for o in range(end[p] or 0)} == set(pos), "no lost offset"
    dups = len(pos) - len(set(pos))
    refused = w1.worker.metrics.commit_failures._value.get() + w2.worker.metrics.commit_failures._value.get()
    assert dups == 0 or refused > 0, f"{dups} duplicates without a refused commit"


def test_an_oversized_record_becomes_a_dead_letter_and_the_partition_flows(
    broker: EmbeddedBroker, tiny_model: Path, extractor: Any
) -> None:
    """(c) With --max-request-size 4000: an event over the limit and a dead letter over the limit."""
    t = topics(broker, 1)
    big_post = json.dumps({"id": "big", "text": "Flooding in Houston " + "x" * 3850}).encode()
    big_junk = b"not json " + b"y" * 4500
    values = [post(0), big_post, post(1), big_junk, post(2)]
    produce(broker.bootstrap, t[0], values)
    w = worker(broker, tiny_model, extractor, t, max_request_size=4000).start()
    try:
        outs = TopicReader(broker.bootstrap, t[1], 1).read_until(3, timeout_s=180)
        dl = TopicReader(broker.bootstrap, t[2], 1).read_until(2, timeout_s=60)
        assert w.wait_for(lambda: w.worker.committed.get((t[0], 0)) == len(values), 60)
    finally:
        assert w.stop() == 0
    assert sorted(json.loads(r.value)["id"] for r in outs) == ["p0", "p1", "p2"]
    by_reason = {dict(r.headers)["lmr.error.reason"]: r for r in dl}
    assert set(by_reason) == {b"event_too_large", b"not_json"}
    for reason, original in ((b"event_too_large", big_post), (b"not_json", big_junk)):
        r = by_reason[reason]
        h = {k: bytes(v) for k, v in r.headers}
        assert original.startswith(r.value) and len(r.value) > 3000
        if len(r.value) < len(original):
            assert h["lmr.original.bytes"] == str(len(original)).encode()
        assert int(h["lmr.source.offset"]) == values.index(original)
    assert len(by_reason[b"not_json"].value) < len(big_junk), "the 4.5 kB dead letter was cut to fit"
    assert w.worker.metrics.dlq.labels("event_too_large")._value.get() == 1


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return 0


def test_sigterm_during_a_broker_outage_exits_within_the_shutdown_timeout(tiny_model: Path, tmp_path: Path) -> None:
    """(d) The broker dies mid-stream: /readyz goes 503 while /healthz stays 200, and SIGTERM ends the process
    within --shutdown-timeout-s with exit 3 (the batch in hand was not acknowledged; it will be redone)."""
    b = EmbeddedBroker(log_file=tmp_path / "b.log").start()
    t = ("in", "out", "dlq", "g")
    for name in t[:3]:
        b.create_topic(name, 1)
    n = 3000
    produce(b.bootstrap, "in", [post(i) for i in range(n)])
    port = free_port()
    log = tmp_path / "worker.log"
    args = [
        "run", "--bootstrap-servers", b.bootstrap, "--input-topic", "in", "--output-topic", "out",
        "--dlq-topic", "dlq", "--group-id", "g", "--model", str(tiny_model),
        "--session-timeout-ms", "6000", "--heartbeat-interval-ms", "1000", "--batch-size", "8",
        "--metrics-port", str(port), "--shutdown-timeout-s", "6",
    ]  # fmt: skip
    p = spawn_worker(args, log)
    base = f"http://127.0.0.1:{port}"
    try:
        reader = TopicReader(b.bootstrap, "out", 1)
        assert len(reader.read_until(16, timeout_s=300)) >= 16, log.read_text()[-3000:]
        reader.close()
        assert _status(base + "/readyz") == 200
        b.stop()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and _status(base + "/readyz") != 503:
            time.sleep(0.3)
        assert _status(base + "/readyz") == 503, log.read_text()[-3000:]
        assert _status(base + "/healthz") == 200, "the loop is alive while it waits for the broker"
        t0 = time.monotonic()
        p.send_signal(signal.SIGTERM)
        code = p.wait(30)
        took = time.monotonic() - t0
    finally:
        if p.poll() is None:
            p.kill()
        b.stop()
    text = log.read_text()
    print(f"SIGTERM during the outage: exit {code} after {took:.2f}s (--shutdown-timeout-s 6)")
    assert took <= 7.0, f"took {took:.1f}s\n{text[-3000:]}"  # 6 s + interpreter teardown, loaded host
    assert code == 3, text[-3000:]
    assert "worker stopped" in text or "shutdown took longer" in text
