"""Sample streams of IDRISI posts for the demo and the benchmarks: English, Arabic, or the two interleaved.

IDRISI's English recognition files hold unlabeled test posts (:data:`ENGLISH`); its Arabic ones have only
labelled ``train`` and ``dev`` splits, so an Arabic sample is taken from those (:data:`ARABIC`) with the gold
mentions removed (:data:`LABEL_FIELDS`): the worker reads the text, the labels would only ride along.
:func:`spread` takes posts from each event in turn; :func:`interleave` mixes two samples evenly at a share
(at 0.2 every fifth post is Arabic). Both are deterministic: same files, same stream.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

from lmr.errors import DataError
from lmr.readers import expand_paths

ENGLISH = ("idrisi:lmr/test_unlabeled",)  # the unlabeled English posts
ARABIC = ("idrisi:ar/lmr/dev",)  # Arabic has no unlabeled split: dev posts, labels removed
LABEL_FIELDS = ("location_mentions",)


def spread(refs: Sequence[str], n: int | None = None) -> list[dict[str, Any]]:
    """Up to ``n`` posts (all if ``None``) of the files ``refs`` name (:func:`lmr.readers.expand_paths`),
    one from each file (each IDRISI event) in turn, each file's in its order, without :data:`LABEL_FIELDS`."""
    files = []
    for f in expand_paths(refs):
        lines = (ln for ln in f.read_text(encoding="utf-8").splitlines() if ln.strip())
        files.append([{k: v for k, v in json.loads(ln).items() if k not in LABEL_FIELDS} for ln in lines])
    out: list[dict[str, Any]] = []
    for row in range(max((len(posts) for posts in files), default=0)):
        out.extend(posts[row] for posts in files if row < len(posts))
    return out if n is None else out[:n]


def second_count(n: int, share: float) -> int:
    """How many of ``n`` interleaved posts come from the second sample at ``share`` (rounded down)."""
    return math.floor(n * _fraction(share))


def interleave(first: Sequence[Any], second: Sequence[Any], share: float, n: int) -> list[Any]:
    """``n`` items, :func:`second_count` of them from ``second`` evenly spaced (item ``i`` is from ``second``
    when ``floor((i + 1) * share)`` steps up), the others from ``first``; each sample keeps its order."""
    s = _fraction(share)
    k = second_count(n, share)
    if k > len(second) or n - k > len(first):
        raise DataError(
            f"{n} posts at share {share} need {n - k} + {k} posts; the samples hold {len(first)} + {len(second)}.",
            "ask for fewer posts or another share.",
        )
    out: list[Any] = []
    a = b = 0
    for i in range(n):
        if math.floor((i + 1) * s) > math.floor(i * s):
            out.append(second[b])
            b += 1
        else:
            out.append(first[a])
            a += 1
    return out


def _fraction(share: float) -> Fraction:
    if not 0 <= share <= 1:
        raise DataError(f"The share {share} is not between 0 and 1.", "pass a share from 0 (none) to 1 (all).")
    return Fraction(repr(share))  # the decimal as written: 0.7 is 7/10, where the float 0.7 is a hair under it
