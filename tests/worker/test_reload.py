"""Hot reload's edges: the canary is the model's own calibration posts, the rollback window is bounded, and a
LATEST on a hung mount does not block the batch loop."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from lmr.model import calibration, registry
from worker.app import Worker
from worker.canary import CANARY_TEXT, canary_texts
from worker.reload import ModelManager
from worker.settings import WorkerSettings

LONG = 7  # words: the model below fails on longer posts (the old canary post had exactly 7)


class FailsOnLongPosts:
    """A real model that raises on any batch holding a post of more than ``LONG`` words (say, a version whose
    position embeddings were cut short); everything else it reads normally."""

    def __init__(self, inner: Any, version: str) -> None:
        self.inner, self.version = inner, version

    @property
    def model_id(self) -> str:
        return f"{self.inner.name}@{self.version}"

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def predict_words(self, words_list: Any, texts: Any, **kw: Any) -> Any:
        if any(len(w) > LONG for w in words_list):
            raise RuntimeError("index out of range in self (simulated)")
        return self.inner.predict_words(words_list, texts, **kw)


@pytest.fixture(scope="module")
def extractor(tiny_model: Path) -> Any:
    from lmr.model.extractor import load_extractor

    return load_extractor(str(tiny_model))


def test_the_canary_is_the_models_calibration_posts(extractor: Any) -> None:
    cal = calibration.load(extractor.path)
    assert cal is not None, "a published model ships calibration.json"
    texts = canary_texts(extractor)
    assert set(texts) <= set(cal.texts) and texts[0] == max(cal.texts, key=len)
    assert max(len(t.split()) for t in texts) > LONG, "the calibration set holds longer posts than the old canary"
    assert canary_texts(SimpleNamespace(model_id="x@1")) == [CANARY_TEXT], "no calibration set: the fixed post"


def test_a_reload_that_fails_on_long_posts_is_rolled_back_not_dead_lettering_them(
    tiny_model: Path, extractor: Any, tmp_path: Path
) -> None:
    reg = tmp_path / "reg" / "tiny"
    reg.mkdir(parents=True)
    shutil.copytree(tiny_model / "v1", reg / "v1")
    shutil.copytree(tiny_model / "v1", reg / "v2")
    registry.write_manifest(reg / "v2", ["location"], 0.5, {"name": "tiny", "version": "v2"})
    registry.set_latest(reg, "v1")

    def loader(ref: str) -> Any:
        return FailsOnLongPosts(extractor, "v2") if ref.endswith("v2") else extractor

    mm = ModelManager(str(reg), loader=loader, check_s=0.01)
    registry.set_latest(reg, "v2")
    assert mm.maybe_swap(wait=True) and mm.current.version == "v2"
    src, out, dlq = tmp_path / "in.jsonl", tmp_path / "out.jsonl", tmp_path / "dlq.jsonl"
    texts = ["Flooding in Houston", "Evacuations ordered along the Guadalupe River near Victoria tonight"]
    src.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(texts)))
    s = WorkerSettings(model=str(reg), source=f"file:{src}", sink=f"file:{out}", dlq=f"file:{dlq}", reload_check_s=3600)
    w = Worker(s, models=mm)
    assert w.run() == 0
    events = [json.loads(x) for x in out.read_text().splitlines()]
    assert [e["id"] for e in events] == [0, 1], "the long post is an event, not a model_error dead letter"
    assert {e["lmr"]["model"] for e in events} == {"tiny@v1"}
    assert not dlq.exists() or dlq.read_text() == ""
    assert mm.rollbacks == 1 and mm.failed_version == "v2"


def _stub(ref: str) -> Any:
    v = Path(ref).name
    return SimpleNamespace(name="m", version=v, model_id=f"m@{v}")


def _registry(tmp_path: Path) -> Path:
    m = tmp_path / "reg" / "m"
    for v in ("v1", "v2"):
        (m / v).mkdir(parents=True)
    registry.set_latest(m, "v1")
    return m


def test_the_previous_model_is_kept_only_for_the_rollback_window(tmp_path: Path) -> None:
    m = _registry(tmp_path)
    mm = ModelManager(str(m), loader=_stub, check_s=0.01, rollback_window_s=0.3, extractor=_stub(str(m / "v1")))
    registry.set_latest(m, "v2")
    assert mm.maybe_swap(wait=True) and mm.previous is not None
    assert mm.rollback("failing right after the reload") and mm.current.version == "v1"
    mm._retry_at = 0.0  # v2 may be tried again at once
    assert mm.maybe_swap(wait=True) and mm.current.version == "v2"
    time.sleep(0.4)
    assert not mm.rollback("a transient device error long after the reload"), "not blamed on the reload"
    assert mm.previous is None and mm.current.version == "v2"
    registry.set_latest(m, "v1")
    time.sleep(0.02)
    mm.maybe_swap(wait=True)
    time.sleep(0.4)
    mm.maybe_swap()  # between batches: past the window, the previous model's memory is released
    assert mm.previous is None


def test_a_latest_on_a_hung_mount_does_not_block_the_batch_loop(tmp_path: Path) -> None:
    m = _registry(tmp_path)
    mm = ModelManager(str(m), loader=_stub, check_s=0.01, read_timeout_s=0.3, extractor=_stub(str(m / "v1")))
    (m / "LATEST").unlink()
    os.mkfifo(m / "LATEST")  # opening it for reading blocks until a writer comes: a read that hangs
    time.sleep(0.02)
    t0 = time.monotonic()
    assert mm.maybe_swap() is False
    assert 0.25 < time.monotonic() - t0 < 2.0
    assert "hung mount" in str(mm.last_error) and mm.current.version == "v1"
    time.sleep(0.02)
    t0 = time.monotonic()
    assert mm.maybe_swap() is False and time.monotonic() - t0 < 0.2, "no second read piles up behind the first"
    assert "has not returned yet" in str(mm.last_error)
    assert sum(t.name == "lmr-read-latest" for t in threading.enumerate()) == 1
    fd = os.open(m / "LATEST", os.O_WRONLY)  # the mount comes back: the hung read returns
    os.write(fd, b"v1\n")
    os.close(fd)
    reader = mm._reader
    assert reader is not None
    reader.join(5)
    (m / "LATEST").unlink()
    registry.set_latest(m, "v2")
    time.sleep(0.02)
    assert mm.maybe_swap(wait=True) and mm.current.version == "v2"
