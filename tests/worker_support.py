"""Helpers for the worker tests: a real broker, producing and reading topics, running workers."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from lmr.environment import offline_env
from worker.app import Worker
from worker.broker import EmbeddedBroker
from worker.settings import WorkerSettings

REPO = Path(__file__).resolve().parent.parent


def topics(broker: EmbeddedBroker, partitions: int = 1) -> tuple[str, str, str, str]:
    """Fresh input, output and dead-letter topics (the input and output with ``partitions``) and a group id."""
    tag = uuid.uuid4().hex[:8]
    names = (f"in-{tag}", f"out-{tag}", f"dlq-{tag}")
    broker.create_topic(names[0], partitions)
    broker.create_topic(names[1], partitions)
    broker.create_topic(names[2], 1)
    return (*names, f"g-{tag}")


def produce(
    bootstrap: str, topic: str, values: Iterable[bytes], *, keys: Iterable[bytes | None] | None = None, **kw: Any
) -> None:
    p = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    ks = list(keys) if keys is not None else None
    for i, v in enumerate(values):
        p.send(topic, value=v, key=ks[i] if ks else None, **kw)
    p.flush()
    p.close()


def post(i: int, text: str | None = None) -> bytes:
    t = text or f"Flooding reported in Houston, Texas tonight, report {i}"
    return json.dumps({"id": f"p{i}", "text": t, "n": i}).encode()


class TopicReader:
    """Reads every partition of a topic from the beginning (no group, no end offsets: Tansu's are wrong)."""

    def __init__(self, bootstrap: str, topic: str, partitions: int) -> None:
        self.c = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=500)
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        self.c.assign(tps)
        self.c.seek_to_beginning(*tps)
        self.records: list[Any] = []

    def read_until(self, n: int, timeout_s: float = 60.0, settle_s: float = 0.0) -> list[Any]:
        deadline = time.monotonic() + timeout_s
        while len(self.records) < n and time.monotonic() < deadline:
            for recs in self.c.poll(timeout_ms=300).values():
                self.records.extend(recs)
        end = time.monotonic() + settle_s
        while time.monotonic() < end:
            for recs in self.c.poll(timeout_ms=200).values():
                self.records.extend(recs)
        return self.records

    def close(self) -> None:
        self.c.close()


def committed(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int | None]:
    c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        return {p: c.committed(TopicPartition(topic, p)) for p in range(partitions)}
    finally:
        c.close()


def settings(bootstrap: str, model: Path | str, **kw: Any) -> WorkerSettings:
    base: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "model": str(model),
        "session_timeout_ms": 6000,
        "heartbeat_interval_ms": 1000,
        "fetch_max_wait_ms": 100,  # Tansu answers a fetch only when this wait expires
        "batch_size": 8,
        "max_wait_ms": 100,
        "retry_backoff_s": 0.2,
        "retry_backoff_max_s": 1.0,
    }
    base.update(kw)
    return WorkerSettings.from_params(base)


class WorkerThread:
    """A worker running in a thread of the test process."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.code: int | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.code = self.worker.run()
        except BaseException as exc:  # surfaced by stop()
            self.error = exc

    def start(self) -> WorkerThread:
        self.thread.start()
        return self

    def wait_for(self, cond: Callable[[], bool], timeout_s: float = 60.0) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if cond():
                return True
            if not self.thread.is_alive():
                break
            time.sleep(0.05)
        return cond()

    def stop(self, timeout_s: float = 30.0) -> int | None:
        self.worker.stop()
        self.thread.join(timeout_s)
        assert not self.thread.is_alive(), "worker did not stop in time"
        if self.error is not None:
            raise self.error
        return self.code


def worker_cmd(*args: str) -> list[str]:
    exe = shutil.which("lmr-worker", path=str(Path(sys.executable).parent))
    return [exe, *args] if exe else [sys.executable, "-c", "from worker.cli import main; main()", *args]


def spawn_worker(args: list[str], log_path: Path) -> subprocess.Popen[bytes]:
    env = offline_env()
    with log_path.open("ab") as f:
        return subprocess.Popen(worker_cmd(*args), stdout=f, stderr=subprocess.STDOUT, cwd=REPO, env=env)
