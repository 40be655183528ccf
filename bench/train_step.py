"""Training step speed: GLiNER's own span head against the fused one (trainer/fused.py), side by side.

    python -m bench.train_step [--steps 30] [--block 5] [--batch-size 8] [--threads 0]
        [--encoder offline|e5|DIR] [--variants gliner fused fused-frozen fused-bf16 fused-frozen-bf16]

Copies of one fresh model (``--encoder``, default the offline MiniLM; the ``fresh`` preset's optimiser
settings) train on the same IDRISI training batches (length-grouped, as ``lmr-trainer run`` makes them),
in interleaved blocks of ``--block`` steps so that drift in the machine's speed affects all alike.
Variants: ``gliner`` (GLiNER's own span head), ``fused`` (the fused head), ``fused-frozen`` (the fused
head with the encoder's word embeddings frozen, ``--freeze-embeddings on``); a ``-bf16`` suffix runs the
variant's forward pass under bfloat16 autocast with float32 weights, as ``--precision bf16`` trains on a
CPU with native bf16 (AVX512-BF16 or AMX; elsewhere it is emulated, slow). Prints steps/s of each, the
speed-ups against the first variant, and the loss curves (dropout draws differ between copies, so the
curves agree in trend, not to the digit; ``tests/trainer/test_fused.py`` checks exactness with dropout
off).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import random
import time
from typing import Any

import torch

from bench.common import need_idrisi
from lmr.model.extractor import model_tokens
from lmr.readers import read_examples
from lmr.words import split_words
from trainer.data import to_gliner
from trainer.fused import fuse_training_head
from trainer.model import build_fresh, freeze_word_embeddings, resolve_encoder


def _batches(model: Any, n: int, size: int, seed: int) -> list[dict[str, Any]]:
    files = sorted(str(p) for p in (need_idrisi() / "lmr").glob("*/train.jsonl"))
    examples = read_examples(files)
    random.Random(seed).shuffle(examples)
    recs = []
    for ex in examples[: n * size * 4]:
        words = split_words(ex.text)
        rec = to_gliner(ex, words)
        rec["tokenized_text"] = model_tokens(words, True)
        rec["ner_labels"] = ["location"]
        recs.append(rec)
    # megabatches of 4 batches sorted by length, as the length-grouped sampler does
    out = []
    collate = model._create_data_collator()
    for m in range(n // 4 + 1):
        mega = sorted(recs[m * 4 * size : (m + 1) * 4 * size], key=lambda r: len(r["tokenized_text"]))
        out += [collate(mega[i : i + size]) for i in range(0, len(mega), size) if mega[i : i + size]]
    return out[:n]


def _optimizer(model: Any) -> Any:
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    enc = [p for n, p in params if "token_rep_layer" in n]
    rest = [p for n, p in params if "token_rep_layer" not in n]
    return torch.optim.AdamW([{"params": enc, "lr": 5e-5}, {"params": rest, "lr": 1e-4}], weight_decay=0.01)


VARIANTS = ["gliner", "fused", "fused-frozen", "fused-bf16", "fused-frozen-bf16"]


def _variant(plain: Any, name: str) -> tuple[Any, Any]:
    """A copy of ``plain`` set up as variant ``name``, and its optimiser."""
    model = copy.deepcopy(plain)
    if name != "gliner":
        fuse_training_head(model)
    if name.startswith("fused-frozen"):
        freeze_word_embeddings(model, "on")
    return model, _optimizer(model)


def _autocast(name: str) -> Any:
    """bfloat16 autocast for the ``-bf16`` variants (what the Trainer does with ``bf16=True`` on a CPU)."""
    return torch.autocast("cpu", dtype=torch.bfloat16) if name.endswith("-bf16") else contextlib.nullcontext()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--block", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--encoder", default="offline", help="offline (MiniLM), e5, or a Hugging Face encoder directory")
    ap.add_argument("--variants", nargs="+", default=["gliner", "fused"], choices=VARIANTS)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    plain = build_fresh(resolve_encoder(a.encoder), max_width=12)
    batches = _batches(plain, a.steps, a.batch_size, a.seed)
    runs = {name: _variant(plain, name) for name in a.variants}
    seconds = dict.fromkeys(runs, 0.0)
    losses: dict[str, list[float]] = {k: [] for k in runs}
    for model, _ in runs.values():
        model.train()
    for start in range(0, len(batches), a.block):
        for name, (model, opt) in runs.items():
            t0 = time.perf_counter()
            for b in batches[start : start + a.block]:
                with _autocast(name):
                    loss = model.model(**b).loss
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                opt.zero_grad()
                losses[name].append(round(float(loss), 2))
            seconds[name] += time.perf_counter() - t0
    n = len(batches)
    rate = {k: n / v for k, v in seconds.items()}
    print(
        json.dumps(
            {
                "steps": n,
                "batch_size": a.batch_size,
                "threads": torch.get_num_threads(),
                "steps_per_s": {k: round(v, 3) for k, v in rate.items()},
                "speedup": {k: round(v / rate[a.variants[0]], 2) for k, v in rate.items()},
                "loss": losses,
            }
        )
    )


if __name__ == "__main__":
    main()
