"""IDRISI-D's official metric: MRR@1/3/5 per administrative level after reverse geocoding.

IDRISI-D's evaluation (its ``LMD/eval`` notebook) reverse-geocodes the gold point
and each ranked prediction to names at four levels (country, state, county,
city) and scores, per level, the reciprocal rank of the first prediction whose
name equals the gold one (case-insensitive) within the top 1, 3 or 5. A level
counts only the gold mentions of types at or below it (a country mention is not
scored at the city level), and a level name the reverse geocoder cannot give is
the string ``"unresolved"`` on both sides, as there (so a county-less gold point
matched by a county-less prediction counts as a hit). An unresolved mention has
an empty ranking: reciprocal rank 0.

lmr reverse-geocodes offline with ``reverse_geocode`` (GeoNames towns of 1,000+
people and their first/second-level divisions; the nearest town gives the names),
where IDRISI used Nominatim's ``/reverse``: figures compare in kind, not digit for digit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

LEVELS = ("country", "state", "county", "city")
CUTOFFS = (1, 3, 5)
UNRESOLVED = "unresolved"

#: IDRISI types (lower case) scored at each level, as in IDRISI-D's evaluation. IDRISI-D's Arabic files call
#: the first-level division ``Province`` where the English ones say ``State``: it is scored as ``state`` is.
LEVEL_TYPES: dict[str, frozenset[str]] = {
    "country": frozenset(
        {
            "island",
            "state",
            "province",
            "city/town",
            "country",
            "county",
            "neighborhood",
            "road/street",
            "district",
            "other locations",
            "natural point-of-interest",
            "human-made point-of-interest",
        }
    ),
    "state": frozenset(
        {
            "island",
            "state",
            "province",
            "city/town",
            "county",
            "neighborhood",
            "road/street",
            "district",
            "other locations",
            "natural point-of-interest",
            "human-made point-of-interest",
        }
    ),
    "county": frozenset(
        {
            "island",
            "city/town",
            "county",
            "neighborhood",
            "road/street",
            "district",
            "other locations",
            "natural point-of-interest",
            "human-made point-of-interest",
        }
    ),
    "city": frozenset(
        {
            "city/town",
            "neighborhood",
            "road/street",
            "other locations",
            "natural point-of-interest",
            "human-made point-of-interest",
        }
    ),
}


@cache
def reverse_levels(lat: float, lon: float) -> tuple[str, str, str, str]:
    """Country, state, county and city names of the nearest GeoNames town (lower case)."""
    import reverse_geocode

    row: dict[str, Any] = reverse_geocode.get((lat, lon))
    return tuple(str(row.get(k) or UNRESOLVED).lower() for k in ("country", "state", "county", "city"))  # type: ignore[return-value]


@dataclass
class MrrTally:
    """Sums of reciprocal ranks per level and cutoff."""

    n: dict[str, int] = field(default_factory=lambda: dict.fromkeys(LEVELS, 0))
    rr: dict[tuple[str, int], float] = field(default_factory=dict)

    def add(self, gold_type: str, gold: tuple[float, float], ranked: Sequence[tuple[float, float]]) -> None:
        want = reverse_levels(round(gold[0], 5), round(gold[1], 5))
        got = [reverse_levels(round(lat, 5), round(lon, 5)) for lat, lon in ranked[: max(CUTOFFS)]]
        for li, level in enumerate(LEVELS):
            if gold_type.lower() not in LEVEL_TYPES[level]:
                continue
            self.n[level] += 1
            rank = next((r for r, names in enumerate(got, start=1) if names[li] == want[li]), None)
            for k in CUTOFFS:
                if rank is not None and rank <= k:
                    self.rr[(level, k)] = self.rr.get((level, k), 0.0) + 1.0 / rank

    def summary(self) -> dict[str, dict[str, float | int]]:
        out: dict[str, dict[str, float | int]] = {}
        for level in LEVELS:
            n = self.n[level]
            row: dict[str, float | int] = {"n": n}
            for k in CUTOFFS:
                row[f"mrr@{k}"] = round(self.rr.get((level, k), 0.0) / n, 4) if n else 0.0
            out[level] = row
        return out
