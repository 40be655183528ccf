"""The layering of docs/architecture.md, checked with import-linter's contract from pyproject.toml."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("lmr", "trainer", "worker", "geocode", "demo", "bench")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    if not LINT_IMPORTS.exists():
        pytest.skip(f"lint-imports not installed next to {sys.executable}: pip install -e '.[dev]'")
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=root, env=env, capture_output=True, text=True, timeout=120
    )


def _copy_tree(dst: Path) -> Path:
    for pkg in PACKAGES:
        shutil.copytree(REPO / pkg, dst / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", dst / "pyproject.toml")
    return dst


def test_the_repository_keeps_its_layers() -> None:
    res = _lint_imports(REPO)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "1 kept, 0 broken" in res.stdout


@pytest.mark.parametrize(
    ("module", "line", "forbidden"),
    [
        ("worker/replay.py", "from trainer.data import to_gliner", "worker is not allowed to import trainer"),
        ("lmr/words.py", "from geocode.text import norm", "lmr is not allowed to import geocode"),
    ],
)
def test_a_forbidden_import_breaks_the_contract(tmp_path: Path, module: str, line: str, forbidden: str) -> None:
    root = _copy_tree(tmp_path)
    with (root / module).open("a", encoding="utf-8") as f:
        f.write(f"\n{line}  # noqa\n")
    res = _lint_imports(root)
    assert res.returncode != 0
    assert forbidden in res.stdout, res.stdout


def test_no_module_imports_itself_through_another() -> None:
    """No import circles inside the packages (lazy imports in functions count: they tie modules as tightly)."""
    grimp = pytest.importorskip("grimp", reason="grimp comes with import-linter: pip install -e '.[dev]'")
    graph = grimp.build_graph("lmr", "trainer", "worker", "geocode", cache_dir=None)
    circles = {
        tuple(sorted((module, imported)))
        for module in graph.modules
        for imported in graph.find_modules_directly_imported_by(module)
        if graph.chain_exists(importer=imported, imported=module)
    }
    assert not circles, f"modules that import each other: {sorted(circles)}"
