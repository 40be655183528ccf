"""The built images, run for real: the worker image against the embedded broker, the trainer image publishing.

These tests use images already built by ``make images`` (docker/images.sh); they do not build them,
because a build takes many minutes (torch, the venv, and offline a Debian base first). Where no
container engine runs, or the images are not built, they skip and say which. The engine is podman
(with docker/podman-containers.conf unless CONTAINERS_CONF is set) or docker: ``LMR_ENGINE`` picks one.
Image sizes, the worker's start-up time and its stop time go to ``test-artifacts/images.json``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import tomllib
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser import ARTIFACTS
from tests.conftest import tiny_idrisi_records
from tests.worker_support import TopicReader, post, produce, topics
from worker.broker import EmbeddedBroker, free_port

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
WORKER = f"lmr-worker:{VERSION}"
TRAINERS = (f"lmr-trainer:{VERSION}-cpu", f"lmr-trainer:{VERSION}")
UID = "10001"  # LMR_UID in both Dockerfiles
SHUTDOWN_S = 10
REPORT = ARTIFACTS / "images.json"


def engine() -> str:
    """podman or docker, whichever runs containers here; else skip saying why."""
    os.environ.setdefault("CONTAINERS_CONF", str(REPO / "docker" / "podman-containers.conf"))
    names = [os.environ["LMR_ENGINE"]] if os.environ.get("LMR_ENGINE") else ["podman", "docker"]
    for name in names:
        if shutil.which(name) and run_engine(name, "info", check=False, timeout=60).returncode == 0:
            return name
    pytest.skip(f"no container engine runs here (tried {', '.join(names)}): `make images` installs podman as root")


def run_engine(name: str, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([name, *args], capture_output=True, text=True, timeout=timeout, check=False)
    assert not check or done.returncode == 0, f"{name} {' '.join(args)}: {done.stderr[-2000:]}"
    return done


def built(eng: str, *tags: str) -> str:
    """The first of ``tags`` that is built; else skip: the suite does not build images."""
    for tag in tags:
        if run_engine(eng, "image", "inspect", tag, check=False).returncode == 0:
            return tag
    pytest.skip(f"{' or '.join(tags)} is not built: run `make images` first (the tests do not build images)")


def report(key: str, value: Any) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    data = json.loads(REPORT.read_text(encoding="utf-8")) if REPORT.is_file() else {}
    data[key] = value
    REPORT.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(f"{key}: {value}")


def image_size(eng: str, tag: str) -> int:
    return int(run_engine(eng, "image", "inspect", "-f", "{{.Size}}", tag).stdout.strip())


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return int(r.status)
    except urllib.error.HTTPError as e:
        return int(e.code)
    except OSError:
        return 0


class Container:
    """A detached container, removed at the end; its log is kept for failure messages."""

    def __init__(self, eng: str, *args: str) -> None:
        self.eng, self.name = eng, f"lmr-test-{uuid.uuid4().hex[:8]}"
        run_engine(eng, "run", "-d", "--name", self.name, *args)

    def logs(self) -> str:
        done = run_engine(self.eng, "logs", self.name, check=False)
        return (done.stdout + done.stderr)[-4000:]

    def state(self, field: str) -> str:
        return run_engine(self.eng, "inspect", "-f", f"{{{{.State.{field}}}}}", self.name).stdout.strip()

    def wait_for(self, url: str, timeout_s: float) -> float:
        """Seconds until ``url`` answers 200; fails with the container's log."""
        start = time.monotonic()
        while time.monotonic() - start < timeout_s:
            if http_status(url) == 200:
                return time.monotonic() - start
            assert self.state("Running") == "true", f"the container exited:\n{self.logs()}"
            time.sleep(0.5)
        raise AssertionError(f"{url} did not answer 200 in {timeout_s:.0f}s:\n{self.logs()}")

    def remove(self) -> None:
        run_engine(self.eng, "rm", "-f", "-t", "0", self.name, check=False)


@pytest.fixture(scope="module")
def eng() -> str:
    return engine()


