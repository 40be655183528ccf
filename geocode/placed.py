"""The end-to-end threshold: which recognised spans are worth emitting once the geocoder has answered.

A crisis team acts on places on a map. A span the model scores at or above its threshold is always
emitted (placed or not, as before). With a geocoder, the model also proposes spans scoring between
``placed_threshold`` and its threshold, and these are emitted only when the geocoder places them: a
doubtful span the gazetteer knows is more likely a place than one it does not, and an unplaced doubtful
span would put nothing on the map anyway. Without a geocoder, or with ``placed_threshold`` at or above the
model's threshold, nothing changes.

The worker (``lmr-worker run --placed-threshold``) and the end-to-end evaluation (``lmr-trainer evaluate
--geocoder``) both apply :func:`keep`, so the figures are the stream's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

#: The default lowest score of a span the geocoder may rescue (below the model's threshold). Chosen on the
#: in-domain IDRISI-D dev events of the held-out model (never on held-out events): docs/end-to-end.md.
PLACED_THRESHOLD = 0.3


def extraction_threshold(threshold: float, placed_threshold: float | None) -> float:
    """The score the model must extract down to: the lower of its threshold and ``placed_threshold``."""
    return threshold if placed_threshold is None else min(threshold, placed_threshold)


def is_placed(geo: Mapping[str, Any] | None) -> bool:
    """Whether a location's ``geo`` puts it on a map (a resolved point)."""
    if not isinstance(geo, Mapping) or geo.get("resolved") is False:
        return False
    lat, lon = geo.get("lat"), geo.get("lon")
    return all(isinstance(x, int | float) and not isinstance(x, bool) for x in (lat, lon))


def keep(scores: Sequence[float], geos: Sequence[Mapping[str, Any] | None], threshold: float) -> list[bool]:
    """Per span: emit it? At or above ``threshold`` always; below it only when placed."""
    return [s >= threshold or is_placed(g) for s, g in zip(scores, geos, strict=True)]
