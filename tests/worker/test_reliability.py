"""Worker reliability without a broker: registry verification on load and reload, reload errors and retries,
a broken model held and rolled back, oversized records, the batch checkpoint, health, and refused settings."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from lmr.errors import ConfigError, CorruptModelError
from lmr.model import registry
from worker.app import Worker
from worker.canary import CANARY_TEXT
from worker.checkpoint import Checkpoint
from worker.cli import main
from worker.events import (
    H_DROPPED,
    H_ORIGINAL_BYTES,
    H_REASON,
    OutRecord,
    dlq_record,
    fit_dead_letter,
    produced_size,
    record_size,
)
from worker.metrics import Health
from worker.parse import Message, Rejected
from worker.pipeline import ModelFailing, Pipeline
from worker.reload import ModelManager
from worker.settings import WorkerSettings, default, parse_file_url

# -- registry: every load verifies every file (item 4) ---------------------------------------------


def _version(model_dir: Path, version: str, *, sealed: bool = True) -> Path:
    d = model_dir / version
    d.mkdir(parents=True)
    (d / "gliner_config.json").write_text("{}")
    (d / "weights.bin").write_bytes(version.encode() * 100)
    if sealed:
        registry.write_manifest(d, ["location"], 0.5, {"name": model_dir.name, "version": version})
    return d


def test_latest_must_name_a_version_inside_the_registry(tmp_path: Path) -> None:
    m = tmp_path / "reg" / "m"
    _version(m, "v1")
    elsewhere = _version(tmp_path / "other", "x")
    for bad in ("../../other/x", str(elsewhere), "v1/../../../other/x"):
        (m / "LATEST").write_text(bad + "\n")
        with pytest.raises(CorruptModelError, match="not a version of this registry"):
            registry.resolve(str(m))
    (m / "LATEST").write_bytes(b"v\xff1")
    with pytest.raises(CorruptModelError, match="not UTF-8"):
        registry.read_latest(m)
    registry.set_latest(m, "v1")
    assert registry.resolve(str(m)).path == str(m / "v1")


def test_a_registry_version_without_manifest_is_refused_not_loaded_as_plain(tmp_path: Path) -> None:
    m = tmp_path / "reg" / "m"
    _version(m, "v1")
    _version(m, "v2", sealed=False)  # a GLiNER folder copied in without its manifest
    registry.set_latest(m, "v1")
    with pytest.raises(CorruptModelError, match=r"no manifest\.json"):
        registry.resolve(str(m / "v2"))
    registry.set_latest(m, "v2")
    with pytest.raises(CorruptModelError, match=r"no manifest\.json"):
        registry.resolve(str(m))
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "gliner_config.json").write_text("{}")
    assert registry.resolve(str(plain)).kind == "plain", "a GLiNER folder outside a registry still loads"


def test_a_file_missing_from_the_manifest_fails_verification(tmp_path: Path) -> None:
    d = _version(tmp_path / "reg" / "m", "v1")
    registry.verify(d)
    (d / "tokenizer.json").write_text("{}")
    with pytest.raises(CorruptModelError, match=r"tokenizer\.json is not listed"):
        registry.verify(d)
    (d / "tokenizer.json").unlink()
    (d / "sub").mkdir()
    (d / "sub" / "extra.bin").write_bytes(b"x")
    with pytest.raises(CorruptModelError, match=r"sub/extra\.bin is not listed"):
        registry.verify(d)


# -- reload: errors never stop the worker, a failed version is retried (item 5) ---------------------


class Stub:
    """Stands in for a model in reload bookkeeping tests (loading is real: resolve + verify)."""

    max_words = 64

    def __init__(self, name: str, version: str) -> None:
        self.name, self.version = name, version

    @property
    def model_id(self) -> str:
        return f"{self.name}@{self.version}"

    def predict_words(self, words_list: Sequence[Any], texts: Sequence[str], **kw: Any) -> list[list[Any]]:
        return [[] for _ in texts]


def _verified_loader(ref: str) -> Stub:
    r = registry.resolve(ref)
    registry.verify(Path(r.path))
    return Stub(r.name, r.version)


def test_reload_errors_keep_the_current_model_and_a_completed_version_is_retried(tmp_path: Path) -> None:
    m = tmp_path / "reg" / "m"
    _version(m, "v1")
    registry.set_latest(m, "v1")
    mm = ModelManager(str(m), loader=_verified_loader, check_s=0.05)
    assert mm.current.version == "v1"
    (m / "LATEST").write_bytes(b"\xff\xfe")  # not UTF-8
    assert mm.maybe_swap(wait=True) is False and mm.current.version == "v1" and "UTF-8" in str(mm.last_error)
    (m / "LATEST").write_text("../../etc")
    assert mm.maybe_swap(wait=True) is False and mm.current.version == "v1"
    v2 = _version(m, "v2", sealed=False)  # a partial copy: no manifest yet
    registry.set_latest(m, "v2")
    assert mm.maybe_swap(wait=True) is False and mm.failed_version == "v2"
    assert mm.maybe_swap() is False, "a failed version waits for its backoff"
    registry.write_manifest(v2, ["location"], 0.5, {"name": "m", "version": "v2"})  # the copy completes
    time.sleep(0.06)
    assert mm.maybe_swap(wait=True) is True and mm.current.version == "v2"
    assert mm.reloads == 1 and mm.previous is not None and mm.previous.version == "v1"


# -- a broken model: held, rolled back, never dead-letters the stream (item 6) ---------------------


class Flaky:
    """A real model that fails like a broken one (every call raises): for its first ``broken_calls`` calls,
    or, with ``until_canary``, until it has failed on the worker's canary post once."""

    def __init__(self, inner: Any, broken_calls: int = 0, version: str | None = None, until_canary: bool = False):
        self.inner, self.calls, self.broken_calls, self.until_canary = inner, 0, broken_calls, until_canary
        self.name, self.version = inner.name, version or inner.version
        self.max_words = inner.max_words

    @property
    def model_id(self) -> str:
        return f"{self.name}@{self.version}"

    def predict_words(self, words_list: Any, texts: Any, **kw: Any) -> Any:
        self.calls += 1
        if self.until_canary:
            if CANARY_TEXT in texts:
                self.until_canary = False
            raise RuntimeError("CUDA out of memory (simulated)")
        if self.calls <= self.broken_calls:
            raise RuntimeError("CUDA out of memory (simulated)")
        return self.inner.predict_words(words_list, texts, **kw)


