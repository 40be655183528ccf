"""Figures as data: result files are written with their environment, and the rendered docs follow them."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from lmr.errors import ConfigError, DataError
from lmr.results import KERNEL_FLAGS, REPO, command_line, git_commit, write_result
from lmr.results.render import HEADLINE_END, HEADLINE_START, SPECS, cpu_kind, load, stale, write


def _copy_repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(REPO / "results", root / "results")
    (root / "docs").mkdir()
    shutil.copy(REPO / "docs" / "results.md", root / "docs" / "results.md")
    shutil.copy(REPO / "README.md", root / "README.md")
    return root


def test_rendered_files_are_current() -> None:
    old = [str(p.relative_to(REPO)) for p in stale(REPO)]
    assert not old, f"{old} out of date with results/*.json: run `python -m lmr.results render` and commit"


def test_a_changed_figure_makes_the_rendered_files_stale_until_rendered(tmp_path: Path) -> None:
    root = _copy_repo(tmp_path)
    assert stale(root) == []
    headline = next(p for p in sorted((root / "results").glob("*.json")) if "headline" in json.loads(p.read_text()))
    data = json.loads(headline.read_text())
    entry = data["headline"][0]
    row = next(r for r in data["rows"] if r["name"] == entry["row"])
    row[entry["figure"]] = 0.123
    headline.write_text(json.dumps(data))
    assert set(stale(root)) == {root / "docs" / "results.md", root / "README.md"}
    assert set(write(root)) == {root / "docs" / "results.md", root / "README.md"}
    assert stale(root) == []
    readme = (root / "README.md").read_text()
    table = readme[readme.index(HEADLINE_START) : readme.index(HEADLINE_END)]
    assert "0.123" in table and "0.123" in (root / "docs" / "results.md").read_text()


def test_every_row_names_its_command_and_every_file_is_rendered() -> None:
    page = (REPO / "docs" / "results.md").read_text()
    results = load(REPO / "results")
    assert {d["area"] for _, d in results} <= set(SPECS)
    for _, d in results:
        assert d["command"].split()[0] in {"lmr-trainer", "lmr-worker", "lmr-geocode", "python"} or "=" in d["command"]
        assert f"`{d['command']}`" in page


def test_a_result_missing_its_command_is_refused_by_name(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text(json.dumps({"area": "inference", "title": "x", "rows": []}))
    with pytest.raises(DataError, match=r"bad.json lacks command"):
        load(tmp_path)


def test_write_result_records_the_environment(tmp_path: Path) -> None:
    out = tmp_path / "r" / "speed.json"
    res = write_result(out, area="inference", title="t", rows=[{"name": "fused", "posts_per_s": 12.5}],
                       command="python -m bench.inference_speed --model m")  # fmt: skip
    back = json.loads(out.read_text())
    assert back == res
    assert back["commit"] == git_commit() and back["commit"] != "unknown"
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    assert back["commit"].startswith(head.stdout.strip())
    assert set(back["cpu"]["flags"]) <= set(KERNEL_FLAGS) and back["cpu"]["model"]
    assert back["threads"] >= 1 and "torch" in back["versions"]
    assert cpu_kind(back["cpu"]["flags"])


def test_write_result_refuses_unknown_areas_and_nameless_rows(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="area"):
        write_result(tmp_path / "x.json", area="speed", title="t", rows=[{"name": "a"}])
    with pytest.raises(ConfigError, match="name"):
        write_result(tmp_path / "x.json", area="inference", title="t", rows=[{"posts_per_s": 1.0}])


def test_command_line_reads_as_typed() -> None:
    assert command_line(["/x/.venv/bin/lmr-trainer", "evaluate", "m", "a b"]) == "lmr-trainer evaluate m 'a b'"


@pytest.mark.parametrize(
    ("flags", "kind"),
    [
        (["avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8"], "AMX"),
        (["avx2", "avx512f", "avx512_vnni", "avx512_bf16"], "AVX512-BF16, no AMX"),
        (["avx2", "avx512_vnni"], "VNNI, no bf16"),
        (["avx2"], "AVX2 only"),
    ],
)
def test_cpu_kind_follows_the_kernel_flags(flags: list[str], kind: str) -> None:
    assert kind in cpu_kind(flags)


@pytest.mark.slow
def test_trainer_evaluate_writes_a_result_the_renderer_reads(tiny_model: Path, tiny_data: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from trainer.cli import main

    out = tmp_path / "results" / "tiny.json"
    res = CliRunner().invoke(
        main, ["evaluate", str(tiny_model), str(tiny_data), "--runtime", "fused", "--result", str(out)]
    )
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert data["area"] == "recognition" and data["command"] and data["commit"] == git_commit()
    row = data["rows"][0]
    assert 0.0 <= row["f1"] <= 1.0 and row["n_posts"] > 0 and "(fused)" in row["name"]
    assert load(out.parent)[0][1]["rows"] == data["rows"]
