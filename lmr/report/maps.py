"""World maps as inline SVG: country outlines from ``countryinfo`` (Natural Earth, MIT), drawn by matplotlib.

The projection is plain longitude/latitude (equirectangular); no tiles, nothing fetched. Points and
lines added by callers carry SVG ids (``gid``) so a page's drawn markers can be counted.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from lmr.report.charts import new_figure

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

LAND = "#e4e4e0"
BORDER = "#ffffff"
WATER = "#f3f7fb"
WORLD = (-180.0, 180.0, -58.0, 84.0)  # west, east, south, north shown when nothing narrows the view


@functools.cache
def country_rings() -> tuple[tuple[tuple[float, float], ...], ...]:
    """Every outer ring of every country outline (lon, lat), read once from ``countryinfo``."""
    from countryinfo import all_countries

    rings: list[tuple[tuple[float, float], ...]] = []
    for record in all_countries():
        try:
            features = (record.geo_json() or {}).get("features", [])
        except Exception:  # a record without an outline
            continue
        for feature in features:
            geom = feature.get("geometry") or {}
            polys = geom.get("coordinates", [])
            if geom.get("type") == "Polygon":
                polys = [polys]
            for poly in polys if geom.get("type") in ("Polygon", "MultiPolygon") else []:
                if poly and len(poly[0]) >= 3:
                    rings.append(tuple((float(x), float(y)) for x, y in poly[0]))
    return tuple(rings)


def view_box(points: Iterable[tuple[float, float]], *, pad: float = 8.0, min_span: float = 30.0) -> tuple[float, ...]:
    """(west, east, south, north) around ``points`` (lat, lon), padded, at least ``min_span`` degrees wide."""
    pts = list(points)
    if not pts:
        return WORLD
    lats, lons = [p[0] for p in pts], [p[1] for p in pts]
    west, east = min(lons) - pad, max(lons) + pad
    south, north = min(lats) - pad, max(lats) + pad
    if east - west < min_span:
        mid = (east + west) / 2
        west, east = mid - min_span / 2, mid + min_span / 2
    if north - south < min_span / 2:
        mid = (north + south) / 2
        south, north = mid - min_span / 4, mid + min_span / 4
    w, e, s, n = WORLD
    return max(west, w), min(east, e), max(south, s - 30), min(north, n)


def world_axes(box: Sequence[float] = WORLD, *, width: float = 9.0) -> tuple[Figure, Axes]:
    """A figure whose axes show the countries inside ``box`` (west, east, south, north)."""
    from matplotlib.collections import PolyCollection

    west, east, south, north = box
    aspect = 1 / max(math.cos(math.radians((south + north) / 2)), 0.3)
    height = min(max(width * (north - south) * aspect / (east - west), 2.5), width * 0.7)
    fig = new_figure(width, height)
    ax = fig.add_subplot()
    ax.set_facecolor(WATER)
    land = PolyCollection(country_rings(), facecolors=LAND, edgecolors=BORDER, linewidths=0.5, zorder=0)
    land.set_gid("countries")
    ax.add_collection(land)
    ax.set_xlim(west, east)
    ax.set_ylim(south, north)
    ax.set_aspect(aspect)
    ax.tick_params(labelsize=7, colors="#777777")
    return fig, ax


def points(ax: Axes, pts: Sequence[tuple[float, float]], gid: str, *, sizes: Any = 18, **style: Any) -> None:
    """Scatter (lat, lon) points as one SVG group ``gid`` (one ``<use>`` per point)."""
    if not pts:
        return
    coll = ax.scatter([p[1] for p in pts], [p[0] for p in pts], s=sizes, zorder=3, **style)
    coll.set_gid(gid)


Pair = tuple[tuple[float, float], tuple[float, float]]


def segments(ax: Axes, pairs: Sequence[Pair], gid: str, **style: Any) -> None:
    """Straight lines between (lat, lon) pairs as one SVG group ``gid``."""
    if not pairs:
        return
    from matplotlib.collections import LineCollection

    lines = LineCollection([[(a[1], a[0]), (b[1], b[0])] for a, b in pairs], zorder=2, **style)
    lines.set_gid(gid)
    ax.add_collection(lines)
