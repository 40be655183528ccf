"""Helpers shared by the benchmarks: where IDRISI is, and reading its posts."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from lmr.datasets import idrisi_dir
from lmr.errors import LmrError

REPO = Path(__file__).resolve().parent.parent


def need_idrisi() -> Path:
    """The IDRISI directory (found, or downloaded: see lmr.datasets), or exit with a clear reason."""
    try:
        return idrisi_dir()
    except LmrError as exc:
        sys.exit(str(exc))


def unlabeled_posts(limit: int | None = None) -> list[dict[str, object]]:
    """Posts of ``lmr/*/test_unlabeled.jsonl`` (a realistic unlabeled stream), in file order."""
    posts: list[dict[str, object]] = []
    for f in sorted((need_idrisi() / "lmr").glob("*/test_unlabeled.jsonl")):
        for line in f.read_text(encoding="utf-8").splitlines():
            if line.strip():
                posts.append(json.loads(line))
    return posts[:limit] if limit else posts


def cpu_name() -> str:
    """The CPU's model name (``lscpu``'s), to print beside every figure."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()
