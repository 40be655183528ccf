"""The fast runtimes must give the plain model's answers (fused, onnx) or close ones (int8)."""

from pathlib import Path

import pytest

from lmr.errors import ConfigError
from trainer.fast import resolve_runtime
from trainer.model import load_extractor

TEXTS = [
    "Flooding reported in Houston, Texas tonight",
    "Evacuations ordered along the Guadalupe River near Victoria #HoustonStrong",
    "ok",
    "Wildfire near Redding forces thousands to flee, Shasta County sheriff says, more in Sacramento later today",
]


@pytest.fixture(scope="module")
def plain(tiny_model: Path):  # type: ignore[no-untyped-def]
    return load_extractor(str(tiny_model), runtime="torch")


@pytest.mark.parametrize("runtime", ["fused", "onnx"])
def test_exact_runtimes_match_plain_gliner(plain, tiny_model: Path, runtime: str) -> None:  # type: ignore[no-untyped-def]
    fast = load_extractor(str(tiny_model), runtime=runtime)
    a = plain.predict(TEXTS, threshold=0.01)
    b = fast.predict(TEXTS, threshold=0.01)
    assert sum(map(len, a)) > 0
    for pa, pb in zip(a, b, strict=True):
        assert [(m.start, m.end) for m in pa] == [(m.start, m.end) for m in pb]
        for ma, mb in zip(pa, pb, strict=True):
            assert ma.score == pytest.approx(mb.score, abs=2e-3)


def test_int8_runtime_runs_and_keeps_offsets(tiny_model: Path) -> None:
    fast = load_extractor(str(tiny_model), runtime="fused-int8")
    for text, ms in zip(TEXTS, fast.predict(TEXTS, threshold=0.01), strict=True):
        assert all(text[m.start : m.end] == m.text for m in ms)


def test_runtime_choice() -> None:
    assert resolve_runtime("auto", "cpu") in ("fused", "fused-int8", "onnx", "onnx-int8")
    assert resolve_runtime("auto", "cuda") == "fused"
    with pytest.raises(ConfigError, match="Unknown runtime"):
        resolve_runtime("tensorrt")
    with pytest.raises(ConfigError, match="CPU only"):
        resolve_runtime("onnx", "cuda:0")


def test_batches_respect_size_and_token_budget() -> None:
    from trainer.model import _batches

    lengths = [5, 5, 10, 10, 40]
    assert _batches([0, 1, 2, 3, 4], lengths, 3, 0) == [[0, 1, 2], [3, 4]]
    groups = _batches([0, 1, 2, 3, 4], lengths, 8, 30)
    assert sorted(i for g in groups for i in g) == [0, 1, 2, 3, 4]
    assert all(len(g) * max(lengths[i] for i in g) <= 30 or len(g) == 1 for g in groups)
