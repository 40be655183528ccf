"""How ``lmr-worker run`` ends: the exit code of a finished file-mode run, every time, and the threads it leaves."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from lmr.environment import offline_env
from tests.conftest import tiny_idrisi_records
from tests.worker_support import REPO, worker_cmd
from worker.app import Worker
from worker.reload import ModelManager
from worker.settings import WorkerSettings

RUNS = 5


def _posts(path: Path, copies: int = 5) -> Path:
    with path.open("w") as f:
        for i in range(copies):
            for r in tiny_idrisi_records():
                f.write(json.dumps({**r, "tweet_id": f"{i}-{r['tweet_id']}"}) + "\n")
    return path


@pytest.mark.slow
def test_a_finished_file_mode_run_exits_0_every_time(tiny_model: Path, tmp_path: Path) -> None:
    """A run that logged 'exit 0' used to abort at interpreter exit in some runs (rc 134, 'terminate called
    without an active exception'): the signal watcher thread, ending after run() returned, freed the worker
    and its model's tensors while the interpreter was finalising (2 of 6 runs here before the fix). The
    first run measures the runtimes, the others read the cached choice: runs of both kinds aborted."""
    src = _posts(tmp_path / "in.jsonl")
    codes = []
    for i in range(RUNS):
        out = tmp_path / f"out{i}.jsonl"
        env = {**offline_env(), "PYTHONPATH": str(REPO), "LMR_CACHE_DIR": str(tmp_path / "cache")}
        args = ["run", "--model", str(tiny_model), "--source", f"file:{src}", "--sink", f"file:{out}"]
        p = subprocess.run(worker_cmd(*args), capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
        codes.append(p.returncode)
        assert p.returncode == 0, f"run {i}: rc {p.returncode}\n{p.stderr[-3000:]}"
        assert "terminate called" not in p.stderr
        assert "exit 0" in p.stderr
        assert len(out.read_text().splitlines()) == 5 * len(tiny_idrisi_records())
    assert codes == [0] * RUNS


def test_run_returns_with_no_thread_of_its_own_left(tiny_model: Path, tmp_path: Path) -> None:
    """Every thread the worker started (signal watcher, metrics server) has ended when run() returns: none
    can free the worker's objects during interpreter exit."""
    from lmr.model.extractor import load_extractor
    from worker.broker import free_port

    assert threading.current_thread() is threading.main_thread(), "run() watches signals on the main thread only"
    src = _posts(tmp_path / "in.jsonl", copies=1)
    s = WorkerSettings.from_params(
        {"model": str(tiny_model), "source": f"file:{src}", "sink": f"file:{tmp_path / 'out.jsonl'}",
         "metrics_port": free_port()}
    )  # fmt: skip
    w = Worker(s, models=ModelManager(str(tiny_model), extractor=load_extractor(str(tiny_model))))
    before = set(threading.enumerate())
    assert w.run() == 0
    left = [t.name for t in set(threading.enumerate()) - before if t.is_alive()]
    assert not left, left


def test_a_reload_in_progress_is_waited_for_when_the_worker_closes(tmp_path: Path) -> None:
    """The background load of a new version holds the model manager: close() waits for it (bounded)."""
    reg = tmp_path / "reg" / "m"
    reg.mkdir(parents=True)
    (reg / "LATEST").write_text("v1\n")
    started = threading.Event()

    def slow_loader(ref: str) -> Any:
        started.set()
        time.sleep(0.5)
        return SimpleNamespace(model_id=f"m@{Path(ref).name}", version=Path(ref).name)

    models = ModelManager(str(reg), loader=slow_loader, check_s=0.01, extractor=slow_loader(str(reg / "v1")))
    (reg / "LATEST").write_text("v2\n")
    time.sleep(0.02)
    assert not models.maybe_swap() and started.wait(5)
    loading = models._loading
    assert loading is not None and loading.is_alive()
    models.close(5.0)
    assert not loading.is_alive()
    t0 = time.monotonic()
    models.close(5.0)  # nothing in progress: returns at once
    assert time.monotonic() - t0 < 0.1


@pytest.mark.slow
def test_sigterm_while_waiting_for_an_unreachable_broker_exits_0(tiny_model: Path, tmp_path: Path) -> None:
    """SIGTERM during the first connect (no broker at the address): nothing was consumed, so the stop is clean
    (exit 0, the signalled path, within --shutdown-timeout-s), not an error (it exited 1)."""
    from tests.worker_support import spawn_worker
    from worker.broker import free_port

    log = tmp_path / "worker.log"
    args = [
        "run", "--bootstrap-servers", f"127.0.0.1:{free_port()}", "--model", str(tiny_model),
        "--retry-backoff-s", "0.2", "--retry-backoff-max-s", "1", "--shutdown-timeout-s", "8",
    ]  # fmt: skip
    p = spawn_worker(args, log)
    try:
        deadline = time.monotonic() + 240
        while "loaded from" not in log.read_text() and time.monotonic() < deadline and p.poll() is None:
            time.sleep(0.2)
        assert "loaded from" in log.read_text(), log.read_text()[-3000:]
        time.sleep(1.5)  # the producer is bootstrapping (kafka-python waits up to 30 s for a broker)
        t0 = time.monotonic()
        p.send_signal(signal.SIGTERM)
        code = p.wait(30)
        took = time.monotonic() - t0
    finally:
        if p.poll() is None:
            p.kill()
    text = log.read_text()
    assert code == 0, text[-3000:]
    assert took < 4.0, f"{took:.1f}s (the watchdog would end it at 8 s with exit 3)"
    assert "before Kafka could be reached" in text and "nothing consumed, exit 0" in text


def test_a_stop_abandons_a_blocked_connect_and_the_late_client_is_closed() -> None:
    from lmr.backoff import Backoff
    from worker.connect import ConnectStopped, connect

    class Client:
        closed = False

        def close(self) -> None:
            self.closed = True

    made: list[Client] = []

    def slow_make() -> Client:  # a client constructor still bootstrapping (kafka-python waits up to 30 s)
        time.sleep(0.6)
        made.append(Client())
        return made[-1]

    stop = threading.Event()
    threading.Timer(0.1, stop.set).start()
    t0 = time.monotonic()
    with pytest.raises(ConnectStopped):
        connect(slow_make, "127.0.0.1:1", backoff=Backoff(0.1, 1.0, stop))
    assert time.monotonic() - t0 < 0.4, "the stop ends the wait, not the constructor"
    deadline = time.monotonic() + 5
    while not made and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.05)
    assert made and made[0].closed, "the client the abandoned attempt created is closed"
    ok = connect(lambda: "client", "127.0.0.1:1", backoff=Backoff(0.1, 1.0, threading.Event()))
    assert ok == "client"
