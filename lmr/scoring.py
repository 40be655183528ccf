"""Span metrics for location mention recognition.

* exact-span P/R/F1: a prediction counts when its character offsets equal a gold
  mention's (labels ignored: every mention is a location);
* overlap P/R/F1: a prediction counts when it overlaps a gold mention (each gold
  mention matched at most once);
* recall per fine type (IDRISI ``type``);
* WER as in the Zindi LMR challenge: per post, the predicted mentions joined by
  spaces against the gold mentions joined by spaces, word edit distance summed
  over posts and divided by the number of gold words.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


class HasSpan(Protocol):
    @property
    def start(self) -> int: ...
    @property
    def end(self) -> int: ...


@dataclass
class Counts:
    tp: int = 0
    n_pred: int = 0
    n_gold: int = 0

    def add(self, other: Counts) -> None:
        self.tp += other.tp
        self.n_pred += other.n_pred
        self.n_gold += other.n_gold

    @property
    def precision(self) -> float:
        return self.tp / self.n_pred if self.n_pred else (1.0 if not self.n_gold else 0.0)

    @property
    def recall(self) -> float:
        return self.tp / self.n_gold if self.n_gold else (1.0 if not self.n_pred else 0.0)

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def _edit_distance(a: Sequence[str], b: Sequence[str]) -> int:
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, y in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y))
        prev = cur
    return prev[-1]


@dataclass
class SpanScorer:
    """Accumulates metrics over posts; ``group`` gives per-file/per-event breakdowns."""

    exact: Counts = field(default_factory=Counts)
    overlap: Counts = field(default_factory=Counts)
    by_type: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    by_group: dict[str, Counts] = field(default_factory=dict)
    wer_edits: int = 0
    wer_words: int = 0
    n_posts: int = 0

    def add(
        self,
        text: str,
        gold: Sequence[Any],
        pred: Sequence[HasSpan],
        group: str = "",
    ) -> None:
        """Score one post. ``gold`` items have start/end and optionally ``type``."""
        self.n_posts += 1
        gset = {(g.start, g.end) for g in gold}
        pset = {(p.start, p.end) for p in pred}
        c = Counts(len(gset & pset), len(pset), len(gset))
        self.exact.add(c)
        if group:
            self.by_group.setdefault(group, Counts()).add(c)
        for g in gold:
            t = getattr(g, "type", "") or ""
            if t:
                self.by_type[t][1] += 1
                self.by_type[t][0] += int((g.start, g.end) in pset)
        used: set[tuple[int, int]] = set()
        otp = 0
        for ps, pe in sorted(pset):
            hit = next((g for g in sorted(gset) if g not in used and g[0] < pe and ps < g[1]), None)
            if hit is not None:
                used.add(hit)
                otp += 1
        self.overlap.add(Counts(otp, len(pset), len(gset)))
        ref = " ".join(text[s:e] for s, e in sorted(gset)).split()
        hyp = " ".join(text[s:e] for s, e in sorted(pset)).split()
        self.wer_edits += _edit_distance(ref, hyp)
        self.wer_words += len(ref)

    @property
    def wer(self) -> float:
        return self.wer_edits / self.wer_words if self.wer_words else float(self.wer_edits > 0)

    def result(self) -> dict[str, Any]:
        return {
            "precision": round(self.exact.precision, 4),
            "recall": round(self.exact.recall, 4),
            "f1": round(self.exact.f1, 4),
            "overlap_precision": round(self.overlap.precision, 4),
            "overlap_recall": round(self.overlap.recall, 4),
            "overlap_f1": round(self.overlap.f1, 4),
            "wer": round(self.wer, 4),
            "n_posts": self.n_posts,
            "n_gold": self.exact.n_gold,
            "n_pred": self.exact.n_pred,
            "tp": self.exact.tp,
            "recall_by_type": {t: {"recall": round(h / n, 4), "n": n} for t, (h, n) in sorted(self.by_type.items())},
            "by_group": {
                g: {
                    "precision": round(c.precision, 4),
                    "recall": round(c.recall, 4),
                    "f1": round(c.f1, 4),
                    "n_gold": c.n_gold,
                }
                for g, c in sorted(self.by_group.items())
            },
        }


def best_threshold(
    texts: Sequence[str],
    gold: Sequence[Sequence[Any]],
    scored: Sequence[Sequence[Any]],
    grid: Sequence[float] | None = None,
) -> tuple[float, float]:
    """The threshold (from ``grid``) maximising exact-span F1, given low-threshold predictions with ``score``."""
    grid = grid or [round(0.05 * k, 2) for k in range(2, 19)]
    best = (0.5, -1.0)
    for t in grid:
        c = Counts()
        for g, p in zip(gold, scored, strict=True):
            gs = {(x.start, x.end) for x in g}
            ps = {(x.start, x.end) for x in p if x.score >= t}
            c.add(Counts(len(gs & ps), len(ps), len(gs)))
        if c.f1 > best[1] + 1e-9:
            best = (t, c.f1)
    return best
