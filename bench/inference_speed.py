"""Inference speed benchmark: posts/s and exact-span F1 for each runtime, side by side in one run.

    python -m bench.inference_speed --model registry/lmr-location [--batch-size 16] [--speed-posts 600] [--rounds 3]
        [--micro-batch 32]

``--micro-batch N`` times posts the way the worker sees them: arrival-order chunks of N posts, each
sorted by length inside (default 0: the whole window sorted at once).

Same model, same posts, same batch size for every variant; the variants are timed in interleaved
rounds (median of ``--rounds``) so that drift in the machine's speed affects all alike. Speed is
measured on IDRISI's unlabeled stream (``lmr/*/test_unlabeled.jsonl``), F1 on ``lmr/*/dev.jsonl``.
The baseline is plain GLiNER PyTorch inference (posts in arrival order, GLiNER's own forward pass). Variants:

* ``torch+bucket``: the same, posts sorted by length inside the benchmark window (less padding);
* ``fused``: bucketing + the fused span head, the padding-free BERT encoder and the unpacked word LSTM
  (exact; see lmr/model/runtimes.py);
* ``fused-bf16``: the same with bfloat16 copies of the encoder, LSTM and head;
* ``fused-bf16-padded``: ``fused-bf16`` with GLiNER's padded encoder and packed LSTM (what the
  padding-free parts gain);
* ``fused-int8``: + torch dynamic int8 encoder;
* ``onnx``: bucketing + fused head + ONNX Runtime encoder;
* ``onnx-int8``: + ONNX Runtime dynamic int8 encoder.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

import torch

from bench.common import need_idrisi, unlabeled_posts
from lmr.model.extractor import load_extractor
from lmr.readers import read_examples
from lmr.scoring import SpanScorer
from lmr.words import split_words

VARIANTS = [
    ("torch (baseline)", "torch", False),
    ("torch+bucket", "torch", True),
    ("fused", "fused", True),
    ("fused-bf16", "fused-bf16", True),
    ("fused-bf16-padded", "fused-bf16", True),
    ("fused-int8", "fused-int8", True),
    ("onnx", "onnx", True),
    ("onnx-int8", "onnx-int8", True),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--speed-posts", type=int, default=600)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds; the median counts")
    ap.add_argument("--variants", nargs="*", default=None, help="subset of: " + " ".join(v[0] for v in VARIANTS))
    ap.add_argument(
        "--micro-batch", type=int, default=0, help="time arrival-order chunks of N posts (the worker's way)"
    )
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    idr = need_idrisi()
    stream = [str(p["text"]) for p in unlabeled_posts(a.speed_posts)]
    stream_words = [split_words(t) for t in stream]
    gold = read_examples([str(idr / "lmr" / "*" / "dev.jsonl")])
    gold_texts = [e.text for e in gold]
    gold_words = [split_words(t) for t in gold_texts]
    chosen = [
        v
        for v in VARIANTS
        if not a.variants or v[0] in a.variants or (v[1] in a.variants and not v[0].endswith("-padded"))
    ]
    loaded = []
    for label, runtime, bucket in chosen:
        ex = load_extractor(a.model, runtime=runtime, threads=a.threads)
        if label.endswith("-padded"):
            from lmr.model.runtimes import FastEngine

            ex.engine = FastEngine(ex.model, runtime, threads=a.threads, padding_free=False)
        ex.predict_words(stream_words[:64], stream[:64], batch_size=a.batch_size)  # warm-up
        loaded.append((label, ex, bucket))
    # Interleaved rounds (every variant once per round, order rotated) so that drift in the
    # machine's speed hits all variants alike; the median round counts.
    times: dict[str, list[float]] = {label: [] for label, _, _ in loaded}
    for r in range(a.rounds):
        for label, ex, bucket in loaded[r % len(loaded) :] + loaded[: r % len(loaded)]:
            step = a.micro_batch or len(stream)
            t = time.perf_counter()
            for i in range(0, len(stream), step):
                ex.predict_words(
                    stream_words[i : i + step], stream[i : i + step], batch_size=a.batch_size, sort_by_length=bucket
                )
            times[label].append(time.perf_counter() - t)
        print(f"round {r + 1}: " + ", ".join(f"{k} {len(stream) / v[-1]:.1f}" for k, v in times.items()), flush=True)
    rows: list[dict[str, Any]] = []
    for label, ex, bucket in loaded:
        preds = ex.predict_words(gold_words, gold_texts, batch_size=a.batch_size, sort_by_length=bucket)
        sc = SpanScorer()
        for e, p in zip(gold, preds, strict=True):
            sc.add(e.text, e.spans, p)
        r = sc.result()
        rows.append(
            {
                "variant": label,
                "posts_per_s": round(len(stream) / statistics.median(times[label]), 1),
                "f1": r["f1"],
                "precision": r["precision"],
                "recall": r["recall"],
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    base = rows[0]
    for r in rows:
        r["speedup"] = round(r["posts_per_s"] / base["posts_per_s"], 2)
        r["f1_delta"] = round(r["f1"] - base["f1"], 4)
    if a.json:
        print(
            json.dumps({"model": a.model, "batch_size": a.batch_size, "threads": torch.get_num_threads(), "rows": rows})
        )
        return
    print(
        f"\nmodel {a.model}, batch {a.batch_size}, torch threads {torch.get_num_threads()}, "
        f"{len(stream)} unlabeled posts for speed, {len(gold)} dev posts for F1"
    )
    print(f"{'variant':<18} {'posts/s':>8} {'speed-up':>9} {'F1':>7} {'ΔF1':>8}")
    for r in rows:
        print(f"{r['variant']:<18} {r['posts_per_s']:>8} {r['speedup']:>8}x {r['f1']:>7.4f} {r['f1_delta']:>+8.4f}")


if __name__ == "__main__":
    main()
