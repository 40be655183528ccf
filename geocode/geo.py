"""Distances on the sphere."""

from __future__ import annotations

import math
from typing import TypeGuard

EARTH_RADIUS_KM = 6371.0088
ACC_KM = 161.0  # a resolved place within this distance of the gold point counts as right (acc@161, 100 miles)


def is_number(x: object) -> TypeGuard[int | float]:
    """A JSON number (a bool is not one; NaN and infinities are, see :func:`math.isfinite`)."""
    return isinstance(x, int | float) and not isinstance(x, bool)


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in km."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return EARTH_RADIUS_KM * 2 * math.asin(min(1.0, math.sqrt(h)))


def on_earth(lat: float, lon: float) -> bool:
    """Whether ``(lat, lon)`` is a point on the Earth (NaN and infinities are not)."""
    return -90 <= lat <= 90 and -180 <= lon <= 180
