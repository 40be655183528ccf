"""Places remembered from annotated posts: a name annotators placed one way is placed that way again.

A gazetteer knows official names; crisis posts use local ones (an institute called by its short
name, a neighbourhood's nickname, a country placed where OpenStreetMap puts its label), and the
annotators of an event, or of past events, have already placed them. :func:`learn` reads annotated
posts (IDRISI-D's ``lmd/`` files, or any JSONL whose ``location_mentions`` carry a Nominatim
``osm_json`` or their own ``lat``/``lon``, as end-to-end gold does: :mod:`geocode.endtoend_gold`)
and keeps, per name (its :func:`~lmr.names.norm` key), the place most of its annotations agree on:
the annotated point with the most others within 161 km. A name is kept when at least
``min_support`` annotations agree and they are a majority of its annotations.

A resolver given a memory answers a remembered name with that place as its only candidate
(``backend``: ``memory``), so the stream prior and the post's context treat it as any other answer.
``lmr-geocode learn`` writes a memory file; ``--geocoder-memory`` (``--memory`` in ``lmr-geocode``)
reads one. How ``min_support`` was chosen: docs/geocode.md.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from geocode.backends import candidate_from_nominatim
from geocode.disambiguate import LEVEL
from geocode.endtoend_gold import mention_point
from geocode.geo import ACC_KM, haversine_km, is_number, on_earth
from geocode.results import Candidate
from lmr.errors import ConfigError, DataError
from lmr.names import norm
from lmr.readers import json_records, mention_span

FORMAT = "lmr-place-memory/1"
MIN_SUPPORT = 2  # agreeing annotations a name needs (chosen on train files only, docs/geocode.md)
BACKEND = "memory"


class Memory(Protocol):
    """What a resolver asks of a memory (:class:`PlaceMemory`, or a file re-read when it changes)."""

    def lookup(self, text: str) -> Candidate | None: ...

    def __len__(self) -> int: ...


@dataclass(frozen=True)
class Remembered:
    """One remembered name: the place its annotations agree on, and how many do."""

    text: str  # the name as first annotated
    place: Candidate
    support: int  # annotations within ACC_KM of ``place``
    seen: int  # annotations of the name

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "support": self.support, "seen": self.seen, "place": self.place.to_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Remembered:
        """An entry of a memory file; ``ValueError``/``TypeError``/``KeyError`` naming what is wrong."""
        text, support, seen = d["text"], _count(d["support"]), _count(d["seen"])
        if not isinstance(text, str):
            raise TypeError(f"text {text!r} is not a string")
        return cls(text, _checked(Candidate.from_dict(d["place"])), support, seen)


def _count(x: Any) -> int:
    if not isinstance(x, int) or isinstance(x, bool) or x < 0:
        raise ValueError(f"{x!r} is not a count")
    return x


def _problem(c: Candidate) -> str | None:
    """What makes ``c`` no place a resolver can answer with (a field of the wrong type, a point off the Earth)."""
    texts = (c.name, c.kind, c.feature_type, c.display_name)
    codes = (c.country_code, c.admin1, c.admin2)
    numbers = (c.lat, c.lon, c.population, c.importance, c.match, *(c.bbox or ()))
    if not all(isinstance(t, str) for t in texts) or not all(t is None or isinstance(t, str) for t in codes):
        return f"the place of {c.name!r} has a name or code that is not a string"
    if not all(is_number(x) and math.isfinite(x) for x in numbers) or (c.bbox is not None and len(c.bbox) != 4):
        return f"the place of {c.name!r} has a number that is not a finite number"
    if not on_earth(c.lat, c.lon):
        return f"the place of {c.name!r} is not on the Earth ({c.lat}, {c.lon})"
    return None


def _checked(c: Candidate) -> Candidate:
    problem = _problem(c)
    if problem is not None:
        raise ValueError(problem)
    return c


class PlaceMemory:
    """Remembered names by their lookup key; :meth:`lookup` gives the place of a name it keeps."""

    def __init__(self, places: Iterable[Remembered], *, min_support: int = MIN_SUPPORT, sources: Iterable[str] = ()):
        if min_support < 1:
            raise ConfigError(f"min_support={min_support} keeps names no annotation agrees on.", "pass 1 or more.")
        self.min_support = min_support
        self.sources = tuple(sources)
        self._places = {norm(r.text): r for r in places if norm(r.text) and _kept(r, min_support)}

    def __len__(self) -> int:
        return len(self._places)

    def __iter__(self) -> Iterator[Remembered]:
        return iter(self._places.values())

    def lookup(self, text: str) -> Candidate | None:
        """The remembered place of ``text`` (any spelling with the same key), or None."""
        r = self._places.get(norm(text))
        return r.place if r is not None else None

    def save(self, path: str | Path) -> None:
        doc = {
            "format": FORMAT,
            "min_support": self.min_support,
            "sources": list(self.sources),
            "places": [r.to_dict() for r in sorted(self, key=lambda r: (-r.support, r.text))],
        }
        try:
            Path(path).write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"Cannot write the place memory {path}: {exc}.", "pass a writable path.") from exc

    @classmethod
    def load(cls, path: str | Path) -> PlaceMemory:
        p = Path(path)
        fix = "write it with `lmr-geocode learn ANNOTATED.jsonl --out FILE`."
        try:
            doc = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(f"Cannot read the place memory {p}: {exc}.", fix) from exc
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise ConfigError(f'{p} is not a place memory (no "format": "{FORMAT}").', fix)
        try:
            places = [Remembered.from_dict(d) for d in doc["places"]]
            min_support, sources = _count(doc["min_support"]), doc.get("sources") or []
            if min_support < 1:
                raise ValueError(f"min_support {min_support} keeps names no annotation agrees on")
            if not isinstance(sources, list) or not all(isinstance(x, str) for x in sources):
                raise TypeError(f"sources {sources!r} is not a list of file names")
            return cls(places, min_support=min_support, sources=sources)
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"The place memory {p} has a bad entry ({exc!r}).", fix) from exc


def _kept(r: Remembered, min_support: int) -> bool:
    return r.support >= min_support and 2 * r.support > r.seen


def placed_mentions(path: str | Path) -> Iterator[tuple[str, Candidate]]:
    """``(mention text, annotated place)`` of every mention of one annotated JSONL file placed on the Earth."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p} does not exist.", "pass annotated files such as idrisi:lmd/train.")
    for n, row in json_records(p):
        try:
            yield from _placed(row)
        except (AttributeError, KeyError, TypeError, ValueError, OverflowError) as exc:
            raise DataError(
                f"{p}:{n} is not an annotated post ({exc!r}).",
                "pass IDRISI-D lmd/ files, or posts whose location_mentions carry lat/lon (or a Nominatim osm_json).",
            ) from exc


