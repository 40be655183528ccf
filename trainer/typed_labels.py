"""Typed labels: the label set of a model that classifies each mention, relabelled examples, and typed F1.

With ``--types coarse`` the model learns one of the seven place types per mention (:mod:`lmr.place_types`),
mapped from IDRISI's fine types; with ``--types fine``, IDRISI's own types.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from lmr.errors import ConfigError
from lmr.place_types import COARSE_OF, PLACE_TYPES, coarse_type
from lmr.readers import DEFAULT_LABEL, Example
from lmr.scoring import Counts

__all__ = [
    "COARSE_OF",
    "COARSE_TYPES",
    "TYPE_MODES",
    "coarse_type",
    "evaluate_typed",
    "labels_for",
    "relabel",
    "typed_scores",
]

COARSE_TYPES = PLACE_TYPES  # the labels of a coarse-typed model
TYPE_MODES = ("none", "coarse", "fine")


def relabel(examples: Sequence[Example], mode: str) -> list[Example]:
    """Examples whose span labels follow ``mode``: ``none`` (one label), ``coarse`` or ``fine`` (IDRISI's)."""
    if mode not in TYPE_MODES:
        raise ConfigError(f"--types must be one of {', '.join(TYPE_MODES)}, not {mode!r}.")

    def label(fine: str) -> str:
        if mode == "coarse":
            return coarse_type(fine)
        if mode == "fine":
            return fine or DEFAULT_LABEL
        return DEFAULT_LABEL

    return [replace(ex, spans=[replace(sp, label=label(sp.type)) for sp in ex.spans]) for ex in examples]


def labels_for(examples: Sequence[Example], mode: str) -> list[str]:
    """The label set a model is trained with: every coarse type, the fine types seen, or ``location``."""
    if mode == "coarse":
        return list(COARSE_TYPES)
    if mode == "fine":
        return sorted({sp.label for ex in examples for sp in ex.spans}) or [DEFAULT_LABEL]
    return [DEFAULT_LABEL]


def typed_scores(examples: Sequence[Example], predictions: Sequence[Sequence[Any]]) -> dict[str, Any]:
    """Typed exact-span P/R/F1 (offsets and label must match) overall and per label, beside untyped F1."""
    typed, untyped = Counts(), Counts()
    per: dict[str, Counts] = defaultdict(Counts)
    for ex, preds in zip(examples, predictions, strict=True):
        gold = {(sp.start, sp.end, sp.label) for sp in ex.spans}
        pred = {(p.start, p.end, p.label) for p in preds}
        typed.add(Counts(len(gold & pred), len(pred), len(gold)))
        g2, p2 = {g[:2] for g in gold}, {p[:2] for p in pred}
        untyped.add(Counts(len(g2 & p2), len(p2), len(g2)))
        for lab in {x[2] for x in gold | pred}:
            gl, pl = {g for g in gold if g[2] == lab}, {p for p in pred if p[2] == lab}
            per[lab].add(Counts(len(gl & pl), len(pl), len(gl)))
    return {
        "typed_precision": round(typed.precision, 4),
        "typed_recall": round(typed.recall, 4),
        "typed_f1": round(typed.f1, 4),
        "untyped_f1": round(untyped.f1, 4),
        "by_label": {
            lab: {"precision": round(c.precision, 4), "recall": round(c.recall, 4), "f1": round(c.f1, 4), "n": c.n_gold}
            for lab, c in sorted(per.items())
        },
    }


def evaluate_typed(extractor: Any, examples: list[Example], threshold: float, batch_size: int = 32) -> dict[str, Any]:
    """Run ``extractor`` over ``examples`` and return :func:`typed_scores`."""
    from lmr.words import split_words

    texts = [e.text for e in examples]
    preds = extractor.predict_words([split_words(t) for t in texts], texts, threshold=threshold, batch_size=batch_size)
    return typed_scores(examples, preds)