@pytest.fixture(scope="module")
def extractor(tiny_model: Path) -> Any:
    from lmr.model.extractor import load_extractor

    return load_extractor(str(tiny_model))


def _posts_file(tmp_path: Path, n: int) -> Path:
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"id": i, "text": f"Flooding in Houston, report {i}"}) + "\n" for i in range(n)))
    return src


def test_a_model_failing_on_everything_is_held_not_dead_lettered(
    tiny_model: Path, extractor: Any, tmp_path: Path
) -> None:
    pipe = Pipeline(ModelManager(str(tiny_model), extractor=Flaky(extractor, broken_calls=10**6)))
    with pytest.raises(ModelFailing, match="canary"):
        pipe.process([Message(b'{"text": "Rain in Houston"}', "t", 0, 0)])
    # transient: the model fails for a while, the worker holds the batch and retries; nothing is dead-lettered
    src, out, dlq = _posts_file(tmp_path, 6), tmp_path / "out.jsonl", tmp_path / "dlq.jsonl"
    s = WorkerSettings(
        model=str(tiny_model), source=f"file:{src}", sink=f"file:{out}", dlq=f"file:{dlq}", retry_backoff_s=0.05
    )
    # broken through the batch, its posts one by one and the canary -> one hold, then the retried batch works
    w = Worker(s, models=ModelManager(str(tiny_model), extractor=Flaky(extractor, until_canary=True)))
    assert w.run() == 0
    assert len(out.read_text().splitlines()) == 6 and dlq.read_text() == ""
    assert w.metrics.model_holds._value.get() == 1 and w.model_failing is None
    # 5 broken calls: the model recovers mid-batch, the canary passes, the failed posts are read again
    pipe = Pipeline(ModelManager(str(tiny_model), extractor=Flaky(extractor, broken_calls=5)))
    lines = src.read_text().splitlines()
    r = pipe.process([Message(line.encode(), "t", 0, i) for i, line in enumerate(lines)])
    assert len(r.outputs) == 6 and r.dlq == []


class Poisoned(Flaky):
    """A real model that always fails on posts containing POISON (and works on everything else)."""

    def predict_words(self, words_list: Any, texts: Any, **kw: Any) -> Any:
        self.calls += 1
        if any("POISON" in t for t in texts):
            raise ValueError("cannot read this post")
        return self.inner.predict_words(words_list, texts, **kw)


