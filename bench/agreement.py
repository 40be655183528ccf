"""Does ``auto``'s agreement rule predict F1? Calibration-set agreement beside the F1 change on gold.

    python -m bench.agreement --model registry/lmr-location [--model registry/other ...]
        [--variants fused-int8 fused-int8-mixed fused-int8-v1 onnx-int8] [--batch-size 32]

For each model and each fast candidate: its span F1 against the exact runtime (``fused``) on the
model's own calibration set (``calibration.json``, what ``auto`` checks at load), the spans it lost and
added there, whether the agreement rule (:func:`lmr.model.autotune.accepts`) accepts it, and its F1
change against gold on ``lmr/*/dev.jsonl`` (what the rule stands in for; bar: >= -0.003). The rule
is judged right where it accepts exactly the candidates within the bar.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import torch

from bench.common import cpu_name, need_idrisi
from bench.inference_speed import load_variant
from lmr.evaluation import score
from lmr.model import calibration
from lmr.model.autotune import accepts, agreement, differences
from lmr.model.registry import resolve
from lmr.readers import read_examples
from lmr.words import split_words

F1_BAR = -0.003  # the largest F1 loss a fast runtime may cost (the bar)
RUNTIMES = {
    "fused-int8": "fused-int8",
    "fused-int8-mixed": "fused-int8-mixed",
    "fused-int8-v1": "fused-int8",
    "onnx-int8": "onnx-int8",
}

Spans = list[list[tuple[int, int]]]


def spans_and_f1(ex: Any, texts: list[str], gold: list[Any], batch_size: int) -> tuple[Spans, Spans, float]:
    """Spans on the calibration posts, spans on the gold posts, and F1 against gold."""
    words = [split_words(t) for t in texts]
    cal = [[(m.start, m.end) for m in ms] for ms in ex.predict_words(words, texts, batch_size=batch_size)]
    gold_texts = [e.text for e in gold]
    preds = ex.predict_words([split_words(t) for t in gold_texts], gold_texts, batch_size=batch_size)
    return cal, [[(m.start, m.end) for m in ms] for ms in preds], float(score(gold, preds)["f1"])


def rows_for(model: str, variants: list[str], gold: list[Any], batch_size: int) -> list[dict[str, Any]]:
    cal = calibration.load(resolve(model).path)
    if cal is None:
        raise SystemExit(f"{model} has no calibration set: write one with lmr-trainer calibrate MODEL POSTS.")
    exact, _ = load_variant(model, "fused", "fused", 0)
    _, _, exact_f1 = spans_and_f1(exact, cal.texts, gold, batch_size)
    n = sum(len(s) for s in cal.spans)
    rows = []
    for label in variants:
        ex, _ = load_variant(model, label, RUNTIMES[label], 0)
        got, _, f1 = spans_and_f1(ex, cal.texts, gold, batch_size)
        ag = round(agreement(cal.spans, got), 4)
        lost, added = differences(cal.spans, got)
        ok = accepts(ag, lost, added, n)
        delta = round(f1 - exact_f1, 4)
        row = {"model": model, "variant": label, "calibration_f1": ag, "lost": lost, "added": added}
        row |= {"spans": n, "accepted": ok, "dev_f1": f1, "dev_delta_f1": delta, "right": ok == (delta >= F1_BAR)}
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", required=True, help="a model (registry path); repeat for more")
    ap.add_argument("--variants", nargs="*", default=list(RUNTIMES), choices=list(RUNTIMES))
    ap.add_argument("--batch-size", type=int, default=32)
    a = ap.parse_args()
    gold = read_examples([str(need_idrisi() / "lmr" / "*" / "dev.jsonl")])
    rows = [r for m in a.model for r in rows_for(m, a.variants, gold, a.batch_size)]
    print(f"\nCPU: {cpu_name()}, torch threads {torch.get_num_threads()}, {len(gold)} dev posts")
    print(f"{'model':<28} {'variant':<14} {'cal F1':>7} {'lost/added':>11} {'rule':>7} {'dev ΔF1':>8} {'right':>6}")
    for r in rows:
        rule = "accept" if r["accepted"] else "reject"
        la = f"{r['lost']}/{r['added']}"
        print(
            f"{r['model'][-28:]:<28} {r['variant']:<14} {r['calibration_f1']:>7.4f} {la:>11} {rule:>7} "
            f"{r['dev_delta_f1']:>+8.4f} {'yes' if r['right'] else 'NO':>6}"
        )
    print(f"rule right on {sum(r['right'] for r in rows)} of {len(rows)} (bar: ΔF1 >= {F1_BAR})")


if __name__ == "__main__":
    main()
