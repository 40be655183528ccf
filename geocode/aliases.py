"""Names no source package ships, kept as data in ``aliases.json``, and the name qualities.

The tables (state abbreviations such as ``Tx``/``N.C.``, country short forms such as
``UK``/``DRC``, informal city names such as ``NOLA``, macro regions such as
``Caribbean``, the type words stripped from division names) are general
knowledge, not tuned on any data set. A change to the file rebuilds the offline
index (its hash is part of the index signature).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from lmr.lru import Memo
from lmr.names import norm, tokens

ALIASES_FILE = "aliases.json"


@dataclass(frozen=True)
class Quality:
    """How much a hit on a name counts compared with the official name (the scorer's ``match``)."""

    name: float = 1.0
    alt: float = 0.97
    abbr: float = 0.9
    squash: float = 0.85
    stripped: float = 0.8
    code: float = 0.75
    fuzzy: float = 0.75
    demonym: float = 0.6


Q = Quality()


@dataclass(frozen=True)
class Region:
    """A macro region no gazetteer package lists (approximate centre)."""

    name: str
    lat: float
    lon: float
    aliases: tuple[str, ...]


@dataclass(frozen=True)
class Aliases:
    """The alias tables of ``aliases.json``."""

    division_words: frozenset[str]
    code_words: frozenset[str]
    us_state_abbreviations: dict[str, tuple[str, ...]]
    country: dict[str, tuple[str, ...]]
    admin1: dict[tuple[str, str], tuple[str, ...]]
    city: dict[tuple[str, str], tuple[str, ...]]
    regions: tuple[Region, ...]
    division_templates: tuple[str, ...]
    direction_prefixes: tuple[str, ...]

    def without_direction(self, name: str) -> str | None:
        """``"Central Abaco"`` -> ``"abaco"`` (the island or area the divisions share); None when no prefix."""
        key = norm(name)
        for prefix in sorted(self.direction_prefixes, key=len, reverse=True):
            if key.startswith(prefix + " "):
                rest = key[len(prefix) + 1 :]
                words = rest.split()
                if words and not any(w in self.division_words or w in self.direction_prefixes for w in words):
                    return rest
        return None


def _pairs(rows: list[dict[str, Any]]) -> dict[tuple[str, str], tuple[str, ...]]:
    return {(r["country"], r["name"]): tuple(r["aliases"]) for r in rows}


@cache
def load_aliases() -> Aliases:
    """The tables shipped with lmr (read once per process)."""
    raw = json.loads(resources.files("geocode").joinpath(ALIASES_FILE).read_text(encoding="utf-8"))
    return Aliases(
        division_words=frozenset(raw["division_words"]),
        code_words=frozenset(raw["code_words"]),
        us_state_abbreviations={k: tuple(v) for k, v in raw["us_state_abbreviations"].items()},
        country={k: tuple(v) for k, v in raw["country_aliases"].items()},
        admin1=_pairs(raw["admin1_aliases"]),
        city=_pairs(raw["city_aliases"]),
        regions=tuple(Region(r["name"], float(r["lat"]), float(r["lon"]), tuple(r["aliases"])) for r in raw["regions"]),
        division_templates=tuple(raw["division_templates"]),
        direction_prefixes=tuple(raw["direction_prefixes"]),
    )


def _division_key(name: str) -> str:
    """A division name without its type words: ``"Masvingo Province"`` -> ``"masvingo"``."""
    words = load_aliases().division_words
    toks = [t for t in tokens(name) if t not in words]
    return " ".join(toks) or norm(name)


DIVISION_KEYS_BYTES = 8 * 2**20  # names seen (gazetteer and geocoder answers), ~250 bytes each
division_key = Memo(_division_key, "division_keys", DIVISION_KEYS_BYTES)
