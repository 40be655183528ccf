"""The context fallback (``ResolverOptions.fallback="context"``): a post's places settle its doubtful mentions.

Three rules run, in order, on one post's results (see :meth:`geocode.resolver.Resolver.resolve`):

1. :func:`drop_strangers`: with a settled stream prior, a small town in a country the stream never
   pointed at and that no other place of the post backs is a namesake of a place the gazetteer lacks.
2. :func:`drop_stray_partials`: a place found only from a word inside a longer mention, or a town for a
   point of interest, far from every other place of the post, is less likely than the post's own place.
3. :func:`inherit`: a mention with no candidate takes the post's most specific resolved place (feature
   ``context``), else the stream's focus (feature ``stream``).
"""

from __future__ import annotations

import dataclasses
from collections import Counter

from geocode.disambiguate import Choice
from geocode.gazetteer import haversine_km
from geocode.results import Resolution, Unresolved, resolution
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
    results: list[Result], choices: list[Choice], types: list[PlaceType | None], near_km: float
) -> list[Result]:
    """A place found only from a word inside a longer mention ("Griffith" in "Griffith Park"), or a town for a
    mention the recognizer typed as a point of interest, street or natural feature, that lies far from every
    other place of the post is less likely than the post's own place: drop it (it then inherits that place)."""
    solid = [
        ch.candidates[ch.best]
        for r, ch in zip(results, choices, strict=True)
        if isinstance(r, Resolution)
        and ch.best is not None
        and ch.candidates[ch.best].match >= 0.7
        and ch.candidates[ch.best].kind in ("city", "admin2", "admin1")
    ]
    if not solid:
        return results
    out: list[Result] = []
    for r, ch, t in zip(results, choices, types, strict=True):
        if isinstance(r, Resolution) and ch.best is not None:
            c = ch.candidates[ch.best]
            stray = c.match < 0.7 or (t == "poi" and c.kind == "city")
            if stray and all(haversine_km(c.lat, c.lon, o.lat, o.lon) > near_km for o in solid):
                out.append(Unresolved(r.text, r.start, r.end, "no_candidate", "only a partial name match"))
                continue
        out.append(r)
    return out


def inherit(
    results: list[Result], choices: list[Choice], prior: StreamPrior | None, stream: str, backend: str
) -> list[Result]:
    """A mention with no candidate takes the post's most specific resolved place (feature ``context``), else,
    with a settled stream prior, the stream's focus (feature ``stream``)."""
    best: Resolution | None = None
    best_level = 0
    for r, ch in zip(results, choices, strict=True):
        if isinstance(r, Resolution) and ch.best is not None:
            lv = LEVEL.get(ch.candidates[ch.best].kind, 0)
            if lv > best_level:
                best, best_level = r, lv
    feature = "context"
    if best is None:
        focus = prior.focus(stream) if prior is not None else None
        if focus is None:
            return results
        best, feature = resolution(focus.name, (0, 0), focus, 1.0, backend), "stream"
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
