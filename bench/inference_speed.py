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
  (exact; see lmr/model/runtimes/);
* ``fused-bf16``: the same with bfloat16 copies of the encoder, LSTM and head;
* ``fused-bf16-padded``: ``fused-bf16`` with GLiNER's padded encoder and packed LSTM (what the
  padding-free parts gain);
* ``fused-int8``: the int8 runtime: padding-free BERT with per-channel int8 weights in every linear layer;
* ``fused-int8-mixed``: the same with the GELU-fed feed-forward layers in float32 (``auto``'s fallback);
* ``fused-int8-fbgemm``: ``fused-int8`` on fbgemm's kernel whatever the CPU (on AMX CPUs the int8
  runtimes use oneDNN's AMX kernel: :class:`lmr.model.runtimes.cpu.Int8Kernel`);
* ``fused-int8-7bit``: ``fused-int8`` as before engine revision 5 (fbgemm, 7-bit activations on every CPU);
* ``fused-int8-v1``: the int8 runtime before (per-tensor dynamic int8 of every linear layer, padded encoder);
* ``fused-int8-gliner-collator``: ``fused-int8`` with GLiNER's own collator and length sort (what
  :mod:`lmr.model.collate` gains);
* ``fused-no-prior``: ``fused`` with the model's span prior left out (what rescoring candidate spans costs
  and brings: :mod:`lmr.model.span_prior`; the same as ``fused`` for a model without one);
* ``onnx``: bucketing + fused head + ONNX Runtime encoder;
* ``onnx-int8``: + ONNX Runtime dynamic int8 encoder;
* ``auto``: what ``--runtime auto`` picks here, measured afresh (its row names the runtime; its start-up
  seconds are printed); ``auto-no-bf16``: the same with the bf16 candidate left out (CPUs without bf16).

Beside posts/s each row gives the useful GFLOP/s it achieved and that as a share of the CPU's
peak for the runtime's dtype, measured in the same run (:mod:`bench.flops`).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

import torch

from bench.common import cpu_name, need_idrisi, unlabeled_posts
from bench.flops import measure_peak, runtime_dtype, useful_flops
from lmr.model.extractor import load_extractor
from lmr.readers import read_examples
from lmr.results import RESULT_HELP, write_result
from lmr.scoring import SpanScorer
from lmr.words import split_words

VARIANTS = [
    ("torch (baseline)", "torch", False),
    ("torch+bucket", "torch", True),
    ("fused", "fused", True),
    ("fused-no-prior", "fused", True),
    ("fused-bf16", "fused-bf16", True),
    ("fused-bf16-padded", "fused-bf16", True),
    ("fused-int8", "fused-int8", True),
    ("fused-int8-mixed", "fused-int8-mixed", True),
    ("fused-int8-fbgemm", "fused-int8", True),
    ("fused-int8-7bit", "fused-int8", True),
    ("fused-int8-v1", "fused-int8", True),
    ("fused-int8-gliner-collator", "fused-int8", True),
    ("onnx", "onnx", True),
    ("onnx-int8", "onnx-int8", True),
    ("auto", "auto", True),
    ("auto-no-bf16", "auto", True),
]