@pytest.mark.parametrize("others", [0, 3])
def test_a_post_the_model_fails_on_is_read_the_fewest_times(extractor: Any, others: int) -> None:
    model = Poisoned(extractor)
    pipe = Pipeline(ModelManager("unused", extractor=model))
    texts = ["Rain in POISON town"] + [f"Flooding in Houston {i}" for i in range(others)]
    r = pipe.process([Message(json.dumps({"text": t}).encode(), "t", 0, i) for i, t in enumerate(texts)])
    assert len(r.outputs) == others and r.dlq_reasons == ["model_error"]
    # the batch, (each post alone when the batch held others), the canary, the failed post once more
    assert model.calls == (1 + (others + 1 if others else 0)) + 1 + 1


def test_a_bad_reload_is_rolled_back_and_the_batch_redone_with_the_previous_model(
    tiny_model: Path, extractor: Any, tmp_path: Path
) -> None:
    reg = tmp_path / "reg" / "tiny"
    reg.mkdir(parents=True)
    shutil.copytree(tiny_model / "v1", reg / "v1")
    shutil.copytree(tiny_model / "v1", reg / "v2")
    registry.write_manifest(reg / "v2", ["location"], 0.5, {"name": "tiny", "version": "v2"})
    registry.set_latest(reg, "v1")

    def loader(ref: str) -> Any:
        registry.verify(Path(registry.resolve(ref).path))
        return Flaky(extractor, 10**6, "v2") if ref.endswith("v2") else extractor

    mm = ModelManager(str(reg), loader=loader, check_s=0.01)
    registry.set_latest(reg, "v2")
    assert mm.maybe_swap(wait=True) and mm.current.version == "v2"
    src, out = _posts_file(tmp_path, 4), tmp_path / "out.jsonl"
    s = WorkerSettings(model=str(reg), source=f"file:{src}", sink=f"file:{out}", reload_check_s=3600)
    w = Worker(s, models=mm)
    assert w.run() == 0
    events = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(events) == 4 and {e["lmr"]["model"] for e in events} == {"tiny@v1"}
    assert mm.rollbacks == 1 and mm.failed_version == "v2"
    assert w.metrics.model_rollbacks._value.get() == 1


def test_a_stop_while_the_model_is_held_exits_3_with_nothing_committed(
    tiny_model: Path, extractor: Any, tmp_path: Path
) -> None:
    import threading

    src, out = _posts_file(tmp_path, 3), tmp_path / "out.jsonl"
    s = WorkerSettings(model=str(tiny_model), source=f"file:{src}", sink=f"file:{out}", retry_backoff_s=0.2)
    w = Worker(s, models=ModelManager(str(tiny_model), extractor=Flaky(extractor, 10**6)))
    threading.Timer(1.0, w.stop).start()
    assert w.run() == 3
    assert w.committed == {} and out.read_text() == ""
    assert not w.health.ready and "model failing" in w.health.reason


# -- oversized records: a bounded dead letter (item 3) -----------------------------------------------


def _event(source: Message, size: int) -> OutRecord:
    return OutRecord(b"e" * size, b"key", (("trace", b"1"),), source, None)


def test_an_oversized_event_becomes_an_event_too_large_dead_letter_of_its_input() -> None:
    src = Message(b'{"id": 1, "text": "Houston"}', "posts", 2, 77, b"key", (("trace", b"1"),))
    d = fit_dead_letter(_event(src, 5000), 4000)
    h = dict(d.headers)
    assert h[H_REASON] == b"event_too_large" and b"5000 bytes" in h["lmr.error.message"]
    assert d.value == src.value and H_ORIGINAL_BYTES not in h, "the original fits: kept whole"
    assert h["lmr.source.offset"] == b"77" and h["trace"] == b"1" and d.key == b"key"


@settings(max_examples=200, deadline=None)
@given(size=st.integers(0, 20_000), limit=st.integers(600, 12_000), headers=st.integers(0, 3))
def test_a_dead_letter_is_cut_to_fit_and_says_how_long_it_was(size: int, limit: int, headers: int) -> None:
    value = bytes(i % 251 for i in range(size))
    src = Message(value, "posts", 0, 5, b"k", tuple((f"h{i}", b"v" * 20) for i in range(headers)))
    rec = dlq_record(Rejected(src, "not_json", "invalid JSON"))
    d = fit_dead_letter(rec, limit)
    h = dict(d.headers)
    assert d.value is not None and produced_size(d) <= limit, "the exact produced size fits"
    assert value.startswith(d.value) and h[H_REASON] == b"not_json" and d.key == b"k"
    if len(d.value) < size:
        assert h[H_ORIGINAL_BYTES] == str(size).encode()
        assert produced_size(replace(d, value=value[: len(d.value) + 1])) > limit, "not one byte more fits"
    again = fit_dead_letter(d, 0)  # the last step before dropping: lmr headers only, original size kept
    assert again.value == b"" and dict(again.headers)[H_ORIGINAL_BYTES] == str(size).encode()


