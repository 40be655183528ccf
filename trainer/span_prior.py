"""Fitting a model's span prior (:mod:`lmr.model.span_prior`) on the selection set, after training.

The candidate spans of the selection posts (model probability at least ``FLOOR``), labelled by
whether they are exactly a gold mention, fit a logistic regression (Newton's method, the same L2
penalty as scikit-learn's default ``C=1``); the threshold is then chosen on the rescored spans.
Held-out events play no part. The names come from the offline gazetteer (:mod:`geocode`) and
ship with the model (``lexicon.tsv.gz``).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from lmr.evaluation import evaluate_extractor
from lmr.model.extractor import Extractor, ModelSpec
from lmr.model.span_prior import FEATURES, LEXICON_FILE, Lexicon, SpanPrior, span_features
from lmr.readers import Example
from lmr.words import split_words

log = logging.getLogger(__name__)

L2 = 1.0  # penalty 0.5 * L2 * |w|^2 (the bias unpenalised): scikit-learn's C = 1


@cache
def gazetteer_lexicon() -> Lexicon:
    """Every name of the offline gazetteer (built on first use, see :mod:`geocode.build`).

    Kept beside the gazetteer's index (``<index>-lexicon/``) once built, so later runs read it (seconds)
    instead of building it again from the index.
    """
    from geocode.gazetteer import open_gazetteer

    g = open_gazetteer()
    kept = g.path.with_name(g.path.stem + "-lexicon")
    if (kept / LEXICON_FILE).is_file():
        lexicon = Lexicon.load(kept)
    else:
        lexicon = Lexicon.build(g.names())
        tmp = Path(tempfile.mkdtemp(prefix=".lexicon-", dir=g.path.parent))
        lexicon.save(tmp)
        shutil.rmtree(kept, ignore_errors=True)
        tmp.rename(kept)  # a whole directory or none: a run killed mid-write leaves only the temporary one
    log.info("Span prior: %d place-name keys from the offline gazetteer", len(lexicon))
    return lexicon


@dataclass(frozen=True)
class Design:
    """Features (rows: candidate spans) and labels (1: the span is a gold mention)."""

    x: Any
    y: Any


def design(extractor: Extractor, examples: Sequence[Example], lexicon: Lexicon, batch_size: int = 16) -> Design:
    """The candidate spans of ``examples`` under ``extractor``'s model (features read its logits, never a prior)."""
    texts = [ex.text for ex in examples]
    rows: list[list[float]] = []
    labels: list[float] = []
    for ex, cands in zip(examples, extractor.candidates_of(texts, batch_size=batch_size), strict=True):
        words = split_words(ex.text)
        gold = {(sp.start, sp.end, sp.label) for sp in ex.spans}
        for c, _ in cands:
            s, e = words[c.first].start, words[c.last].end
            rows.append(span_features(ex.text[s:e], c.last - c.first + 1, c.logit, lexicon))
            labels.append(float((s, e, extractor.spec.labels[c.label]) in gold))
    return Design(np.asarray(rows, dtype=np.float64).reshape(-1, len(FEATURES)), np.asarray(labels))


def fit_logistic(d: Design, l2: float = L2, steps: int = 50) -> SpanPrior:
    """Weights and bias minimising the log loss plus ``0.5 * l2 * |w|^2`` (Newton's method)."""
    x = np.hstack([d.x, np.ones((len(d.x), 1))])
    w = np.zeros(x.shape[1])
    pen = np.full(x.shape[1], l2)
    pen[-1] = 0.0
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-np.clip(x @ w, -60, 60)))
        grad = x.T @ (p - d.y) + pen * w
        hess = (x * (p * (1 - p))[:, None]).T @ x + np.diag(pen + 1e-9)
        step = np.linalg.solve(hess, grad)
        w -= step
        if float(np.abs(step).max()) < 1e-8:
            break
    return SpanPrior(tuple(float(v) for v in w[:-1]), float(w[-1]))


def extractor(model: Any, spec: ModelSpec, lexicon: Lexicon | None) -> Extractor:
    """The exact (``torch``) extractor of a model, its span prior included when ``spec`` has one."""
    if spec.span_prior and lexicon is not None:
        return Extractor(model, spec, prior=SpanPrior.from_dict(spec.span_prior), lexicon=lexicon)
    return Extractor(model, spec)


def fit_prior(
    plain: Extractor,
    select: list[Example],
    lexicon: Lexicon,
    without: tuple[dict[str, Any], float],
    *,
    threshold: float | None = None,
    batch_size: int = 16,
) -> tuple[Extractor, dict[str, Any], float, dict[str, Any]]:
    """Fit the span prior on the selection set and choose its threshold there; set it in the model's spec.

    Returns the extractor with the prior, its selection metrics and threshold, and what the model card
    records: the weights and the selection F1 with and without the prior (``without``: the metrics and
    threshold of the model alone). A ``threshold`` given is kept, not chosen.
    """
    fitted = fit_logistic(design(plain, select, lexicon, batch_size))
    plain.spec.span_prior = fitted.to_dict()
    published = SpanPrior.from_dict(plain.spec.span_prior)  # the stored (rounded) weights: what the worker applies
    ex = Extractor(plain.model, plain.spec, runtime=plain.runtime, prior=published, lexicon=lexicon)
    metrics, threshold = evaluate_extractor(ex, select, threshold=threshold, batch_size=batch_size)
    info = {
        **fitted.to_dict(),
        "lexicon_names": len(lexicon),
        "selection_f1": metrics.get("f1"),
        "threshold": threshold,
        "selection_f1_without": without[0].get("f1"),
        "threshold_without": without[1],
    }
    log.info(
        "Span prior: selection F1 %.4f at threshold %.2f (the model alone: %s at %.2f)",
        metrics.get("f1", 0.0),
        threshold,
        without[0].get("f1"),
        without[1],
    )
    return ex, metrics, threshold, info
