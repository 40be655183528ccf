"""The fused span head: GLiNER's ``markerV0`` span scores without per-span matrices (inference and training).

GLiNER scores span ``(i, i+w)`` for label ``c`` as ``(W2 · relu(W1 · relu([s_i; e_{i+w}]) + b1) + b2) · q_c``:
a 2D→4D→D MLP per span, then a dot product. Because the first layer is linear in ``[s_i; e_{i+w}]`` and the
last is followed only by a dot product, the same number is ``relu(A_i + B_{i+w}) · (W2ᵀ q_c) + b2 · q_c``
with per-word ``A = W1a · relu(s) + b1`` and ``B = W1b · relu(e)`` (:func:`span_scores`). Per span this
costs 4D additions and 4D multiply-adds per label instead of 12·D² multiply-adds: the span head, half of
the plain model's CPU time, almost vanishes. The result is exact up to float rounding.

Inference (:func:`fused_head`) runs the per-word projections (``A``, ``B`` and the start/end MLPs before
them) on the real words of a batch only, the start and end MLPs' first layers as one product; the int8
runtimes run these five layers with int8 weights too. Training (:mod:`trainer.fused`) reads the model's
own layers, with GLiNER's dropout on the same 4D hidden vector of each span.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from lmr.model.runtimes.base import frozen_linear


def fusion_problem(core: Any) -> str:
    """What keeps ``core`` (a GLiNER model's inner module) from the fused span head, or ``""`` when nothing does.

    The head reproduces GLiNER's uni-encoder span model with the plain ``markerV0`` span head (no
    context encoder beyond the identity); the answer completes "supports ...".
    """
    from gliner.modeling.base import UniEncoderSpanModel
    from gliner.modeling.context_encoders import IdentityContextEncoder
    from gliner.modeling.span_rep import SpanMarkerV0

    if type(core) is not UniEncoderSpanModel:
        return f"uni-encoder span GLiNER models, not {type(core).__name__}"
    marker = core.span_rep_layer.span_rep_layer
    ctx = getattr(core.span_rep_layer, "context_encoder", None)
    if type(marker) is not SpanMarkerV0 or (ctx is not None and type(ctx) is not IdentityContextEncoder):
        return f"the plain markerV0 span head, not {type(marker).__name__} with {type(ctx).__name__}"
    return ""


def fit_length(embedding: Any, mask: Any, target_len: int) -> tuple[Any, Any]:
    """``embedding`` (B, L, D) and ``mask`` (B, L) zero-padded or cut to ``target_len`` words.

    The number of words the span indices of a batch cover can differ from the pooled words' (GLiNER's
    own forward does the same step, in a private method).
    """
    import torch.nn.functional as F

    length = embedding.shape[1]
    if target_len == length:
        return embedding, mask
    if target_len > length:
        pad = target_len - length
        return F.pad(embedding, (0, 0, 0, pad)), F.pad(mask, (0, pad))
    return embedding[:, :target_len], mask[:, :target_len]


def span_scores(
    a: Any, e: Any, prompts: Any, w2: Any, b2: Any, max_width: int, hidden: Callable[[Any], Any] | None = None
) -> Any:
    """Scores ``(B, L, K, C)``: ``hidden(relu(A_i + B_{i+w})) · (W2ᵀ q_c) + b2 · q_c`` for every word ``i``,
    width ``w < max_width`` and prompt ``q_c``; ``a``, ``e`` (B, L, 4D) are the per-word projections,
    ``hidden`` (training's dropout) acts on each span's hidden vector. Spans past the end read zeros."""
    import torch

    v = prompts @ w2  # B, C, 4D
    c = prompts @ b2  # B, C
    length = a.shape[1]
    e = torch.nn.functional.pad(e, (0, 0, 0, max_width))
    spans = (torch.relu(a + e[:, w : w + length]) for w in range(max_width))
    if hidden is not None:
        spans = (hidden(h) for h in spans)
    scores = torch.stack([h @ v.transpose(1, 2) for h in spans], dim=2)
    return scores + c[:, None, None, :]


def fused_head(core: Any) -> Any:
    """The inference span head of ``core`` (checked with :func:`fusion_problem` by the caller)."""
    head: Any = _head_type()(core)
    return head


@functools.cache
def _head_type() -> Any:
    import torch
    from torch import nn

    class FusedSpanHead(nn.Module):
        """The span head on the real words of a batch; its five linear layers are what the int8 runtimes quantise."""

        INT8_LAYERS = ("first", "start_out", "end_out", "to_a", "to_b")

        def __init__(self, core: Any) -> None:
            super().__init__()
            marker = core.span_rep_layer.span_rep_layer
            self.max_width = int(marker.max_width)
            ps, pe = marker.project_start, marker.project_end
            # the first layers of the start and end projections read the same words: one product
            self.first = frozen_linear(torch.cat([ps[0].weight, pe[0].weight]), torch.cat([ps[0].bias, pe[0].bias]))
            self.split = int(ps[0].out_features)
            self.start_out = frozen_linear(ps[3].weight, ps[3].bias)
            self.end_out = frozen_linear(pe[3].weight, pe[3].bias)
            lin1, lin2 = marker.out_project[0], marker.out_project[3]
            d = lin1.weight.shape[1] // 2
            self.to_a = frozen_linear(lin1.weight[:, :d], lin1.bias)  # A = W1a relu(s) + b1
            self.to_b = frozen_linear(lin1.weight[:, d:], None)  # B = W1b relu(e)
            self.w2 = nn.Parameter(lin2.weight.detach().clone(), requires_grad=False)  # (D, 4D)
            self.b2 = nn.Parameter(lin2.bias.detach().clone(), requires_grad=False)
            self.prompt_rep_layer = core.prompt_rep_layer

        def forward(self, words: torch.Tensor, prompts: torch.Tensor, span_mask: torch.Tensor) -> torch.Tensor:
            q = self.prompt_rep_layer(prompts)  # B, C, D
            b, length = words.shape[0], words.shape[1]
            # per-word projections on the real words only (a word is real where its width-1 span is)
            keep = span_mask[..., 0].reshape(-1).nonzero().squeeze(1)
            f = torch.relu(self.first(words.reshape(b * length, -1)[keep]))
            a_real = self.to_a(torch.relu(self.start_out(f[:, : self.split])))
            e_real = self.to_b(torch.relu(self.end_out(f[:, self.split :])))
            a = a_real.new_zeros(b * length, a_real.shape[1])
            a[keep] = a_real
            e = e_real.new_zeros(b * length, e_real.shape[1])
            e[keep] = e_real
            a, e = a.view(b, length, -1), e.view(b, length, -1)
            scores = span_scores(a, e, q, self.w2, self.b2, self.max_width)
            return scores.masked_fill(~span_mask.bool()[..., None], -1e4)

    return FusedSpanHead
