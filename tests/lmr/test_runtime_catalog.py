"""A runtime registered from one file is built by ``--runtime NAME`` and measured by ``auto``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lmr.errors import ConfigError
from lmr.model.autotune import AutoOptions, candidates
from lmr.model.extractor import load_extractor
from lmr.model.runtimes import catalog
from lmr.model.runtimes.base import FastOutput, RuntimeOptions
from lmr.model.runtimes.catalog import RuntimeInfo, register, resolve_runtime
from lmr.model.runtimes.fused import FusedRuntime

TEXTS = ["Flooding reported in Houston, Texas tonight", "ok", "Evacuations ordered near Victoria and Beaumont"]


class CountingRuntime(FusedRuntime):
    """``fused`` that counts the batches it runs: a runtime added by this one file."""

    name = "counting-fused"
    built = 0
    batches = 0

    def __init__(self, model: Any, options: RuntimeOptions | None = None) -> None:
        super().__init__(model, options)
        type(self).built += 1

    def __call__(self, batch: dict[str, Any]) -> FastOutput:
        type(self).batches += 1
        return super().__call__(batch)


@pytest.fixture()
def counting() -> Iterator[type[CountingRuntime]]:
    CountingRuntime.batches = CountingRuntime.built = 0
    register(RuntimeInfo(CountingRuntime.name, CountingRuntime, auto=True))
    try:
        yield CountingRuntime
    finally:
        catalog.unregister(CountingRuntime.name)


def test_an_explicit_runtime_name_builds_the_registered_runtime(
    counting: type[CountingRuntime], tiny_model: Path
) -> None:
    assert counting.name in catalog.names()
    assert resolve_runtime(counting.name, "cuda") == counting.name  # not marked cpu_only
    ex = load_extractor(str(tiny_model), runtime=counting.name)
    assert isinstance(ex.engine, CountingRuntime) and ex.runtime == counting.name
    got = ex.predict(TEXTS, threshold=0.01)
    assert counting.batches > 0
    want = load_extractor(str(tiny_model), runtime="fused").predict(TEXTS, threshold=0.01)
    assert [[(m.start, m.end) for m in ms] for ms in got] == [[(m.start, m.end) for m in ms] for ms in want]


def test_auto_measures_a_registered_candidate(
    counting: type[CountingRuntime], tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LMR_CACHE_DIR", str(tmp_path / "cache"))
    others = tuple(i.name for i in catalog.registered() if i.auto and i.name not in (catalog.EXACT, counting.name))
    opts = AutoOptions(exclude=others, budget_s=30)
    assert candidates(opts) == [catalog.EXACT, counting.name]
    ex = load_extractor(str(tiny_model), runtime="auto", auto=opts)
    by_name = {c.runtime: c for c in ex.runtime_choice.candidates}
    assert set(by_name) == {catalog.EXACT, counting.name}
    assert counting.built >= 1 and counting.batches > 0
    assert by_name[counting.name].agrees and by_name[counting.name].posts_per_s > 0  # it is fused: same spans
    assert ex.runtime == ex.runtime_choice.runtime
    assert isinstance(ex.engine, CountingRuntime) == (ex.runtime == counting.name)


def test_a_name_is_registered_once_and_unknown_names_list_the_choices(counting: type[CountingRuntime]) -> None:
    with pytest.raises(ConfigError, match="already registered"):
        register(RuntimeInfo(counting.name, CountingRuntime))
    with pytest.raises(ConfigError, match=counting.name):
        resolve_runtime("tensorrt")
    catalog.unregister(counting.name)
    with pytest.raises(ConfigError, match="Unknown runtime"):
        resolve_runtime(counting.name)
