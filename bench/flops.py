"""How far from the machine's limit a runtime runs: useful GFLOP/s against the CPU's measured peak.

*Useful* floating-point work is what the fused runtime must compute for a post, counted on its real
sub-word tokens (padding is waste, so a padded runtime scores lower): the BERT encoder's linear
layers and attention, the word LSTM, the span head's per-word projections and its fused span
scores. The peak is measured here, per dtype, with one large matrix product on the same threads:
float32 and bfloat16 ``torch.mm``, int8 through the dynamically quantised linear layer the int8
runtime uses. Achieved / peak tells how much of the machine a runtime uses.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

PEAK_SIZE = 1536  # square matrices: large enough to be compute-bound, small enough for ~1 s

DTYPE_OF_RUNTIME = {"fused-int8": "int8", "fused-int8-mixed": "int8", "onnx-int8": "int8", "fused-bf16": "bf16"}


def runtime_dtype(runtime: str) -> str:
    """The dtype of a runtime's encoder arithmetic (float32 unless named)."""
    return DTYPE_OF_RUNTIME.get(runtime, "fp32")


def measure_peak(dtype: str, seconds: float = 0.6) -> float:
    """GFLOP/s of a large matrix product in ``dtype`` (fp32, bf16 or int8) on torch's threads."""
    import torch

    n = PEAK_SIZE
    a = torch.randn(n, n)
    if dtype == "int8":
        from lmr.model.runtimes.cpu import Int8Kernel
        from lmr.model.runtimes.int8 import int8_linear

        q = int8_linear(torch.nn.Linear(n, n), Int8Kernel.for_cpu())  # the kernel the int8 runtimes use here

        def op() -> Any:
            return q(a)
    else:
        x = a.to(torch.bfloat16) if dtype == "bf16" else a

        def op() -> Any:
            return x @ x

    with torch.inference_mode():
        op()
        reps, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            op()
            reps += 1
        return 2 * n**3 * reps / (time.perf_counter() - t0) / 1e9


def useful_flops(extractor: Any, texts: Sequence[str]) -> float:
    """Floating-point operations the fused runtime needs for ``texts`` (see the module docstring)."""
    from lmr.model.extractor import model_tokens
    from lmr.words import split_words

    core = extractor.model.model
    bert = core.token_rep_layer.bert_layer.model
    cfg = bert.config
    d, ffn, layers = int(cfg.hidden_size), int(cfg.intermediate_size), int(cfg.num_hidden_layers)
    tok = extractor.model.data_processor.transformer_tokenizer
    labels = len(extractor.spec.labels)
    prompt = 2 * labels + 1 + 2  # <<ENT>> label ... <<SEP>>, [CLS], [SEP]
    words = [model_tokens(split_words(t), extractor.spec.case_markers) for t in texts]
    words = [w for w in words if w]
    if not words:
        return 0.0
    enc = tok(words, is_split_into_words=True, add_special_tokens=False)["input_ids"]
    marker = core.span_rep_layer.span_rep_layer
    head_w = sum(p.numel() for m in (marker.project_start, marker.project_end) for p in m.parameters() if p.dim() > 1)
    width4 = marker.out_project[0].weight.shape[0]  # 4D
    lstm = getattr(getattr(core, "rnn", None), "lstm", None)
    total = 0.0
    for ws, ids in zip(words, enc, strict=True):
        t, w = len(ids) + prompt, len(ws)
        total += layers * (2 * t * (4 * d * d + 2 * d * ffn) + 4 * t * t * d)  # linear layers + attention
        if lstm is not None:
            h = lstm.hidden_size
            total += 2 * 2 * w * 4 * h * (lstm.input_size + h)  # two directions, four gates
        total += 2 * w * (head_w + 2 * d * width4)  # per-word projections, A and B
        total += 2 * w * int(marker.max_width) * width4 * (1 + labels)  # relu(A + B) . v per span and label
    return total
