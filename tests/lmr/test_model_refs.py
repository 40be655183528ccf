"""What a model reference may name: a hub model only as ``hf:ORG/NAME``, a missing local path is a clear error,
and a version directory that is a symlink may not lead outside its registry."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from lmr.errors import CorruptModelError, ModelNotFoundError
from lmr.model import registry


def _version(model_dir: Path, version: str) -> Path:
    d = model_dir / version
    d.mkdir(parents=True)
    (d / "gliner_config.json").write_text("{}")
    (d / "weights.bin").write_bytes(version.encode() * 100)
    registry.write_manifest(d, ["location"], 0.5, {"name": model_dir.name, "version": version})
    return d


def test_a_hub_model_is_named_explicitly() -> None:
    ref = registry.resolve("hf:urchade/gliner_large-v2.1")
    assert (ref.kind, ref.path) == ("hub", "urchade/gliner_large-v2.1")
    for bad in ("hf:", "hf:gliner", "hf:a/b/c", "hf:../x"):
        with pytest.raises(ModelNotFoundError, match="hf:ORG/NAME"):
            registry.resolve(bad)


def test_a_missing_local_path_is_an_error_not_a_hub_download(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for missing in ("registry/lmr", "urchade/gliner_large-v2.1", str(tmp_path / "registry" / "lmr")):
        with pytest.raises(ModelNotFoundError, match="does not exist") as e:
            registry.resolve(missing)
        assert "hf:ORG/NAME" in str(e.value) and "Fix:" in str(e.value)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ModelNotFoundError, match="is not a directory"):
        registry.resolve("file")


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=60).filter(lambda t: not t.startswith("hf:") and "\x00" not in t))
def test_nothing_but_hf_names_reaches_the_hub(ref: str) -> None:
    try:
        r = registry.resolve(ref)
    except (ModelNotFoundError, CorruptModelError, OSError):
        return
    assert r.kind != "hub", ref


def test_the_worker_cli_names_the_missing_model_and_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from worker.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)  # the hub reachable in principle: still no download
    src = tmp_path / "in.jsonl"
    src.write_text('{"id": 1, "text": "Flooding in Houston"}\n')
    res = CliRunner().invoke(
        main, ["run", "--model", "registry/lmr", "--source", f"file:{src}", "--sink", f"file:{tmp_path / 'o'}"]
    )
    assert res.exit_code == 1
    assert "No model at 'registry/lmr'" in res.output and "hf:ORG/NAME" in res.output
    assert not (tmp_path / "o").exists() or not (tmp_path / "o").read_text()


def test_a_version_symlink_leading_outside_the_registry_is_refused(tmp_path: Path) -> None:
    m = tmp_path / "reg" / "m"
    _version(m, "v1")
    outside = _version(tmp_path / "elsewhere" / "m", "v9")  # sealed and valid, but not this registry's
    os.symlink(outside, m / "v2")
    registry.set_latest(m, "v2")
    with pytest.raises(CorruptModelError, match=r"symlink .* outside"):
        registry.resolve(str(m))
    with pytest.raises(CorruptModelError, match=r"symlink .* outside"):
        registry.resolve(str(m / "v2"))
    os.symlink(m / "v1", m / "v3")  # a link to another version of the same registry entry is fine
    registry.set_latest(m, "v3")
    assert registry.resolve(str(m)).path == str(m / "v3")
    registry.verify(Path(registry.resolve(str(m)).path))
