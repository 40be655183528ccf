"""``auto`` measures the candidate runtimes on the model's calibration set and keeps only agreeing ones."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from lmr.model import autotune, calibration
from lmr.model.autotune import AutoOptions, agreement
from lmr.model.extractor import load_extractor
from lmr.model.runtimes.catalog import fallbacks


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LMR_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def version_dir(tiny_model: Path) -> Path:
    return tiny_model / (tiny_model / "LATEST").read_text().strip()


def test_publish_ships_a_calibration_set_from_training_posts(tiny_model: Path) -> None:
    d = version_dir(tiny_model)
    cal = calibration.load(str(d))
    assert cal is not None and cal.texts and len(cal.texts) == len(cal.spans)
    assert "calibration.json" in json.loads((d / "manifest.json").read_text())["files"]
    assert "auto on the publishing machine" in (d / "README.md").read_text()
    for text, spans in zip(cal.texts, cal.spans, strict=True):
        assert all(0 <= s < e <= len(text) for s, e in spans)


def test_auto_measures_then_reuses_its_cached_choice(tiny_model: Path, cache: Path) -> None:
    opts = AutoOptions(budget_s=30)
    ex = load_extractor(str(tiny_model), runtime="auto", auto=opts)
    choice = ex.runtime_choice
    assert choice is not None and not choice.cached and ex.runtime == choice.runtime
    by_name = {c.runtime: c for c in choice.candidates}
    assert by_name["fused"].agrees and by_name["fused"].posts_per_s > 0
    # every candidate is measured, except a fallback whose faster runtime agreed (fallbacks())
    skipped = {fb for fb, faster in fallbacks().items() if faster in by_name and by_name[faster].agrees}
    assert set(by_name) == set(autotune.candidates(opts)) - skipped
    assert by_name[choice.runtime].posts_per_s == max(c.posts_per_s for c in choice.candidates if c.agrees)
    again = load_extractor(str(tiny_model), runtime="auto", auto=opts)
    assert again.runtime_choice.cached and again.runtime == ex.runtime
    assert list(cache.glob("runtime/*.json"))


def test_auto_without_measuring_or_calibration(tiny_model: Path, cache: Path, tmp_path: Path) -> None:
    skipped = load_extractor(str(tiny_model), runtime="auto", auto=AutoOptions(probe=False))
    assert "skipped" in skipped.runtime_choice.reason
    plain = tmp_path / "plain"
    shutil.copytree(version_dir(tiny_model), plain)
    (plain / "calibration.json").unlink()
    (plain / "manifest.json").unlink()
    ex = load_extractor(str(plain), runtime="auto")
    assert ex.runtime == "fused" and "no calibration set" in ex.runtime_choice.reason
    # a calibration set written for it afterwards (lmr-trainer calibrate) goes to the cache and is found there
    cal = calibration.build(load_extractor(str(plain), runtime="torch"), ["Flooding in Houston tonight"] * 3)
    cal.save(calibration.cached_path(str(plain)))
    assert calibration.load(str(plain)) == cal
    calibration.cached_path(str(plain)).write_text("{not json")
    assert calibration.load(str(plain)) is None  # unreadable: warned about and ignored


def test_a_runtime_that_disagrees_is_never_chosen(tiny_model: Path) -> None:
    cal = calibration.Calibration(["a b c"] * 4, [[(0, 1)], [(2, 3)], [], [(4, 5)]])

    def build(name: str) -> tuple[Any, Any]:
        if name == "fused":
            return (lambda texts, words: [list(s) for s in cal.spans[: len(texts)]]), "exact"
        return (lambda texts, words: [[] for _ in texts]), "fast-but-wrong"  # instant, and loses every span

    choice, engine = autotune._measure(cal, build, ["fused", "fused-int8"], budget_s=5)
    assert choice.runtime == "fused" and engine == "exact"
    assert [c.agrees for c in choice.candidates] == [True, False]


@pytest.mark.parametrize(("int8_agrees", "chosen"), [(True, "fused-int8"), (False, "fused-int8-mixed")])
def test_mixed_int8_is_tried_only_where_full_int8_is_rejected(int8_agrees: bool, chosen: str) -> None:
    import time

    cal = calibration.Calibration([f"post {i}" for i in range(20)], [[(0, 4)] for _ in range(20)])
    built: list[str] = []

    def build(name: str) -> tuple[Any, Any]:
        built.append(name)

        def run(texts: list[str], words: list[Any]) -> list[list[tuple[int, int]]]:
            time.sleep({"fused": 3e-3, "fused-int8": 1e-3}.get(name, 2e-3))  # full int8 fastest, exact slowest
            wrong = name == "fused-int8" and not int8_agrees
            return [[] if wrong else [(0, 4)] for _ in texts]

        return run, name

    candidates = ["fused", "fused-int8", "fused-int8-mixed"]
    choice, engine = autotune._measure(cal, build, candidates, budget_s=30)
    assert choice.runtime == engine == chosen
    assert built == (candidates if not int8_agrees else candidates[:2])
    assert [c.runtime for c in choice.candidates] == built


def test_scattered_differences_pass_and_a_bias_toward_dropping_spans_fails() -> None:
    """200 posts with one exact span each: the rule's two sides, measured through ``_measure``."""
    texts = [f"post {i}" for i in range(200)]
    exact = [[(0, 4)] for _ in texts]
    scattered = [list(s) for s in exact]
    for i in (3, 50, 120):  # three spans lost, three others added: noise, no bias
        scattered[i] = []
        scattered[i + 1] = [(0, 4), (5, 6)]
    dropping = [[] if i in (7, 60, 130) else list(s) for i, s in enumerate(exact)]  # F1 0.992, all lost
    runs = {"fused": exact, "fused-int8": scattered, "onnx-int8": dropping}

    def build(name: str) -> tuple[Any, Any]:
        return (lambda t, w: runs[name][: len(t)]), name

    cal = calibration.Calibration(texts, exact)
    choice, _ = autotune._measure(cal, build, list(runs), budget_s=5)
    by_name = {c.runtime: c for c in choice.candidates}
    assert (by_name["fused-int8"].lost, by_name["fused-int8"].added) == (3, 3)
    assert by_name["fused-int8"].agrees and by_name["fused-int8"].agreement_f1 == pytest.approx(0.985)
    assert (by_name["onnx-int8"].lost, by_name["onnx-int8"].added) == (3, 0)
    assert by_name["onnx-int8"].agreement_f1 > by_name["fused-int8"].agreement_f1
    assert not by_name["onnx-int8"].agrees  # closer in F1, but every difference is a lost span
    assert choice.runtime in ("fused", "fused-int8")


@pytest.mark.parametrize(
    ("f1", "lost", "added", "spans", "ok"),
    [(1.0, 0, 0, 0, True), (0.99, 1, 0, 10, True), (0.99, 2, 0, 10, False), (0.979, 0, 9, 200, False)],
)
def test_the_agreement_rule(f1: float, lost: int, added: int, spans: int, ok: bool) -> None:
    assert autotune.accepts(f1, lost, added, spans) is ok


def test_agreement_is_span_f1() -> None:
    assert agreement([[(0, 1)], []], [[(0, 1)], []]) == 1.0
    assert agreement([[], []], [[], []]) == 1.0
    assert agreement([[(0, 1), (2, 3)]], [[(0, 1)]]) == pytest.approx(2 / 3)
    assert agreement([[(0, 1)]], [[(0, 2)]]) == 0.0
