"""Figures as data: one small JSON file per measurement, written by the command that measured it.

A result file holds the command line, the git commit, the CPU (model, the flags that pick kernels),
the thread count, the library versions and the figures, as ``rows`` (one per model, runtime or setting
measured). ``results/`` in the repository keeps them; ``python -m lmr.results render`` turns them into
``docs/results.md`` and the README's headline table. Commands take ``--result PATH`` to write one.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import subprocess
import sys
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from lmr.errors import ConfigError

SCHEMA = 1
REPO = Path(__file__).resolve().parent.parent.parent
AREAS = ("end_to_end", "recognition", "recipes", "training", "inference", "worker", "worst_case", "soak", "geocoding")
# The flags that decide which kernels run (bf16, int8 and their widths); the rest of /proc/cpuinfo is noise here.
KERNEL_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8", "amx_tile")
LIBRARIES = ("torch", "transformers", "gliner", "onnxruntime", "kafka-python", "geopy")
PROGRAMS = {"trainer.cli": "lmr-trainer", "worker.cli": "lmr-worker", "geocode.cli": "lmr-geocode"}


def cpu() -> dict[str, Any]:
    """The CPU's model name and its kernel-picking flags (Linux ``/proc/cpuinfo``; elsewhere the platform's name)."""
    model, flags = platform.processor() or platform.machine(), set[str]()
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
    except OSError:
        pass
    return {"model": model, "flags": [f for f in KERNEL_FLAGS if f in flags], "cores": os.cpu_count() or 0}


def git_commit(repo: Path = REPO) -> str:
    """The checkout's short commit, ``+dirty`` when files differ from it; ``unknown`` outside a checkout."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True, text=True, timeout=10
        )
        if head.returncode:
            return "unknown"
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "-uno"], cwd=repo, capture_output=True, text=True, timeout=10
        )
        return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def versions() -> dict[str, str]:
    """The installed versions of the libraries that move the figures (absent ones left out)."""
    found: dict[str, str] = {}
    for name in LIBRARIES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def command_line(argv: Sequence[str] | None = None) -> str:
    """The command as a user types it: ``lmr-trainer ...`` or ``python -m bench.quality ...``."""
    args = list(sys.argv if argv is None else argv)
    main = sys.modules.get("__main__")
    module = getattr(getattr(main, "__spec__", None), "name", None) if argv is None else None
    head = Path(args[0]).name if args else "python"
    if module:
        module = module.removesuffix(".__main__")
        head = PROGRAMS.get(module, f"python -m {module}")
    return " ".join([head, *(shlex.quote(a) for a in args[1:])])


def threads() -> int:
    """The intra-op threads torch runs with (the figures' thread count), or the CPU count without torch."""
    torch = sys.modules.get("torch")
    return int(torch.get_num_threads()) if torch is not None else (os.cpu_count() or 1)


def write_result(
    path: str | Path,
    *,
    area: str,
    title: str,
    rows: Sequence[Mapping[str, Any]],
    command: str | None = None,
    headline: Sequence[Mapping[str, str]] = (),
    notes: str = "",
) -> dict[str, Any]:
    """Write one measurement as ``path`` (JSON) and return it. Each row needs a ``name``; figures are its other keys."""
    if area not in AREAS:
        raise ConfigError(f"Result area {area!r} is unknown.", f"use one of {', '.join(AREAS)}.")
    if not rows or any("name" not in r for r in rows):
        raise ConfigError("A result needs at least one row, each with a name.", "pass rows=[{'name': ..., ...}].")
    result: dict[str, Any] = {
        "schema": SCHEMA,
        "area": area,
        "title": title,
        "command": command or command_line(),
        "commit": git_commit(),
        "cpu": cpu(),
        "threads": threads(),
        "versions": versions(),
        "rows": [dict(r) for r in rows],
    }
    if headline:
        result["headline"] = [dict(h) for h in headline]
    if notes:
        result["notes"] = notes
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return result


RESULT_HELP = "Also write the figures to this JSON result file (command, commit, CPU, versions; docs/results.md)."


def result_option(f: Any) -> Any:
    """``--result PATH`` for a click command that measures something."""
    import click

    return click.option("--result", "result_path", type=click.Path(dir_okay=False), default=None, help=RESULT_HELP)(f)
