"""Read-only lookups in the offline gazetteer index.

The index is built by :mod:`geocode.build` (data from PyPI packages, see there)
and written by :mod:`geocode.index`; :func:`open_gazetteer` builds it on first
use and opens it read-only afterwards.
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from geocode.aliases import Q, division_key
from geocode.geo import haversine_km
from geocode.index import build_index, cache_dir, default_index_path
from geocode.results import Candidate
from geocode.skeleton import arabic_skeleton
from geocode.text import is_arabic
from lmr.names import norm


class Gazetteer:
    """Read-only lookups in a built index. Thread-safe (one connection per thread)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self.places = int(self._con().execute("SELECT v FROM meta WHERE k='places'").fetchone()[0])

    def _con(self) -> sqlite3.Connection:
        con: sqlite3.Connection | None = getattr(self._local, "con", None)
        if con is None:
            con = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
            self._local.con = con
        return con

    def lookup(self, key: str, *, upper: bool = False, limit: int = 200) -> list[Candidate]:
        """Places whose normalised name equals ``key``; codes only when the mention was in capitals."""
        rows = (
            self._con()
            .execute(
                "SELECT p.name, p.kind, p.ftype, p.cc, p.admin1, p.admin2, p.lat, p.lon, p.pop, p.bbox, n.quality,"
                " n.caps, p.display FROM names n JOIN places p ON p.id = n.place WHERE n.key = ?"
                " ORDER BY p.pop DESC LIMIT ?",
                (key, limit),
            )
            .fetchall()
        )
        return self._candidates(rows, upper)

    def fuzzy(self, key: str, *, quality: float = Q.fuzzy, limit: int = 20) -> list[Candidate]:
        """Important places (countries, divisions, towns of 10,000+) one typo away from ``key``; for an Arabic
        key, places of Arabic-speaking countries whose romanized name has its consonants (:mod:`geocode.skeleton`)."""
        if is_arabic(key):
            probe = arabic_skeleton(key)
            return self._fuzzy_rows({probe}, quality, limit) if probe else []
        if len(key) < 5 or not key.isascii():
            return []
        probes = {key} | {key[:i] + key[i + 1 :] for i in range(len(key))}
        return [c for c in self._fuzzy_rows(probes, quality, limit) if _edit1(key, norm(c.name))]

    def _fuzzy_rows(self, probes: set[str], quality: float, limit: int) -> list[Candidate]:
        marks = ",".join("?" * len(probes))
        rows = (
            self._con()
            .execute(
                "SELECT DISTINCT p.name, p.kind, p.ftype, p.cc, p.admin1, p.admin2, p.lat, p.lon, p.pop, p.bbox, ?, 0,"
                f" p.display FROM fuzzy f JOIN places p ON p.id = f.place WHERE f.key IN ({marks})"
                " ORDER BY p.pop DESC LIMIT ?",
                (quality, *sorted(probes), limit),
            )
            .fetchall()
        )
        return self._candidates(rows, False)

    def _candidates(self, rows: list[Any], upper: bool) -> list[Candidate]:
        out = []
        for name, kind, ftype, cc, a1, a2, lat, lon, pop, bbox, q, caps, display in rows:
            if caps and not upper:
                continue
            box = tuple(json.loads(bbox)) if bbox else None
            out.append(
                Candidate(
                    name=name,
                    lat=lat,
                    lon=lon,
                    kind=kind,
                    feature_type=ftype,
                    country_code=cc,
                    admin1=a1,
                    admin2=a2,
                    population=pop,
                    importance=importance(kind, pop),
                    bbox=box,
                    display_name=display,
                    match=q,
                )
            )
        return out

    def names(self) -> Iterator[tuple[str, str, int, bool]]:
        """Every name key with its place's kind and population, and whether it is matched in capitals only."""
        rows = self._con().execute("SELECT n.key, p.kind, p.pop, n.caps FROM names n JOIN places p ON p.id = n.place")
        for key, kind, pop, caps in rows:
            yield str(key), str(kind), int(pop or 0), bool(caps)

    def close(self) -> None:
        con = getattr(self._local, "con", None)
        if con is not None:
            con.close()
            self._local.con = None


def importance(kind: str, population: int) -> float:
    """A prior like Nominatim's importance: log population plus a bonus for higher levels.

    Divisions without a known population count as 100,000 people.
    """
    if kind == "continent":
        return 1.1
    if kind == "region":
        return 0.85
    if population <= 0 and kind in ("country", "admin1", "admin2"):
        population = 100_000
    lp = math.log10(max(population, 0) + 1)
    offset = {"country": 0.35, "admin1": 0.2, "admin2": 0.12}.get(kind, 0.1)
    return offset + 0.085 * min(lp, 9.0)


def _edit1(a: str, b: str) -> bool:
    """Whether ``a`` and ``b`` differ by at most one insertion, deletion, substitution or swap."""
    if a == b:
        return True
    if abs(len(a) - len(b)) > 1:
        return False
    i = 0
    while i < min(len(a), len(b)) and a[i] == b[i]:
        i += 1
    return (
        a[i + 1 :] == b[i + 1 :]
        or a[i:] == b[i + 1 :]
        or a[i + 1 :] == b[i:]
        or (a[i + 2 :] == b[i + 2 :] and a[i : i + 2] == b[i : i + 2][::-1])
    )


_opened: dict[Path, Gazetteer] = {}


def open_gazetteer(path: Path | None = None) -> Gazetteer:
    """The process-wide gazetteer for ``path``, building the index first if needed."""
    target = build_index(path)
    gz = _opened.get(target)
    if gz is None:
        gz = _opened[target] = Gazetteer(target)
    return gz


__all__ = (
    "Gazetteer",
    "build_index",
    "cache_dir",
    "default_index_path",
    "division_key",
    "haversine_km",
    "importance",
    "open_gazetteer",
)
