"""Render ``results/*.json`` into ``docs/results.md`` and the README's headline table.

One table per area and kind of CPU; each row names its command (numbered below the table, with the
commit, CPU, threads and library versions it ran with). The README's table sits between the
``HEADLINE_START`` and ``HEADLINE_END`` markers; everything else in the README is left alone.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lmr.errors import DataError
from lmr.results import AREAS, REPO

HEADLINE_START = "<!-- results:headline (rendered by python -m lmr.results render; edit results/*.json) -->"
HEADLINE_END = "<!-- /results:headline -->"
GENERATED = "<!-- rendered by `python -m lmr.results render` from results/*.json: edit those, not this page -->"


def _num(digits: int) -> Callable[[Any], str]:
    return lambda v: f"{v:.{digits}f}"


FORMATS: dict[str, Callable[[Any], str]] = {
    "f1": _num(1),
    "f3": _num(3),
    "f4": _num(4),
    "signed": lambda v: "0" if v == 0 else f"{v:+.4f}".replace("-", "−"),
    "ratio": lambda v: f"{v:.2f}×",
    "pct": lambda v: f"{100 * v:.2f}%",
    "int": lambda v: f"{v:,}",
    "str": str,
}


@dataclass(frozen=True)
class Area:
    title: str
    intro: str
    columns: tuple[tuple[str, str, str], ...]  # (figure key, header, format)


SPECS: dict[str, Area] = {
    "end_to_end": Area(
        "Places end to end",
        "What a crisis team gets: a gold place counts as found when an output place has its span and lies "
        "within 161 km of the annotators' point (docs/end-to-end.md). Held-out events were kept out of "
        "training and of every choice; recognition F1 on the same posts stands beside it.",
        (
            ("e2e_precision", "precision", "f3"),
            ("e2e_recall", "recall", "f3"),
            ("e2e_f1", "F1 at 161 km", "f3"),
            ("e2e_overlap_f1", "overlap F1", "f3"),
            ("f1", "recognition F1", "f3"),
            ("n_posts", "posts", "int"),
        ),
    ),
    "recognition": Area(
        "Recognition: exact-span F1",
        "Held-out F1 scores whole disasters kept out of training and out of every choice (checkpoint, threshold); "
        "the standard split holds out ecuador_earthquake_2016, greece_wildfires_2018, hurricane_florence_2018 and "
        "srilanka_floods_2017. Dev F1: IDRISI's dev posts of the training events (1,428 posts for a model "
        "trained on all 14 events, 1,039 for a held-out model). Expect ±0.02 on held-out events from seed to seed.",
        (
            ("encoder", "encoder", "str"),
            ("heldout_split", "held out", "str"),
            ("train_precision", "training precision", "str"),
            ("selection_f1", "selection F1", "f3"),
            ("dev_f1", "dev F1", "f3"),
            ("heldout_f1", "held-out F1", "f3"),
            ("f1", "F1 on the command's data", "f3"),
            ("overlap_f1", "overlap F1", "f3"),
            ("minutes", "minutes", "f1"),
            ("steps", "steps", "int"),
        ),
    ),
    "recipes": Area(
        "Recipes tried on unseen events",
        "Each lever against the same recipe without it, on the standard split's held-out events (one run each "
        "unless stated).",
        (
            ("heldout_f1", "held-out F1", "f3"),
            ("baseline_heldout_f1", "without it", "f3"),
            ("selection_f1", "selection F1", "f3"),
            ("verdict", "verdict", "str"),
        ),
    ),
    "training": Area(
        "Training speed",
        "Training steps per second, interleaved in one run so drift hits every variant alike.",
        (("steps_per_s", "steps/s", "f3"), ("speedup", "speed-up", "ratio")),
    ),
    "inference": Area(
        "Inference runtimes",
        "The production model (MiniLM), batches of 32, 600 unlabeled posts, median of 5 interleaved rounds; "
        "F1 on IDRISI's 1,428 dev posts. Compare ratios, not posts/s, across machines.",
        (
            ("runtime", "runtime run", "str"),
            ("posts_per_s", "posts/s", "f1"),
            ("x_torch", "× torch", "ratio"),
            ("f1", "F1", "f4"),
            ("delta_f1", "ΔF1", "signed"),
        ),
    ),
    "worker": Area(
        "Worker through Kafka",
        "The worker through the embedded broker against the model alone on the same micro-batches (the "
        "ceiling), a plain per-message GLiNER loop, and the text cache on a stream with 50% repeated texts.",
        (
            ("runtime", "runtime", "str"),
            ("worker_over_ceiling", "worker / model alone", "f3"),
            ("x_plain_loop", "× plain loop", "ratio"),
            ("text_cache_x", "text cache", "ratio"),
            ("arabic_mix_over_english", "Arabic mix / English", "f3"),
        ),
    ),
    "worst_case": Area(
        "Worst-case posts",
        "Hostile posts one at a time through the worker's pipeline (parse, windows, text cache, model, "
        "offline geocoder), each against a typical post: `first` is a post's first pass, `median` the median "
        "of the later passes (each misses the text cache).",
        (
            ("chars", "characters", "int"),
            ("first_ms", "first ms", "f1"),
            ("median_ms", "median ms", "f1"),
            ("model_ms", "model ms", "f1"),
            ("times_typical", "× typical", "ratio"),
        ),
    ),
    "soak": Area(
        "Soak: two workers, hostile records, kill -9",
        "The embedded broker, two workers in one group, a steady stream with hostile records and worst-case "
        "texts, one worker killed with kill -9 and restarted every few minutes (docs/worker.md, Soak). Lost "
        "must be 0. RSS is of the worker never killed.",
        (
            ("records_in", "records in", "int"),
            ("events_out", "events", "int"),
            ("dead_lettered", "dead letters", "int"),
            ("lost", "lost", "int"),
            ("duplicate_share", "duplicates", "pct"),
            ("longest_stall_s", "longest stall s", "f1"),
            ("unexpected_exits", "unexpected exits", "int"),
            ("rss_start_mb", "RSS start MiB", "f1"),
            ("rss_end_mb", "RSS end MiB", "f1"),
        ),
    ),
    "geocoding": Area(
        "Geocoding",
        "IDRISI-D gold mentions (the command names the files: English, the 14 shared events' train and dev "
        "posts; Arabic, the dev posts of the 5 shared events), every gold mention (unresolved counts as a miss), "
        "each event's posts in arrival order.",
        (
            ("acc161", "acc@161", "f3"),
            ("coverage", "coverage", "f3"),
            ("median_km", "median km", "f1"),
            ("mrr1_city", "MRR@1 city", "f3"),
        ),
    ),
}


def cpu_kind(flags: Sequence[str]) -> str:
    """The kind of CPU a figure holds for, from the flags that pick kernels."""
    f = set(flags)
    if not f:
        return "CPU flags not recorded (figures that do not depend on the CPU)"
    if {"amx_bf16", "amx_int8"} & f:
        return "x86 with AMX, AVX512-VNNI and AVX512-BF16"
    if "avx512_bf16" in f:
        return "x86 with AVX512-BF16, no AMX"
    if {"avx512_vnni", "avx_vnni"} & f:
        return "x86 with VNNI, no bf16"
    return "x86 with AVX2 only (no AVX512, no native bf16)"


def load(folder: Path) -> list[tuple[str, dict[str, Any]]]:
    """Every result file in ``folder`` (sorted by name), checked for the fields the renderer reads."""
    out = []
    for p in sorted(folder.glob("*.json")):
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise DataError(f"Result {p} is not valid JSON: {exc}.", "fix the file or rerun its command.") from exc
        missing = [k for k in ("area", "title", "command", "commit", "cpu", "rows") if k not in data]
        if missing or data["area"] not in SPECS:
            raise DataError(
                f"Result {p} lacks {', '.join(missing) or 'a known area'}.",
                f"write it with lmr.results.write_result (areas: {', '.join(AREAS)}).",
            )
        out.append((p.stem, data))
    return out


def _cell(value: Any, fmt: str) -> str:
    if value is None or value == "":
        return ""
    return FORMATS[fmt](value) if isinstance(value, int | float) and fmt != "str" else str(value)


def _table(area: Area, results: Sequence[tuple[str, dict[str, Any]]], first: int) -> list[str]:
    cols = [c for c in area.columns if any(c[0] in r for _, d in results for r in d["rows"])]
    head = ["setting", *(h for _, h, _ in cols), "command"]
    align = "".join(" --- |" if fmt == "str" else " ---: |" for _, _, fmt in cols)
    lines = ["| " + " | ".join(head) + " |", "| --- |" + align + " --- |"]
    notes: list[str] = []
    for i, (_, d) in enumerate(results, start=first):
        for r in d["rows"]:
            cells = [str(r["name"]), *(_cell(r.get(k), fmt) for k, _, fmt in cols), f"[{i}](#run-{i})"]
            lines.append("| " + " | ".join(cells) + " |")
        libs = ", ".join(f"{k} {v}" for k, v in d.get("versions", {}).items()) or "versions not recorded"
        note = f" {d['notes']}" if d.get("notes") else ""
        notes.append(
            f'<a id="run-{i}"></a>{i}. `{d["command"]}`  \n'
            f"   {d['title']}; commit `{d['commit']}`, {d['cpu'].get('model', '?')}, "
            f"{d.get('threads', '?')} threads; {libs}.{note}"
        )
    return [*lines, "", *notes, ""]


def render_results(results: Sequence[tuple[str, dict[str, Any]]]) -> str:
    """``docs/results.md``: one section per area, one table per kind of CPU."""
    out = [
        GENERATED,
        "",
        "# Results",
        "",
        "Every figure below is a file in `results/`, written by the command its row names (`--result PATH`), "
        "with the commit, CPU, threads and library versions it ran with. Compare ratios rather than absolute "
        "speeds across machines.",
        "",
    ]
    n = 1
    for key, area in SPECS.items():
        mine = [(s, d) for s, d in results if d["area"] == key]
        if not mine:
            continue
        out += [f"## {area.title}", "", area.intro, ""]
        kinds: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        for s, d in mine:
            kinds.setdefault(cpu_kind(d["cpu"].get("flags", [])), []).append((s, d))
        for kind, group in kinds.items():
            out += [f"### {kind}", "", *_table(area, group, n)]
            n += len(group)
    return "\n".join(out).rstrip() + "\n"


def render_headline(results: Sequence[tuple[str, dict[str, Any]]], link: str = "docs/results.md") -> str:
    """The README's table: each result's ``headline`` entries (label, row, figure), in area order."""
    lines = ["| measure | figure | model and setting | CPU |", "| --- | ---: | --- | --- |"]
    order = {a: i for i, a in enumerate(SPECS)}
    for _, d in sorted(results, key=lambda sd: order[sd[1]["area"]]):
        for h in d.get("headline", []):
            row = next((r for r in d["rows"] if r["name"] == h["row"]), None)
            if row is None or h["figure"] not in row:
                raise DataError(
                    f"Headline {h['label']!r} names row {h['row']!r} / figure {h['figure']!r}, absent from "
                    f"{d['title']!r}.",
                    "name a row and figure the file holds.",
                )
            fmt = next((f for k, _, f in SPECS[d["area"]].columns if k == h["figure"]), "f3")
            lines.append(
                f"| {h['label']} | {_cell(row[h['figure']], fmt)} | {h.get('setting', row['name'])} | "
                f"{cpu_kind(d['cpu'].get('flags', []))} |"
            )
    lines += ["", f"Every figure with its command, commit and machine: [{link}]({link})."]
    return "\n".join(lines)


def _with_headline(readme: str, table: str) -> str:
    start, end = readme.find(HEADLINE_START), readme.find(HEADLINE_END)
    if start < 0 or end < start:
        raise DataError("README.md has no headline markers.", f"put {HEADLINE_START} and {HEADLINE_END} in it.")
    return readme[: start + len(HEADLINE_START)] + "\n" + table + "\n" + readme[end:]


def rendered(root: Path = REPO) -> dict[Path, str]:
    """What ``docs/results.md`` and ``README.md`` should hold, rendered from ``root/results``."""
    results = load(root / "results")
    readme = root / "README.md"
    return {
        root / "docs" / "results.md": render_results(results),
        readme: _with_headline(readme.read_text(encoding="utf-8"), render_headline(results)),
    }


def stale(root: Path = REPO) -> list[Path]:
    """The rendered files whose text differs from what the result files give."""
    return [p for p, text in rendered(root).items() if not p.is_file() or p.read_text(encoding="utf-8") != text]


def write(root: Path = REPO) -> list[Path]:
    """Render into place; the files that changed."""
    changed = stale(root)
    for p, text in rendered(root).items():
        if p in changed:
            p.write_text(text, encoding="utf-8")
    return changed
