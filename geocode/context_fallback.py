"""The context fallback (``ResolverOptions.fallback="context"``): a post's places settle its doubtful mentions.

Three rules run, in order, on one post's results (see :meth:`geocode.resolver.Resolver.resolve`):

1. :func:`drop_strangers`: with a settled stream prior, a small town in a country the stream never
   pointed at and that no other place of the post backs is a namesake of a place the gazetteer lacks.
2. :func:`drop_stray_partials`: a place found only from a word inside a longer mention, or a town for a
   point of interest, far from every place the post resolves or names (or, in a post with none, in a
   country the stream never pointed at), is less likely than the post's own place.
3. :func:`inherit`: a mention with no candidate takes the post's most specific resolved place (feature
   ``context``), else the stream's focus (feature ``stream``), else the most specific country or division
   the post names outside its mentions (feature ``context``).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence

from geocode.aliases import division_key
from geocode.disambiguate import Choice, ContextPlace
from geocode.gazetteer import haversine_km
from geocode.results import Candidate, Resolution, Unresolved, resolution
from geocode.stream_prior import StreamPrior
from lmr.place_types import PlaceType

Result = Resolution | Unresolved
STORM_DETAIL = "a storm's name, not a place"
LEVEL = {"city": 4, "admin2": 3, "admin1": 2, "country": 1}  # how specific a place's kind is (inherit)
INHERITED_SHARE = 0.25  # an inherited place's score: this share of the place it comes from


def drop_strangers(
    results: list[Result], choices: list[Choice], prior: StreamPrior | None, stream: str, max_population: int
) -> list[Result]:
    """With a settled stream prior, a town or district in a country the stream never pointed at, that no
    other place of the post backs (same country), and of under ``max_population`` people, is a
    namesake of a place the gazetteer lacks (Mati, Greece vs Mati, Philippines): drop it (it then
    inherits the post's or the stream's place)."""
    if prior is None or not prior.settled(stream):
        return results
    chosen = [
        ch.candidates[ch.best] if isinstance(r, Resolution) and ch.best is not None else None
        for r, ch in zip(results, choices, strict=True)
    ]
    per_country = Counter(c.country_code for c in chosen if c is not None)  # backed: another place, same country
    out: list[Result] = []
    for r, c in zip(results, chosen, strict=True):
        if (
            c is not None
            and c.kind in ("city", "admin2")
            and c.population < max_population
            and prior.affinity(stream, c) == 0.0
            and per_country[c.country_code] < 2
        ):
            out.append(Unresolved(r.text, r.start, r.end, "no_candidate", "a namesake far from the stream"))
            continue
        out.append(r)
    return out


def drop_stray_partials(
    results: list[Result],
    choices: list[Choice],
    types: list[PlaceType | None],
    named: Sequence[ContextPlace],
    prior: StreamPrior | None,
    stream: str,
    near_km: float,
) -> list[Result]:
    """A place found only from a word inside a longer mention ("Griffith" in "Griffith Park"), or a town for a
    mention the recognizer typed as a point of interest, street or natural feature, is less likely than the
    post's own place when it lies far from every place of the post, or, in a post with none, in a country the
    stream prior never pointed at: drop it (it then inherits the post's or the stream's place). The post's
    places are its solid resolutions (a full name) and the countries and divisions it names outside its mentions
    (``named``, :func:`geocode.disambiguate.scan_post`); a place is near one within ``near_km`` of it or inside it.
    """
    solid = [
        ch.candidates[ch.best]
        for r, ch in zip(results, choices, strict=True)
        if isinstance(r, Resolution)
        and ch.best is not None
        and ch.candidates[ch.best].match >= 0.7
        and ch.candidates[ch.best].kind in LEVEL
    ]
    solid.extend(c for place in named for c in place.candidates)
    heard = prior if prior is not None and prior.top(stream) else None  # the stream prior, once it has heard anything
    out: list[Result] = []
    for r, ch, t in zip(results, choices, types, strict=True):
        if isinstance(r, Resolution) and ch.best is not None:
            c = ch.candidates[ch.best]
            stray = c.match < 0.7 or (t == "poi" and c.kind == "city")
            if solid:
                far = not any(_near(c, o, near_km) for o in solid)
            else:
                far = heard is not None and heard.affinity(stream, c) == 0.0
            if stray and far:
                out.append(Unresolved(r.text, r.start, r.end, "no_candidate", "only a partial name match"))
                continue
        out.append(r)
    return out


def _near(c: Candidate, o: Candidate, near_km: float) -> bool:
    """Whether ``c`` lies within ``near_km`` of place ``o`` or inside it (a country or first-level division)."""
    same_country = c.country_code is not None and c.country_code == o.country_code
    in_division = o.kind == "admin1" and bool(c.admin1) and division_key(c.admin1 or "") == division_key(o.name)
    if same_country and (o.kind == "country" or in_division):
        return True
    return haversine_km(c.lat, c.lon, o.lat, o.lon) <= near_km


def inherit(
    results: list[Result],
    choices: list[Choice],
    named: Sequence[ContextPlace],
    prior: StreamPrior | None,
    stream: str,
    backend: str,
) -> list[Result]:
    """A mention with no candidate takes the post's most specific resolved place (feature ``context``), else,
    with a settled stream prior, the stream's focus (feature ``stream``), else the most specific country or
    division the post names outside its mentions (``named``; feature ``context``)."""
    best: Resolution | None = None
    best_level = 0
    for r, ch in zip(results, choices, strict=True):
        if isinstance(r, Resolution) and ch.best is not None:
            lv = LEVEL.get(ch.candidates[ch.best].kind, 0)
            if lv > best_level:
                best, best_level = r, lv
    feature = "context"
    if best is None and prior is not None and (focus := prior.focus(stream)) is not None:
        best, feature = resolution(focus.name, (0, 0), focus, 1.0, backend), "stream"
    if best is None:
        best = _named_place(named, backend)
    if best is None:
        return results
    out: list[Result] = []
    for r in results:
        if isinstance(r, Unresolved) and r.reason == "no_candidate" and r.detail != STORM_DETAIL:
            out.append(
                dataclasses.replace(
                    best,
                    text=r.text,
                    start=r.start,
                    end=r.end,
                    feature_type=feature,
                    backend=backend,
                    score=round(INHERITED_SHARE * best.score, 4),
                )
            )
        else:
            out.append(r)
    return out


def _named_place(named: Sequence[ContextPlace], backend: str) -> Resolution | None:
    """The most specific country or division the post names outside its mentions (the first of its level)."""
    best: Resolution | None = None
    best_level = 0
    for place in named:
        c = max(place.candidates, key=lambda x: x.match + x.importance)
        if LEVEL.get(c.kind, 0) > best_level:
            best, best_level = resolution(c.name, place.span, c, 1.0, backend), LEVEL[c.kind]
    return best