@settings(max_examples=300, deadline=None)
@given(
    key=st.none() | st.binary(max_size=300),
    value=st.none() | st.binary(max_size=20_000),
    headers=st.lists(st.tuples(st.text(max_size=200), st.binary(max_size=300)), max_size=5),
)
def test_record_size_is_the_size_the_producer_checks(
    key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]
) -> None:
    from kafka.record.default_records import DefaultRecordBatchBuilder

    assert record_size(value, key, headers) == DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, headers)


@pytest.mark.parametrize("limit", [1_048_576, 20_000, 600])
def test_a_dead_letter_drops_the_headers_then_the_key_that_do_not_fit_and_says_so(limit: int) -> None:
    headers = tuple((f"h{i}", b"v" * 10_000) for i in range(105))
    for key, kept_key in ((b"k", True), (b"k" * 1_100_000, False)):
        src = Message(b'{"text": "Houston"}', "posts", 0, 9, key, headers)
        d = fit_dead_letter(OutRecord(b"e" * 10, key, headers, src), limit)
        h = dict(d.headers)
        assert produced_size(d) <= limit and h[H_REASON] == b"event_too_large"
        assert not any(k.startswith("h") for k in h) and h[H_DROPPED].startswith(b"headers=105/1050")
        assert (d.key == key) is kept_key and (b"key=1100000" in h[H_DROPPED]) is not kept_key
        assert d.value == src.value or limit < 1_000, "the value is kept whole when it fits"
    smallest = fit_dead_letter(d, 0)
    assert smallest.key is None and smallest.value == b"" and dict(smallest.headers)[H_REASON] == b"event_too_large"


# -- the checkpoint: revoked partitions are dropped and never committed (item 2) --------------------


def test_checkpoint_drops_revoked_partitions_and_commits_only_owned_ones() -> None:
    cp = Checkpoint(size=4, max_wait_s=10)
    msgs = [Message(b"{}", "t", i % 2, 10 + i) for i in range(3)]
    assert not cp.due(0.0)
    cp.add(msgs, now=100.0)
    assert cp.room() == 1 and cp.room(limit=2) == -1 and not cp.due(105.0) and cp.due(110.0)
    assert cp.offsets() == {("t", 0): 13, ("t", 1): 12}
    assert cp.drop({("t", 1)}) == {("t", 1): 11}, "where the consumer resumes if the partition comes back"
    assert cp.offsets() == {("t", 0): 13} and len(cp) == 2
    outs = [_event(m, 1) for m in msgs]
    assert [r.source.partition for r in cp.owned(outs)] == [0, 0]


# -- health: alive during one long batch (item 7) ---------------------------------------------------


def test_health_is_alive_during_one_long_batch_and_not_after_a_stall() -> None:
    h = Health(stall_s=0.05)
    time.sleep(0.08)
    assert not h.alive()
    h.batch_started(limit_s=5.0)
    time.sleep(0.08)
    assert h.alive(), "a long model pass is not a stall"
    h.batch_ended()
    time.sleep(0.08)
    assert not h.alive()


# -- settings: refused flags and one source of defaults (items 10, issue 10) ------------------------


def test_acks_below_all_and_zero_chunks_are_refused(tmp_path: Path) -> None:
    for acks in ("0", "1"):
        with pytest.raises(ConfigError, match="at-least-once") as e:
            WorkerSettings.from_params({"model": "m", "acks": acks})
        assert "--acks all" in str(e.value)
    with pytest.raises(ConfigError, match="--max-chunks must be at least 1"):
        WorkerSettings(model="m", max_chunks=0)
    res = CliRunner().invoke(main, ["run", "--model", "m", "--acks", "1"])
    assert res.exit_code != 0 and "at-least-once" in res.output
    with pytest.raises(ConfigError, match=r"--sink 'out\.jsonl' is not understood"):
        WorkerSettings(model="m", source=f"file:{tmp_path}", sink="out.jsonl")
    assert parse_file_url("file:a/b.jsonl", "--sink") == Path("a/b.jsonl")
    assert default("max_text_bytes") == WorkerSettings.__dataclass_fields__["max_text_bytes"].default
