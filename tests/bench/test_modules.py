"""Every benchmark module imports and answers ``--help``: the benchmarks are outside mypy's packages, so a
move elsewhere in lmr would otherwise break one unseen until someone measures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lmr.environment import offline_env

REPO = Path(__file__).resolve().parents[2]
MODULES = sorted(p.stem for p in (REPO / "bench").glob("*.py") if p.stem != "__init__")


@pytest.mark.parametrize("name", MODULES)
def test_every_benchmark_module_imports(name: str) -> None:
    code = f"import importlib; importlib.import_module('bench.{name}')"
    p = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=offline_env(), capture_output=True, text=True, timeout=120
    )
    assert p.returncode == 0, p.stderr[-2000:]
