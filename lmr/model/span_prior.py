"""The span prior: a model's span scores combined with what a gazetteer knows of each span's text.

A model trained on some disasters meets the place names of a new one unread; a gazetteer knows
them anyway. The prior rescores every candidate span (model probability at least ``FLOOR``) by a
logistic regression over :data:`FEATURES`: the model's logit, whether the span's text is a known
place and of which kind (country, first- or second-level division, town), the place's population,
whether the span is a hashtag, and its extra words. The weights are fitted on the selection set
after training (:mod:`trainer.span_prior`); decoding is then GLiNER's flat greedy one (highest score
first, no overlaps) on the new scores, and the threshold is chosen on them.

A model carries its prior as data: the weights in ``lmr.json`` (``span_prior``) and the names in
``lexicon.tsv.gz`` (one line per name key, :func:`lmr.names.norm`, with the kinds and the largest
population of the places of that name), so the worker needs no gazetteer.
"""

from __future__ import annotations

import gzip
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lmr.errors import DataError
from lmr.names import is_upper_code, norm, split_camel

LEXICON_FILE = "lexicon.tsv.gz"
KINDS = ("country", "admin1", "admin2", "city")
FEATURES = ("logit", "known", *KINDS, "population", "hashtag", "extra_words")
FLOOR = 0.02  # lowest model probability a candidate span needs to be rescored
_LOGIT_FLOOR = math.log(FLOOR / (1 - FLOOR))
_POP_SCALE = 7.0  # log10 population / 7: a town of 10 million scores 1


def _log_population(population: int) -> int:
    """A population as tenths of its log10 (0-99): what the prior reads, stored small."""
    return min(99, round(10 * math.log10(max(0, population) + 1)))


