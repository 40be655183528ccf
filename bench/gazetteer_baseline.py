"""Recognition baseline without a model: the offline gazetteer as a dictionary tagger, scored as models are.

    python -m bench.gazetteer_baseline --data idrisi:ar/lmr/dev [--data idrisi:lmr/dev ...] [--json] [--result PATH]

The tagger (:mod:`geocode.dictionary_tagger`) marks the longest runs of words that are names of the
gazetteer; its spans go through :func:`lmr.evaluation.score`, the scorer of ``lmr-trainer evaluate`` and
``bench.quality``, so its exact and overlap P/R/F1 stand beside a model's on the same posts. Figures are
given overall, per script when the posts mix Arabic and Latin (:func:`lmr.language.script_of`), and per
event. It needs no spaCy and no model: only the gazetteer index (built on first use).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

from geocode.build import IMPORTANT_POPULATION
from geocode.dictionary_tagger import MAX_WORDS, DictionaryTagger
from lmr.errors import LmrError
from lmr.evaluation import score
from lmr.language import script_of
from lmr.mentions import Mention
from lmr.readers import Example, read_examples
from lmr.results import RESULT_HELP, write_result

DEFAULT_DATA = ("idrisi:lmr/dev", "idrisi:ar/lmr/dev")
FIGURES = ("precision", "recall", "f1", "overlap_precision", "overlap_recall", "overlap_f1", "n_posts", "n_gold")
SYSTEM = "gazetteer dictionary tagger"


def _figures(examples: Sequence[Example], preds: Sequence[list[Mention]]) -> dict[str, Any]:
    res = score(examples, preds)
    return {k: res[k] for k in FIGURES}


def _groups(examples: Sequence[Example], key: Any) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for i, ex in enumerate(examples):
        out.setdefault(key(ex), []).append(i)
    return dict(sorted(out.items()))


def measure(examples: Sequence[Example], preds: Sequence[list[Mention]]) -> dict[str, Any]:
    """Exact and overlap P/R/F1 of ``preds`` overall, per script (when mixed) and per event."""

    def of(idx: list[int]) -> dict[str, Any]:
        return _figures([examples[i] for i in idx], [preds[i] for i in idx])

    scripts = _groups(examples, lambda ex: script_of(ex.text))
    events = _groups(examples, lambda ex: ex.event or ex.source)
    return {
        "all": _figures(examples, preds),
        "by_script": {s: of(idx) for s, idx in scripts.items()} if len(scripts) > 1 else {},
        "by_event": {e: of(idx) for e, idx in events.items()},
    }


def result_rows(figures: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows for ``--result`` (area ``recognition``): overall, then one per script, beside model rows."""
    base = {"encoder": "none (gazetteer)", "heldout_split": "none (no training)"}
    rows = [{"name": SYSTEM, **base, **figures["all"], "by_event": figures["by_event"]}]
    rows += [{"name": f"{SYSTEM}, {s} posts", **base, **f} for s, f in figures["by_script"].items()]
    return rows


def _line(name: str, f: dict[str, Any]) -> str:
    return (
        f"{name:<34} {f['precision']:>6.3f} {f['recall']:>6.3f} {f['f1']:>6.3f} {f['overlap_precision']:>6.3f} "
        f"{f['overlap_recall']:>6.3f} {f['overlap_f1']:>6.3f} {f['n_posts']:>6} {f['n_gold']:>6}"
    )


def report(figures: dict[str, Any], data: Sequence[str], seconds: float, names: int) -> str:
    head = f"{'':<34} {'P':>6} {'R':>6} {'F1':>6} {'ovP':>6} {'ovR':>6} {'ovF1':>6} {'posts':>6} {'gold':>6}"
    lines = [
        f"{SYSTEM} ({names:,} name keys; towns of {IMPORTANT_POPULATION:,}+ people, divisions, countries; "
        f"runs of up to {MAX_WORDS} words) on {', '.join(data)}: tagged in {seconds:.1f} s",
        "",
        head,
        _line("all posts", figures["all"]),
        *(_line(f"{s} posts", f) for s, f in figures["by_script"].items()),
        "",
        "by event",
        *(_line(e, f) for e, f in figures["by_event"].items()),
    ]
    return "\n".join(lines)


def _positive(raw: str) -> int:
    n = int(raw)
    if n < 1:
        raise argparse.ArgumentTypeError(f"{raw} is not a positive number of words")
    return n


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--data",
        action="extend",
        nargs="+",
        default=None,
        help=f"gold data, repeatable: files, globs or idrisi: references (default: {' '.join(DEFAULT_DATA)})",
    )
    ap.add_argument("--max-words", type=_positive, default=MAX_WORDS, help="longest run of words looked up")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    ap.add_argument("--result", metavar="PATH", help=RESULT_HELP)
    a = ap.parse_args(argv)
    data = a.data or list(DEFAULT_DATA)
    try:
        examples = read_examples(data)
        tagger = DictionaryTagger.from_gazetteer(max_words=a.max_words)
    except LmrError as exc:
        sys.exit(str(exc))
    t = time.perf_counter()
    preds = [tagger.tag(ex.text) for ex in examples]
    seconds = time.perf_counter() - t
    figures = measure(examples, preds)
    if a.result:
        write_result(
            a.result,
            area="recognition",
            title=f"{SYSTEM} (no model) on {' '.join(data)}",
            rows=result_rows(figures),
            notes=f"{len(examples):,} posts; exact-span figures from lmr.evaluation.score, as for models.",
        )
    if a.json:
        print(json.dumps({**figures, "seconds": round(seconds, 2), "name_keys": len(tagger.names)}))
        return
    print(report(figures, data, seconds, len(tagger.names)))


if __name__ == "__main__":
    main()