def load_variant(model: str, label: str, runtime: str, threads: int) -> tuple[Any, float]:
    """The extractor of one variant and its load time in seconds (for ``auto``: measured afresh, no cache)."""
    from lmr.model.autotune import AutoOptions
    from lmr.model.runtimes import catalog
    from lmr.model.runtimes.base import RuntimeOptions
    from lmr.model.runtimes.cpu import Int8Kernel

    auto = None
    if runtime == "auto":
        opts = AutoOptions.from_env()
        exclude = opts.exclude + (("fused-bf16",) if label == "auto-no-bf16" else ())
        auto = AutoOptions(probe=True, exclude=exclude, budget_s=opts.budget_s, use_cache=False)
    t = time.perf_counter()
    ex = load_extractor(model, runtime=runtime, threads=threads, auto=auto)
    seconds = time.perf_counter() - t
    if label.endswith("-padded"):
        ex.engine = catalog.build(runtime, ex.model, RuntimeOptions(threads=threads, padding_free=False))
    elif label in ("fused-int8-fbgemm", "fused-int8-7bit"):
        here = Int8Kernel.for_cpu()
        kernel = Int8Kernel("fbgemm", reduce_range=here.reduce_range if label.endswith("-fbgemm") else True)
        ex.engine = catalog.build(runtime, ex.model, RuntimeOptions(threads=threads, int8_kernel=kernel))
    elif label.endswith("-no-prior"):
        ex.prior = None
    elif label.endswith("-gliner-collator"):
        ex._fast_collator = None
    elif label == "fused-int8-v1":
        ex.engine = catalog.build("fused", ex.model, RuntimeOptions(threads=threads, padding_free=False))
        ex.engine.encoder = torch.ao.quantization.quantize_dynamic(
            ex.engine.encoder, {torch.nn.Linear}, dtype=torch.qint8
        )
    return ex, seconds


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
    ap.add_argument("--gold-posts", type=int, default=0, help="score F1 on the first N dev posts only (0 = all)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--result", metavar="PATH", help=RESULT_HELP)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    idr = need_idrisi()
    stream = [str(p["text"]) for p in unlabeled_posts(a.speed_posts)]
    stream_words = [split_words(t) for t in stream]
    gold = read_examples([str(idr / "lmr" / "*" / "dev.jsonl")])
    gold = gold[: a.gold_posts] if a.gold_posts else gold
    gold_texts = [e.text for e in gold]
    gold_words = [split_words(t) for t in gold_texts]
    chosen = [
        v
        for v in VARIANTS
        if not a.variants or v[0] in a.variants or (v[1] in a.variants and not v[0].endswith("-padded"))
    ]
    loaded = []
    for label, runtime, bucket in chosen:
        ex, load_s = load_variant(a.model, label, runtime, a.threads)
        if ex.runtime_choice is not None:
            print(f"{label}: {ex.runtime_choice.summary()}; load {load_s:.1f} s in all", flush=True)
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
    flops = useful_flops(loaded[0][1], stream)
    peaks = {d: measure_peak(d) for d in sorted({runtime_dtype(ex.runtime) for _, ex, _ in loaded})}
    rows: list[dict[str, Any]] = []
    scored: dict[str, dict[str, Any]] = {}  # F1 by runtime: auto's equals that of the runtime it picked
    for label, ex, bucket in loaded:
        same = label.startswith("auto") or label == ex.runtime
        score = scored.get(ex.runtime) if same else None
        if score is None:
            preds = ex.predict_words(gold_words, gold_texts, batch_size=a.batch_size, sort_by_length=bucket)
            sc = SpanScorer()
            for e, p in zip(gold, preds, strict=True):
                sc.add(e.text, e.spans, p)
            score = sc.result()
            if same:
                scored[ex.runtime] = score
        seconds = statistics.median(times[label])
        dtype = runtime_dtype(ex.runtime)
        rows.append(
            {
                "variant": label,
                "runtime": ex.runtime,
                "posts_per_s": round(len(stream) / seconds, 1),
                "gflops": round(flops / seconds / 1e9, 2),
                "dtype": dtype,
                "peak_gflops": round(peaks[dtype], 1),
                "of_peak": round(flops / seconds / 1e9 / peaks[dtype], 3),
                "f1": score["f1"],
                "precision": score["precision"],
                "recall": score["recall"],
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    base = rows[0]
    for row in rows:
        row["speedup"] = round(row["posts_per_s"] / base["posts_per_s"], 2)
        row["f1_delta"] = round(row["f1"] - base["f1"], 4)
    if a.result:
        write_result(
            a.result,
            area="inference",
            title=f"runtimes of {a.model}, batches of {a.batch_size}",
            rows=[
                {
                    "name": r["variant"],
                    "runtime": r["runtime"],
                    "posts_per_s": r["posts_per_s"],
                    "x_torch": r["speedup"],
                    "f1": round(r["f1"], 4),
                    "delta_f1": r["f1_delta"],
                }
                for r in rows
            ],
        )
    if a.json:
        print(
            json.dumps(
                {
                    "model": a.model,
                    "cpu": cpu_name(),
                    "batch_size": a.batch_size,
                    "threads": torch.get_num_threads(),
                    "peak_gflops": peaks,
                    "rows": rows,
                }
            )
        )
        return
    print(
        f"\nmodel {a.model}, batch {a.batch_size}, torch threads {torch.get_num_threads()}, "
        f"{len(stream)} unlabeled posts for speed, {len(gold)} dev posts for F1"
    )
    print(f"CPU: {cpu_name()}; peak GFLOP/s measured here: " + ", ".join(f"{d} {v:.0f}" for d, v in peaks.items()))
    print(f"{'variant':<18} {'runtime':<11} {'posts/s':>8} {'speed-up':>9} {'F1':>7} {'ΔF1':>8}", end="")
    print(f" {'GFLOP/s':>8} {'of peak':>8}")
    for row in rows:
        print(
            f"{row['variant']:<18} {row['runtime']:<11} {row['posts_per_s']:>8} {row['speedup']:>8}x {row['f1']:>7.4f} "
            f"{row['f1_delta']:>+8.4f} {row['gflops']:>8} {100 * row['of_peak']:>7.1f}%"
        )


if __name__ == "__main__":
    main()
