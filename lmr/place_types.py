"""The seven coarse place types, and IDRISI's fine types (English and Arabic) mapped onto them.

A typed recognizer (``lmr-trainer run --types coarse``) labels each mention with one of
:data:`PLACE_TYPES`; the label reaches users as ``locations[].label`` and the geocoder reads it
(an ``admin`` mention should resolve to a division, a ``city`` one to a populated place).
"""

from __future__ import annotations

from typing import Literal, get_args

PlaceType = Literal["country", "admin", "city", "poi", "street", "natural", "other"]
PLACE_TYPES: tuple[PlaceType, ...] = get_args(PlaceType)

#: IDRISI fine type -> coarse type. The English files spell the types out; the Arabic ones use short codes.
COARSE_OF: dict[str, PlaceType] = {
    "Country": "country",
    "State": "admin",
    "County": "admin",
    "District": "admin",
    "City/town": "city",
    "Neighborhood": "city",
    "Human-made Point-of-Interest": "poi",
    "Road/street": "street",
    "Island": "natural",
    "Natural Point-of-Interest": "natural",
    "Continent": "other",
    "Other locations": "other",
    "CTRY": "country",
    "PROV": "admin",
    "DIST": "admin",
    "CITY": "city",
    "NBHD": "city",
    "HPOI": "poi",
    "ST": "street",
    "NPOI": "natural",
    "OTHR": "other",
}


def coarse_type(fine: str) -> PlaceType:
    """The coarse type of an IDRISI fine type; an unknown or missing type is ``other``."""
    return COARSE_OF.get(fine, "other")
