"""A fused span head for the training forward and backward pass (exact, same parameters).

GLiNER's ``markerV0`` head scores span ``(i, i+w)`` for label ``c`` as
``(W2 · drop(relu(W1 · relu([s_i; e_{i+w}]) + b1)) + b2) · q_c``, materialising a ``2D`` input and a
``D`` output per span; the fused head computes ``drop(relu(A_i + B_{i+w})) · (W2ᵀ q_c) + b2 · q_c`` from
per-word projections instead (the algebra, shared with inference: :mod:`lmr.model.runtimes.span_head`).
Training reads the very same ``nn.Linear`` parameters, so gradients reach them unchanged and the saved
model is the plain GLiNER model: nothing about the published-model contract changes.

Dropout acts on the same ``4D`` hidden vector of each span as in GLiNER, so training draws from the same
distribution (the random masks themselves differ). Spans that run past a post's
end score -1e4 (GLiNER scores a ``(0, 0)`` stand-in there); the loss masks both out.
"""

from __future__ import annotations

import types
from typing import Any

from lmr.errors import ModelError
from lmr.model.runtimes.span_head import fit_length, fusion_problem, span_scores


def fused_scores(core: Any, words: Any, prompts: Any) -> Any:
    """Span scores ``(B, L, K, C)`` of GLiNER's markerV0 head, computed without per-span matrices."""
    import torch

    marker = core.span_rep_layer.span_rep_layer
    lin1, drop, lin2 = marker.out_project[0], marker.out_project[2], marker.out_project[3]
    d = words.shape[-1]
    start = torch.relu(marker.project_start(words))
    end = torch.relu(marker.project_end(words))
    a = torch.nn.functional.linear(start, lin1.weight[:, :d], lin1.bias)  # B, L, 4D
    e = torch.nn.functional.linear(end, lin1.weight[:, d:])  # B, L, 4D
    return span_scores(a, e, prompts, lin2.weight, lin2.bias, int(marker.max_width), hidden=drop)


def _forward(
    self: Any,
    input_ids: Any = None,
    attention_mask: Any = None,
    words_mask: Any = None,
    text_lengths: Any = None,
    span_idx: Any = None,
    span_mask: Any = None,
    labels: Any = None,
    **kwargs: Any,
) -> Any:
    """GLiNER's ``UniEncoderSpanModel.forward`` (gliner 0.2.x) with :func:`fused_scores` for the span head."""
    from gliner.modeling.outputs import GLiNERBaseOutput

    encoder_kwargs = {
        k: kwargs[k] for k in ("packing_config", "pair_attention_mask", "token_lengths", "word_lengths") if k in kwargs
    }
    rep = self.get_representations(input_ids, attention_mask, text_lengths, words_mask, **encoder_kwargs)
    words, mask = fit_length(rep.words_embedding, rep.mask, span_idx.size(1) // self.config.max_width)
    target_c = rep.prompts_embedding.size(1)
    if labels is not None:
        target_c = max(target_c, labels.size(-1))
    prompts, prompts_mask = fit_length(rep.prompts_embedding, rep.prompts_embedding_mask, target_c)
    prompts = self.prompt_rep_layer(prompts)
    scores = fused_scores(self, words, prompts)
    scores = scores.masked_fill(~span_mask.bool().view(scores.shape[:3])[..., None], -1e4)
    loss = None
    if labels is not None:
        loss_kw = {k: v for k, v in kwargs.items() if k not in ("return_embeddings",)}
        loss = self.loss(scores, labels, prompts_mask, span_mask, **loss_kw)
    return GLiNERBaseOutput(
        logits=scores,
        loss=loss,
        prompts_embedding=prompts,
        prompts_embedding_mask=prompts_mask,
        words_embedding=words,
        mask=mask,
    )


def supports(model: Any) -> bool:
    """Whether ``model`` (a GLiNER) has the plain markerV0 span head this module fuses."""
    return not fusion_problem(getattr(model, "model", None))


def fuse_training_head(model: Any) -> Any:
    """Make ``model``'s forward pass (training and evaluation) use the fused span head; returns ``model``.

    Only the bound ``forward`` of the inner module changes: parameters, state dict and saved files are
    GLiNER's own. :func:`unfuse` restores the original method.
    """
    if not supports(model):
        raise ModelError(
            "The fused training step needs GLiNER's uni-encoder span model with the markerV0 span head.",
            "train with --no-fused-head.",
        )
    model.model.forward = types.MethodType(_forward, model.model)
    return model


def unfuse(model: Any) -> Any:
    """Undo :func:`fuse_training_head` (the class's own forward is used again)."""
    model.model.__dict__.pop("forward", None)
    return model
