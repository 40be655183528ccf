"""Operational state through the real embedded broker: what /metrics reports after a rebalance."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.worker_support import WorkerThread, committed, post, produce, settings, topics
from worker.app import Worker
from worker.broker import EmbeddedBroker
from worker.reload import ModelManager

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(log_file=tmp_path_factory.mktemp("broker") / "tansu.log") as b:
        yield b


def _series(w: WorkerThread, name: str) -> set[tuple[str, int]]:
    out = set()
    for family in w.worker.metrics.registry.collect():
        for s in family.samples:
            if s.name == name:
                out.add((s.labels["topic"], int(s.labels["partition"])))
    return out


def test_committed_offset_series_of_partitions_given_away_are_removed(
    broker: EmbeddedBroker, tiny_model: Path, tmp_path: Path
) -> None:
    from lmr.model.extractor import load_extractor

    ex: Any = load_extractor(str(tiny_model))
    t = topics(broker, 2)
    inp, out, dlq, group = t

    def worker(name: str) -> WorkerThread:
        s = settings(broker.bootstrap, tiny_model, input_topic=inp, output_topic=out, dlq_topic=dlq,
                     group_id=group, client_id=name)  # fmt: skip
        return WorkerThread(Worker(s, models=ModelManager(str(tiny_model), extractor=ex)))

    n = 20
    produce(broker.bootstrap, inp, [post(i) for i in range(n)], keys=[f"k{i}".encode() for i in range(n)])
    w1, w2 = worker("w1").start(), worker("w2")
    try:
        assert w1.wait_for(lambda: sum(w1.worker.committed.values()) == n, 180), w1.worker.committed
        assert _series(w1, "lmr_worker_committed_offset") == {(inp, 0), (inp, 1)}
        w2.start()

        def one_each() -> bool:
            return all(w.worker.source is not None and w.worker.source.assigned() == 1 for w in (w1, w2))

        assert w1.wait_for(one_each, 180), "each worker owns one partition"
        produce(broker.bootstrap, inp, [post(n + i) for i in range(n)], keys=[f"j{i}".encode() for i in range(n)])

        def all_committed() -> bool:
            return sum((committed(broker.bootstrap, group, inp, 2)[p] or 0) for p in (0, 1)) == 2 * n

        assert w1.wait_for(all_committed, 180)
        assert w1.wait_for(lambda: len(_series(w1, "lmr_worker_committed_offset")) == 1, 30)
    finally:
        codes = (w1.stop(), w2.stop() if w2.thread.is_alive() else 0)
    assert codes == (0, 0)
    assert w1.worker.source is not None
    owned = {(inp, p) for p in (0, 1)} - _series(w2, "lmr_worker_committed_offset")
    assert _series(w1, "lmr_worker_committed_offset") == owned, "w1 reports only the partition it kept"
    assert _series(w1, "lmr_worker_consumer_lag") <= owned
