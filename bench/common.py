"""Helpers shared by the benchmarks: where IDRISI is, and reading its posts."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
IDRISI = Path(os.environ.get("LMR_IDRISI_DIR", REPO.parent / "shared" / "data" / "idrisi"))


def need_idrisi() -> Path:
    """The IDRISI directory, or exit with a clear reason."""
    if not (IDRISI / "lmr").is_dir():
        sys.exit(f"IDRISI not found at {IDRISI}: get it from github.com/rsuwaileh/IDRISI or set LMR_IDRISI_DIR.")
    return IDRISI


def unlabeled_posts(limit: int | None = None) -> list[dict[str, object]]:
    """Posts of ``lmr/*/test_unlabeled.jsonl`` (a realistic unlabeled stream), in file order."""
    posts: list[dict[str, object]] = []
    for f in sorted((need_idrisi() / "lmr").glob("*/test_unlabeled.jsonl")):
        for line in f.read_text(encoding="utf-8").splitlines():
            if line.strip():
                posts.append(json.loads(line))
    return posts[:limit] if limit else posts
