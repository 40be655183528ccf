"""The place memory measured: gold mentions resolved with the gazetteer alone and with a memory, side by side.

    python -m bench.geocode_memory [--result PATH]

Two protocols, each event's posts in ``created_at`` order with the stream prior on (as
``lmr-geocode evaluate --order arrival --prior`` runs them):

* **in-domain**: the memory ``lmr-geocode learn idrisi:lmd/train idrisi:ar/lmd/train`` writes (every
  event's train files, both languages), scored on the dev files (English, Arabic);
* **held-out events**: a memory of the train files of every event but the standard split's held-out
  ones (:data:`trainer.crossval.STANDARD_HELDOUT`, ``_AR``), scored on those events' train and dev
  files: what a memory of past disasters brings to a new one.

Rows: acc@161, coverage, median km and IDRISI-D's MRR@1 per admin level.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.common import need_idrisi
from geocode.evaluate import evaluate
from geocode.memory import PlaceMemory, learn_files
from geocode.resolver import build_resolver
from lmr.results import RESULT_HELP, write_result
from trainer.crossval import STANDARD_HELDOUT, STANDARD_HELDOUT_AR

LANGUAGES = (("English", "lmd", STANDARD_HELDOUT), ("Arabic", "ar/lmd", STANDARD_HELDOUT_AR))


def _files(root: Path, split: str, events: Sequence[str] | None = None, *, keep: bool = True) -> list[Path]:
    """``root/*/split.jsonl``; with ``events``, only theirs (``keep``) or only the others'."""
    out = sorted(root.glob(f"*/{split}.jsonl"))
    if events is None:
        return out
    return [f for f in out if (f.parent.name in events) == keep]


def _row(name: str, memory: PlaceMemory | None, files: list[Path]) -> dict[str, Any]:
    m = evaluate(build_resolver("offline", prior=True, memory=memory), files, order="arrival", mrr=True)
    row = {"name": name, "n": m["n"], "acc161": m["acc_161"], "coverage": m["coverage"], "median_km": m["median_km"]}
    row |= {f"mrr1_{level}": v["mrr@1"] for level, v in m["mrr"].items()}
    row["memory_names"] = len(memory) if memory is not None else 0
    print(json.dumps(row, ensure_ascii=False), flush=True)
    return row


def measure(idrisi: Path) -> list[dict[str, Any]]:
    """The rows: per protocol and language, the gazetteer alone then with the memory."""
    roots = {lang: idrisi / sub for lang, sub, _ in LANGUAGES}
    everything = learn_files([f for r in roots.values() for f in _files(r, "train")])
    past = learn_files([f for lang, _, held in LANGUAGES for f in _files(roots[lang], "train", held, keep=False)])
    rows = []
    for lang, _, _held in LANGUAGES:
        dev = _files(roots[lang], "dev")
        rows += [_row(f"{lang} dev: gazetteer", None, dev), _row(f"{lang} dev: with memory", everything, dev)]
    for lang, _, held in LANGUAGES:
        unseen = _files(roots[lang], "train", held) + _files(roots[lang], "dev", held)
        rows += [
            _row(f"{lang} held-out events: gazetteer", None, unseen),
            _row(f"{lang} held-out events: with memory of the others", past, unseen),
        ]
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--result", metavar="PATH", help=RESULT_HELP)
    a = ap.parse_args(argv)
    rows = measure(need_idrisi())
    if a.result:
        title = "Geocoding gold mentions with a place memory learned from annotated train files, prior on"
        write_result(a.result, area="geocoding", title=title, rows=rows)


if __name__ == "__main__":
    main()
