"""Where inference time goes, per post, for plain GLiNER on this machine.

    python -m bench.profile_inference --model registry/lmr-location [--posts 800] [--batch-size 16]

Stages, each timed over the same batches of IDRISI's unlabeled stream: word splitting, collation
(sub-word tokenisation, span enumeration), the transformer encoder, word pooling + LSTM, the plain
span head (GLiNER's SpanMarkerV0 MLP per span + label scoring), the fused span head (lmr/model/runtimes/span_head.py),
and decoding. Padding waste is the share of padded sub-word positions, unsorted vs length-sorted.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from typing import Any

import torch

from bench.common import unlabeled_posts
from lmr.model.extractor import _batches, load_extractor, model_tokens
from lmr.model.runtimes.span_head import fit_length, fused_head
from lmr.words import split_words


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--posts", type=int, default=800)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    from gliner.modeling.utils import extract_prompt_features_and_word_embeddings

    ex = load_extractor(a.model, runtime="torch")
    model, core = ex.model, ex.model.model
    fused = fused_head(core).eval()
    texts = [str(p["text"]) for p in unlabeled_posts(a.posts)]
    t: dict[str, float] = defaultdict(float)
    pad: dict[str, list[int]] = {"unsorted": [0, 0], "sorted": [0, 0]}

    s = time.perf_counter()
    words = [split_words(x) for x in texts]
    t["split words"] += time.perf_counter() - s
    order = list(range(len(texts)))
    lengths = [len(w) for w in words]
    for name, ordr in (("unsorted", order), ("sorted", sorted(order, key=lambda i: lengths[i]))):
        for idx in _batches(ordr, lengths, a.batch_size, 0):
            inp = [{"tokenized_text": model_tokens(words[i], ex.spec.case_markers), "ner": None} for i in idx]
            b = model.collate_batch(inp, ex.spec.labels, ex._collator)
            m = b["attention_mask"]
            pad[name][0] += int(m.numel() - m.sum())
            pad[name][1] += int(m.numel())

    with torch.inference_mode():
        for idx in _batches(sorted(order, key=lambda i: lengths[i]), lengths, a.batch_size, 0):
            s = time.perf_counter()
            inp = [{"tokenized_text": model_tokens(words[i], ex.spec.case_markers), "ner": None} for i in idx]
            b = model.collate_batch(inp, ex.spec.labels, ex._collator)
            t["collate (tokenise, spans)"] += time.perf_counter() - s
            s = time.perf_counter()
            tok = core.token_rep_layer(b["input_ids"], b["attention_mask"])
            t["encoder"] += time.perf_counter() - s
            s = time.perf_counter()
            prompts, _pm, w, mask = extract_prompt_features_and_word_embeddings(
                core.config.class_token_index,
                tok,
                b["input_ids"],
                b["attention_mask"],
                b["text_lengths"],
                b["words_mask"],
                core.config.embed_ent_token,
                subtoken_pooling=getattr(core.config, "subtoken_pooling", "first"),
            )
            if hasattr(core, "rnn"):
                w = core.rnn(w, mask)
            target_w = b["span_idx"].size(1) // core.config.max_width
            w, mask = fit_length(w, mask, target_w)
            t["word pooling + LSTM"] += time.perf_counter() - s
            s = time.perf_counter()
            span_idx = b["span_idx"] * b["span_mask"].unsqueeze(-1)
            rep = core.span_rep_layer(w, span_idx)
            q = core.prompt_rep_layer(prompts)
            scores = torch.einsum("BLKD,BCD->BLKC", rep, q)
            t["span head (plain GLiNER)"] += time.perf_counter() - s
            s = time.perf_counter()
            fused(w, prompts, b["span_mask"].view(w.shape[0], target_w, -1))
            t["span head (fused, lmr)"] += time.perf_counter() - s
            s = time.perf_counter()

            class Out:
                span_idx = b["span_idx"]
                span_mask = b["span_mask"]
                span_logits = None

                def __init__(self, scores: Any) -> None:
                    self.scores = scores

                def __getitem__(self, i: int) -> Any:
                    return self.scores

            model.decode_batch(Out(scores), b, threshold=ex.spec.threshold, flat_ner=True)
            t["decode"] += time.perf_counter() - s

    plain = sum(v for k, v in t.items() if "fused" not in k)
    rows = {
        k: {"ms_per_post": round(1000 * v / len(texts), 3), "share_of_plain": round(v / plain, 3)} for k, v in t.items()
    }
    waste = {k: round(p / n, 3) for k, (p, n) in pad.items()}
    if a.json:
        print(json.dumps({"posts": len(texts), "batch_size": a.batch_size, "stages": rows, "padding_waste": waste}))
        return
    print(f"{len(texts)} posts, batch {a.batch_size}, torch threads {torch.get_num_threads()}")
    print(f"{'stage':<30} {'ms/post':>9} {'share of plain':>15}")
    for k, v in rows.items():
        share = "" if "fused" in k else f"{100 * v['share_of_plain']:.1f}%"
        print(f"{k:<30} {v['ms_per_post']:>9.3f} {share:>15}")
    print(f"padding waste (padded sub-word positions): unsorted {waste['unsorted']:.1%}, sorted {waste['sorted']:.1%}")


if __name__ == "__main__":
    main()
