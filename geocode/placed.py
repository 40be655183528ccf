"""The end-to-end threshold: which recognised spans are worth emitting once the geocoder has answered.

A crisis team acts on places on a map. A span the model scores at or above its threshold is always
emitted (placed or not, as before). With a geocoder, the model also proposes spans scoring between
``placed_threshold`` and its threshold, and these are emitted only when the geocoder places them with
a resolution score (probability times name match) of at least :data:`PLACED_GEO_SCORE`: a doubtful span
the gazetteer knows well is more likely a place than one it does not, and an unplaced doubtful span would
put nothing on the map anyway. Without a geocoder, or with ``placed_threshold`` at or above the
model's threshold, nothing changes.

The worker (``lmr-worker run --placed-threshold``) and the end-to-end evaluation (``lmr-trainer evaluate
--geocoder``) both apply :func:`keep`, so the figures are the stream's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeGuard

from geocode.geo import is_number

#: The default lowest score of a span the geocoder may rescue, and the resolution score the rescue needs. Both
#: were chosen on in-domain posts of the held-out model, never on held-out events (docs/end-to-end.md): without
#: the resolution score the recall gained and the precision lost nearly cancel.
PLACED_THRESHOLD = 0.3
PLACED_GEO_SCORE = 0.5


def extraction_threshold(threshold: float, placed_threshold: float | None) -> float:
    """The score the model must extract down to: the lower of its threshold and ``placed_threshold``."""
    return threshold if placed_threshold is None else min(threshold, placed_threshold)


def is_placed(geo: object) -> TypeGuard[Mapping[str, Any]]:
    """Whether a location's ``geo`` (any JSON) puts it on a map: a mapping with a numeric point, not unresolved."""
    if not isinstance(geo, Mapping) or geo.get("resolved") is False:
        return False
    return is_number(geo.get("lat")) and is_number(geo.get("lon"))


def placed_well(geo: Mapping[str, Any] | None, min_score: float = PLACED_GEO_SCORE) -> bool:
    """Whether ``geo`` is placed with a resolution score of at least ``min_score``."""
    if not is_placed(geo):
        return False
    score = geo.get("score")
    return is_number(score) and score >= min_score


def keep(
    scores: Sequence[float],
    geos: Sequence[Mapping[str, Any] | None],
    threshold: float,
    min_geo_score: float = PLACED_GEO_SCORE,
) -> list[bool]:
    """Per span: emit it? At or above ``threshold`` always; below it only when placed with a resolution score of
    at least ``min_geo_score``."""
    return [s >= threshold or placed_well(g, min_geo_score) for s, g in zip(scores, geos, strict=True)]