def _placed(row: Any) -> Iterator[tuple[str, Candidate]]:
    text = row["text"]
    if not isinstance(text, str):
        raise TypeError("'text' is not a string")
    for m in row.get("location_mentions") or []:
        start, end = mention_span(text, m)
        name = text[start:end] or str(m["text"])
        osm = m.get("osm_json")
        place = candidate_from_nominatim(osm) if isinstance(osm, dict) else _own_point(name, m)
        if place is None or _problem(place) is not None:
            continue  # no point, or one no resolver can answer with
        yield name, place


def _own_point(name: str, m: dict[str, Any]) -> Candidate | None:
    """A mention's own ``lat``/``lon`` (and optional ``kind``, ``country_code``, ``display_name``) as a place."""
    point = mention_point(m)
    if point is None:
        return None
    lat, lon, kind, cc = point
    kind = kind if kind in LEVEL else "poi"
    label = m.get("display_name")
    return Candidate(name, lat, lon, kind, kind, cc, display_name=label if isinstance(label, str) else name)


def learn(
    pairs: Iterable[tuple[str, Candidate]], *, min_support: int = MIN_SUPPORT, sources: Iterable[str] = ()
) -> PlaceMemory:
    """A memory of ``(name, place)`` annotations: per name, the annotated place most others agree with."""
    by_key: dict[str, list[tuple[str, Candidate]]] = defaultdict(list)
    for text, place in pairs:
        key = norm(text)
        if key:
            by_key[key].append((text, place))
    remembered = []
    for rows in by_key.values():
        place, support = _medoid([c for _, c in rows])
        remembered.append(Remembered(rows[0][0], place, support, len(rows)))
    return PlaceMemory(remembered, min_support=min_support, sources=sources)


def learn_files(files: Iterable[str | Path], *, min_support: int = MIN_SUPPORT) -> PlaceMemory:
    """:func:`learn` from annotated JSONL files (sources recorded by file and folder name)."""
    paths = [Path(f) for f in files]
    pairs = [pair for p in paths for pair in placed_mentions(p)]
    if not pairs:
        raise DataError("The files hold no placed mention.", "pass IDRISI-D lmd/ files (idrisi:lmd/train).")
    return learn(pairs, min_support=min_support, sources=(f"{p.parent.name}/{p.name}" for p in paths))


def _medoid(places: list[Candidate]) -> tuple[Candidate, int]:
    """The place with the most others within ACC_KM (itself included), and that count; first wins ties."""
    distinct: dict[tuple[float, float], Candidate] = {}
    weight: dict[tuple[float, float], int] = defaultdict(int)
    for c in places:
        key = (round(c.lat, 4), round(c.lon, 4))
        distinct.setdefault(key, c)
        weight[key] += 1
    best, best_n = places[0], -1
    for k, c in distinct.items():
        n = sum(w for o, w in weight.items() if haversine_km(k[0], k[1], o[0], o[1]) <= ACC_KM)
        if n > best_n:
            best, best_n = c, n
    return best, best_n