class Lexicon:
    """Place-name keys with the kinds of place they name (see the module docstring).

    Each key maps to one small int: kinds (bit i: :data:`KINDS` [i]) and the largest population (tenths
    of its log10) of the places of that name, then the same for names that are codes (``NC``, ``PR``),
    which only a mention in capitals matches.
    """

    def __init__(self, entries: dict[str, int]) -> None:
        self.entries = entries

    def __len__(self) -> int:
        return len(self.entries)

    @staticmethod
    def key(surface: str) -> str:
        """The lookup key of a span's text: a hashtag is split at camel case first (``#NewOrleans``)."""
        return norm(split_camel(surface) if surface.startswith("#") else surface)

    def lookup(self, surface: str) -> tuple[int, float]:
        """(kinds, log10 population) of the places ``surface`` may name; codes only when written in capitals."""
        v = self.entries.get(self.key(surface), 0)
        kinds, lp = v & 15, v >> 8 & 127
        if is_upper_code(surface.lstrip("#@")):
            kinds, lp = kinds | v >> 4 & 15, max(lp, v >> 15)
        return kinds, lp / 10 if kinds else 0.0

    @classmethod
    def build(cls, names: Iterable[tuple[str, str, int, bool]]) -> Lexicon:
        """From ``(key, kind, population, caps_only)`` rows; kinds outside :data:`KINDS` are left out."""
        acc: dict[str, list[int]] = {}
        for key, kind, pop, caps in names:
            if kind not in KINDS or not key:
                continue
            e = acc.setdefault(key, [0, 0, 0, 0])
            i = 2 if caps else 0
            e[i] |= 1 << KINDS.index(kind)
            e[i + 1] = max(e[i + 1], _log_population(pop))
        return cls({k: _pack(*v) for k, v in acc.items()})

    def save(self, directory: Path) -> None:
        with gzip.open(directory / LEXICON_FILE, "wt", encoding="utf-8", compresslevel=9) as f:
            for k in sorted(self.entries):
                v = self.entries[k]
                f.write(f"{k}\t{v & 15}\t{v >> 8 & 127}\t{v >> 4 & 15}\t{v >> 15}\n")

    @classmethod
    def load(cls, directory: Path) -> Lexicon:
        path = directory / LEXICON_FILE
        fix = "republish the model (lmr-trainer run), or train it with --no-span-prior."
        if not path.is_file():
            raise DataError(f"{directory}: its lmr.json names a span prior but {LEXICON_FILE} is missing.", fix)
        entries: dict[str, int] = {}
        shared: dict[int, int] = {}  # one int object per distinct value (a few thousand), not one per name
        with gzip.open(path, "rt", encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                key, *fields = line.rstrip("\n").split("\t")
                try:
                    v = _pack(*(int(x) for x in fields))
                except (TypeError, ValueError) as exc:
                    raise DataError(f"{path}, line {n}: not a lexicon row ({exc}).", fix) from exc
                entries[key] = shared.setdefault(v, v)
        return cls(entries)


def _pack(kinds: int, log_pop: int, caps_kinds: int, caps_log_pop: int) -> int:
    if not (0 <= kinds < 16 and 0 <= caps_kinds < 16 and 0 <= log_pop < 128 and 0 <= caps_log_pop < 128):
        raise ValueError("kinds must be 0-15 and log populations 0-127")
    return kinds | caps_kinds << 4 | log_pop << 8 | caps_log_pop << 15


def span_features(surface: str, n_words: int, logit: float, lexicon: Lexicon) -> list[float]:
    """The values of :data:`FEATURES` for one candidate span."""
    kinds, log_pop = lexicon.lookup(surface)
    flags = [float(bool(kinds >> i & 1)) for i in range(len(KINDS))]
    population = log_pop / _POP_SCALE
    return [logit, float(kinds != 0), *flags, population, float(surface.startswith("#")), float(n_words - 1)]


@dataclass(frozen=True)
class SpanPrior:
    """Logistic-regression weights over :data:`FEATURES` (in that order) and a bias."""

    weights: tuple[float, ...]
    bias: float

    def __post_init__(self) -> None:
        if len(self.weights) != len(FEATURES):
            raise DataError(
                f"A span prior needs {len(FEATURES)} weights ({', '.join(FEATURES)}), got {len(self.weights)}.",
                "republish the model with this lmr version (lmr-trainer run).",
            )

    def score(self, features: Sequence[float]) -> float:
        z = self.bias + sum(w * x for w, x in zip(self.weights, features, strict=True))
        return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))

    def to_dict(self) -> dict[str, Any]:
        return {"features": list(FEATURES), "weights": [round(w, 6) for w in self.weights], "bias": round(self.bias, 6)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SpanPrior:
        if list(d.get("features", [])) != list(FEATURES):
            raise DataError(
                f"The model's span prior uses features {d.get('features')}, this lmr computes {list(FEATURES)}.",
                "republish the model with this lmr version (lmr-trainer run).",
            )
        return cls(tuple(float(w) for w in d["weights"]), float(d["bias"]))


@dataclass(frozen=True)
class Candidate:
    """A span the model scored at least :data:`FLOOR`: words ``[first, last]``, label index, logit."""

    first: int
    last: int
    label: int
    logit: float


def candidates(logits: Any, n_words: int) -> list[Candidate]:
    """Candidate spans of one post from GLiNER's ``(words, max_width, labels)`` span logits."""
    import torch

    lg = torch.as_tensor(logits)
    hits = (lg >= _LOGIT_FLOOR).nonzero().tolist()
    return [Candidate(i, i + k, c, float(lg[i, k, c])) for i, k, c in hits if i + k < n_words]


def greedy(scored: Sequence[tuple[Candidate, float]], threshold: float) -> list[tuple[Candidate, float]]:
    """GLiNER's flat decoding: highest score first, a span kept unless it overlaps one already kept."""
    kept: list[tuple[Candidate, float]] = []
    for cand, s in sorted(scored, key=lambda cs: (-cs[1], cs[0].first, cs[0].last)):
        if s < threshold:
            break
        if all(cand.last < k.first or cand.first > k.last for k, _ in kept):
            kept.append((cand, s))
    return kept