@pytest.fixture()
def broker(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(log_file=tmp_path / "tansu.log") as b:
        yield b


def start_worker(
    eng: str, registry: Path, broker: EmbeddedBroker, t: tuple[str, str, str, str], port: int
) -> Container:
    """The worker image on the host network (the broker listens on loopback), model mount read-only."""
    inp, out, dlq, group = t
    env = {
        "LMR_BOOTSTRAP_SERVERS": broker.bootstrap,
        "LMR_INPUT_TOPIC": inp,
        "LMR_OUTPUT_TOPIC": out,
        "LMR_DLQ_TOPIC": dlq,
        "LMR_GROUP_ID": group,
        "LMR_MODEL": "/models/tiny",
        "LMR_METRICS_HOST": "127.0.0.1",
        "LMR_METRICS_PORT": str(port),
        "LMR_FETCH_MAX_WAIT_MS": "100",
        "LMR_SESSION_TIMEOUT_MS": "6000",
        "LMR_HEARTBEAT_INTERVAL_MS": "1000",
        "LMR_BATCH_SIZE": "8",
        "LMR_MAX_WAIT_MS": "100",
        "LMR_MAX_TEXT_BYTES": "1000",
        "LMR_SHUTDOWN_TIMEOUT_S": str(SHUTDOWN_S),
        "OMP_NUM_THREADS": "1",
    }
    flags = [a for k, v in env.items() for a in ("-e", f"{k}={v}")]
    hardening = ["--cap-drop", "ALL", "--security-opt", "no-new-privileges"]
    return Container(eng, "--network", "host", *hardening, "-v", f"{registry}:/models:ro", *flags, WORKER)


def test_worker_image_consumes_the_broker_and_stops_in_time(
    eng: str, tiny_registry: Path, broker: EmbeddedBroker
) -> None:
    built(eng, WORKER)
    t = topics(broker, 2)
    good = [post(i, str(r["text"])) for i, r in enumerate(tiny_idrisi_records())]
    bad = [b'{"id": "j", "text": ', b'{"id": "x", "body": "no text"}', b"\xff\xfe not utf-8"]
    produce(broker.bootstrap, t[0], good + bad, keys=[f"k{i}".encode() for i in range(len(good) + len(bad))])
    port = free_port()
    c = start_worker(eng, tiny_registry, broker, t, port)
    try:
        healthy_s = c.wait_for(f"http://127.0.0.1:{port}/healthz", 300)
        ready_s = c.wait_for(f"http://127.0.0.1:{port}/readyz", 300)
        out = TopicReader(broker.bootstrap, t[1], 2).read_until(len(good), timeout_s=120)
        dead = TopicReader(broker.bootstrap, t[2], 1).read_until(len(bad), timeout_s=60)
        user = run_engine(eng, "exec", c.name, "id", "-u").stdout.strip()
        write = run_engine(eng, "exec", c.name, "touch", "/models/tiny/x", check=False)
        start = time.monotonic()
        run_engine(eng, "stop", "-t", str(SHUTDOWN_S + 20), c.name, timeout=SHUTDOWN_S + 60)
        stop_s = time.monotonic() - start
        code, log = c.state("ExitCode"), c.logs()
    finally:
        c.remove()
    events = [json.loads(r.value) for r in out]
    assert sorted(e["id"] for e in events) == sorted(json.loads(v)["id"] for v in good), log
    assert {e["lmr"]["model"] for e in events} == {"tiny@v1"}, events[0]["lmr"]
    assert any(e["locations"] for e in events), "the tiny model found no location in any post"
    reasons = sorted(dict(r.headers)["lmr.error.reason"].decode() for r in dead)
    assert reasons == ["no_text", "not_json", "not_utf8"], reasons
    assert user == UID, f"the worker runs as UID {user}"
    assert write.returncode != 0 and "Read-only" in write.stderr, write.stderr
    assert code == "0" and stop_s < SHUTDOWN_S + 5, f"stop took {stop_s:.1f}s, exit code {code}:\n{log}"
    report("worker_image", {"tag": WORKER, "bytes": image_size(eng, WORKER)})
    report("worker_start_s", {"healthz": round(healthy_s, 1), "readyz": round(ready_s, 1), "stop": round(stop_s, 1)})


def test_trainer_image_publishes_a_model_the_worker_image_serves(eng: str, tiny_data: Path, tmp_path: Path) -> None:
    trainer = built(eng, *TRAINERS)
    built(eng, WORKER)
    registry, runs, io = tmp_path / "registry", tmp_path / "runs", tmp_path / "io"
    for d in (registry, runs, io):
        d.mkdir()
        d.chmod(0o777)  # the containers run as UID 10001
    shutil.copy(tiny_data, io / "posts.jsonl")
    args = ["--train", "/io/posts.jsonl", "--eval", "/io/posts.jsonl", "--name", "tiny", "--encoder", "offline"]
    args += ["--max-steps", "16", "--eval-steps", "8", "--batch-size", "4", "--lr", "1e-4", "--others-lr", "5e-4"]
    # No network: training on the bundled encoder and serving a local model need none.
    mounts = ["--network", "none", "-v", f"{registry}:/models", "-v", f"{runs}:/runs", "-v", f"{io}:/io"]
    start = time.monotonic()
    trained = run_engine(eng, "run", "--rm", "-e", "WANDB_MODE=offline", *mounts, trainer, "run", *args, timeout=900)
    train_s = time.monotonic() - start
    latest = registry / "tiny" / "LATEST"
    assert latest.is_file(), trained.stderr[-3000:]
    assert (registry / "tiny" / latest.read_text().strip() / "gliner_config.json").is_file()
    serve = ["--source", "file:/io/posts.jsonl", "--sink", "file:/io/events.jsonl", "--model", "/models/tiny"]
    mounts = ["--network", "none", "-v", f"{registry}:/models:ro", "-v", f"{io}:/io"]
    done = run_engine(eng, "run", "--rm", *mounts, WORKER, "run", *serve, check=False, timeout=600)
    events = [json.loads(line) for line in (io / "events.jsonl").read_text().splitlines()]
    assert len(events) == len(tiny_idrisi_records()), done.stderr[-3000:]
    assert {e["lmr"]["model"] for e in events} == {f"tiny@{latest.read_text().strip()}"}, events[0]["lmr"]
    report("trainer_image", {"tag": trainer, "bytes": image_size(eng, trainer), "train_and_publish_s": round(train_s)})
    assert done.returncode == 0, done.stderr[-3000:]  # a finished file-mode run exits 0 (no teardown abort)
