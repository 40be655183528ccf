"""End-to-end levers, side by side: what each choice between the recogniser and the map is worth.

    python -m bench.endtoend_levers --model REG/NAME --data idrisi:lmd/<event>/dev ... [--result PATH]
    # in-domain posts of a held-out model: IDRISI-D posts of the training events in IDRISI's recognition dev
    python -m bench.endtoend_levers --model REG/NAME --data idrisi:lmd/<event>/train idrisi:lmd/<event>/dev ... \
        --posts-in idrisi:lmr/dev

The model reads the posts once (every span scoring 0.1 or more is kept); each variant then resolves the
spans with the offline geocoder and scores them end to end (:mod:`geocode.endtoend`), so the rows differ
only by the lever:

* **shared prior**: one stream-prior key for every post (what a stream without an ``event`` field gets);
* **event prior**: the stream prior keyed by the post's event (the worker, for posts with ``event``);
* **no prior**: the stream prior off;
* **placed ≥ t**: event prior, and spans scoring from ``t`` up to the model's threshold emitted only when
  the geocoder places them well (:mod:`geocode.placed`), one row per ``--placed`` value;
* **gold spans**: the gold spans themselves resolved (event prior): resolution alone, the ceiling of
  recognition's contribution.

Pick a setting on in-domain dev events, then read the same rows on held-out events: never choose there.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any

from geocode.endtoend import resolve_outputs, score_outputs
from geocode.endtoend_gold import read_gold
from geocode.resolver import build_resolver
from lmr.evaluation import ScoredPosts, evaluate_extractor
from lmr.model.extractor import load_extractor
from lmr.readers import read_examples
from lmr.results import RESULT_HELP, write_result

PLACED_GRID = (0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4)


def _row(name: str, e2e: dict[str, Any], recognition_f1: float | None) -> dict[str, Any]:
    row: dict[str, Any] = {
        "name": name,
        "e2e_precision": e2e["precision"],
        "e2e_recall": e2e["recall"],
        "e2e_f1": e2e["f1"],
        "e2e_overlap_f1": e2e["overlap_f1"],
        "n_posts": e2e["n_posts"],
        "by_event": {k: v["f1"] for k, v in e2e["by_event"].items()},
        "by_type": {k: v["recall"] for k, v in e2e["by_type"].items()},
        "misses": {k: v["n"] for k, v in e2e["misses"].items()},
        "wrong": {k: v["n"] for k, v in e2e["wrong"].items()},
    }
    if recognition_f1 is not None:
        row["f1"] = recognition_f1
    return row


def _detail_rows(name: str, e2e: dict[str, Any]) -> list[dict[str, Any]]:
    """Per-event P/R/F1 and per-gold-type recall of one variant, as rows of their own."""
    rows: list[dict[str, Any]] = [
        {"name": f"{name}: {event}", "e2e_precision": v["precision"], "e2e_recall": v["recall"], "e2e_f1": v["f1"]}
        for event, v in e2e["by_event"].items()
    ]
    rows += [
        {"name": f"{name}: type {t}", "e2e_recall": v["recall"], "n_gold": v["n"]} for t, v in e2e["by_type"].items()
    ]
    return rows


def run(
    model: str, data: Sequence[str], placed: Sequence[float], runtime: str = "auto", posts_in: Sequence[str] = ()
) -> dict[str, Any]:
    """Every variant's end-to-end figures on ``data`` (IDRISI-D files), with the model read once; with
    ``posts_in``, only the posts whose id is in those files."""
    ex = load_extractor(model, runtime=runtime)
    examples = read_examples(list(data))
    gold = read_gold(list(data))
    if gold is None:
        raise SystemExit("no gold mention carries a point: pass IDRISI-D files (idrisi:lmd/...)")
    if posts_in:
        ids = {e.id for e in read_examples(list(posts_in))}
        examples = [e for e in examples if e.id in ids]
        gold = [g for g in gold if g.id in ids]
    thr = ex.spec.threshold
    candidates: ScoredPosts = []
    res, _ = evaluate_extractor(ex, examples, threshold=thr, candidates=candidates, low=min(placed, default=thr))
    spans = [ms for _, ms in candidates]

    def above(t: float) -> list[list[Any]]:
        return [[m for m in ms if getattr(m, "score", 1.0) >= t] for ms in spans]

    def score(low: float, *, by_event: bool = True, prior: bool = True) -> Any:
        """Spans from ``low`` up, those under the model's threshold kept only when placed well."""
        resolver = build_resolver("offline", prior=prior)
        outs = resolve_outputs(resolver, gold, above(low), threshold=thr, by_event=by_event)
        return score_outputs(gold, outs)[0]

    rec = float(res["f1"])
    before, after = score(thr, by_event=False), score(thr)
    rows = [
        _row("shared prior", before, rec),
        _row("event prior", after, rec),
        _row("no prior", score(thr, prior=False), rec),
    ]
    rows += [_row(f"placed >= {t:g}", score(t), None) for t in placed if t < thr]
    oracle = build_resolver("offline", prior=True)
    gold_spans = [e.spans for e in examples]
    rows.append(_row("gold spans", score_outputs(gold, resolve_outputs(oracle, gold, gold_spans))[0], 1.0))
    rows += _detail_rows("shared prior", before) + _detail_rows("event prior", after)
    return {"model": ex.model_id, "runtime": ex.runtime, "threshold": thr, "recognition": res, "rows": rows}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", nargs="+", required=True, help="IDRISI-D files or idrisi:lmd/... references")
    ap.add_argument("--placed", type=float, nargs="*", default=list(PLACED_GRID), help="placed thresholds to try")
    ap.add_argument("--runtime", default="auto")
    ap.add_argument(
        "--posts-in", nargs="*", default=[], help="keep only posts whose id is in these files (e.g. idrisi:lmr/dev)"
    )
    ap.add_argument("--title", default="", help="result title (default: model and data)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--result", metavar="PATH", help=RESULT_HELP)
    a = ap.parse_args(argv)
    out = run(a.model, a.data, a.placed, a.runtime, a.posts_in)
    if a.json:
        print(json.dumps(out))
    else:
        print(f"model {out['model']} ({out['runtime']}), threshold {out['threshold']}")
        for r in out["rows"]:
            if "by_event" not in r:
                continue
            events = "  ".join(f"{k[:12]} {v:.3f}" for k, v in r["by_event"].items())
            print(
                f"{r['name']:>16}  P {r['e2e_precision']:.3f}  R {r['e2e_recall']:.3f}  F1 {r['e2e_f1']:.3f}  {events}"
            )
    if a.result:
        title = a.title or f"end-to-end levers: {out['model']} on {len(a.data)} IDRISI-D files"
        write_result(a.result, area="end_to_end", title=title, rows=out["rows"])


if __name__ == "__main__":
    main()
