"""Choosing one candidate per mention from the post, the event context and priors.

Score of candidate ``c`` for mention ``m`` (weights in :class:`Weights`, tuned on
IDRISI-D *train*)::

    score = w_match  * match(c)                # name quality x query-variant weight
          + w_prior  * importance(c)           # kind and population, like Nominatim's importance
          + kind(m, c)                         # mention shape: "... County" wants a county, etc.
          + w_region * in_region(c)            # event context: country codes / bounding box
          + w_ctx    * min(support(c), cap)    # co-mentioned places in the same post
          + type(m, c)                         # the recognizer's place type, when it gives one
          + stream(c)                          # the stream prior (geocode.stream_prior), when enabled

``support`` sums, over the other mentions of the post and over the countries and
first-level divisions named anywhere in the post (a place right after a comma,
as in "Luling, Texas", counts double), the probability of each of their
candidates times how the two places relate: ``c`` lies in that country or
division, contains that place, or lies within 150 km of it. The probabilities
come from a softmax over the scores, recomputed for ``rounds`` rounds, so that
mentions settle on a consistent reading together ("Georgia" next to
"Atlanta" is the US state; next to "Tbilisi", the country). That joint step
costs ``rounds x (mentions x candidates)^2``, so it takes the first
:data:`MAX_JOINT` mentions of a post that have candidates; any further mention
is scored alone (every term but ``support``), so a post listing 1,000 towns
costs no more than one listing 16, plus a term per mention.

The final ``score`` of a resolution is the softmax probability of the chosen
candidate. A mention with no candidate is ``no_candidate``; one whose best
probability is below ``min_confidence`` is ``ambiguous``.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from geocode import arabic
from geocode.aliases import division_key
from geocode.geo import haversine_km
from geocode.results import Candidate, GeoContext
from geocode.text import shape_hint
from lmr.names import norm
from lmr.place_types import PlaceType

#: The most mentions of one post scored together (see the module docstring). IDRISI-D's posts name at most 9.
MAX_JOINT = 16

#: Admin level of a candidate kind: 0 continent/region, 1 country ... 5 point of interest.
LEVEL = {"continent": 0, "region": 0, "country": 1, "admin1": 2, "admin2": 3, "city": 4, "poi": 5}


@dataclass(frozen=True)
class Weights:
    """Scoring weights (see the module docstring)."""

    match: float = 1.6
    prior: float = 1.4
    region: float = 0.6
    region_outside: float = 0.15
    ctx: float = 0.45
    ctx_cap: float = 2.5
    kind: float = 0.3
    near_km: float = 150.0
    temperature: float = 0.12
    rounds: int = 2
    support_min_match: float = 0.7  # partial matches ("Chico" in "Chico's WalMart") support no one
    type: float = 0.3  # the recognizer's place type: a candidate of that kind gains this, another loses it


#: Which candidate kinds each recognizer type wants (first: the best fit).
_TYPE_KINDS: dict[str, tuple[str, ...]] = {
    "country": ("country",),
    "admin": ("admin1", "admin2"),
    "city": ("city", "admin2"),
    "poi": ("poi", "city"),
    "street": ("poi", "city"),
    "natural": ("poi", "admin2", "admin1", "city"),
}


def type_bonus(t: PlaceType | None, c: Candidate, w: Weights) -> float:
    """The recognizer's type, gently (annotators call a region such as Attica a "city"): ``+w.type`` for the
    best-fitting kind, half for another fitting kind, ``-w.type`` only for a contradiction (a country for a
    sub-national type or the reverse), else nothing."""
    kinds = _TYPE_KINDS.get(t or "")
    if not kinds:
        return 0.0
    if c.kind == kinds[0]:
        return w.type
    if c.kind in kinds:
        return w.type / 2
    national = c.kind in ("country", "continent", "region")
    return -w.type if national != (t == "country") else 0.0


@dataclass(frozen=True)
class ContextPlace:
    """A place named in the post outside the mention being resolved."""

    candidates: tuple[Candidate, ...]
    weight: float
    key: str
    span: tuple[int, int]


def kind_bonus(hint: str | None, c: Candidate, w: Weights) -> float:
    if hint is None:
        return 0.0
    if hint == c.kind:
        return w.kind
    if hint == "admin2" and c.kind == "city":
        return -w.kind / 2
    if hint == "island" and c.kind in ("admin1", "admin2", "country"):
        return w.kind / 2
    if hint == "city" and c.kind == "admin2":
        return 0.0
    if hint == "poi":
        return 0.0
    return -w.kind / 3


def region_bonus(c: Candidate, context: GeoContext | None, w: Weights) -> float:
    if context is None or context.empty:
        return 0.0
    inside = False
    if context.country_codes and c.country_code in context.country_codes:
        inside = True
    if context.bbox is not None and context.contains(c.lat, c.lon):
        inside = True
    if inside:
        return w.region
    if c.kind in ("continent", "region", "country"):
        return 0.0
    return -w.region_outside


def relation(c: Candidate, o: Candidate, near_km: float) -> float:
    """How strongly place ``o`` named in the post supports candidate ``c`` (0..1.3)."""
    if c.kind in ("continent", "region") or o.kind in ("continent", "region"):
        return 0.0
    lc, lo = LEVEL.get(c.kind, 5), LEVEL.get(o.kind, 5)
    same_cc = c.country_code is not None and c.country_code == o.country_code
    if not same_cc:
        if lc >= 2 and lo >= 2 and haversine_km(c.lat, c.lon, o.lat, o.lon) < near_km:
            return 0.6
        return 0.0
    if o.kind == "country":
        return 0.0 if c.kind == "country" else 1.0
    if c.kind == "country":
        return 0.7
    if o.kind == "admin1" and c.admin1 and division_key(c.admin1) == division_key(o.name) and lc > 2:
        return 1.3
    if c.kind == "admin1" and o.admin1 and division_key(o.admin1) == division_key(c.name) and lo > 2:
        return 1.1
    if o.kind == "admin2" and lc > 3 and c.admin2 and norm(c.admin2) == norm(o.name):
        return 1.2
    if c.kind == "admin2" and lo > 3 and o.admin2 and norm(o.admin2) == norm(c.name):
        return 1.2
    if lc >= 2 and lo >= 2:
        d = haversine_km(c.lat, c.lon, o.lat, o.lon)
        if d < near_km:
            return 0.9
        if d < 2 * near_km:
            return 0.6
        return 0.5  # two places of the same country ("Florida and Georgia")
    return 0.25


def _softmax(scores: Sequence[float], temperature: float) -> list[float]:
    if not scores:
        return []
    m = max(scores)
    ex = [math.exp((s - m) / temperature) for s in scores]
    z = sum(ex)
    return [e / z for e in ex]


def base_score(c: Candidate, hint: str | None, context: GeoContext | None, w: Weights) -> float:
    return w.match * c.match + w.prior * c.importance + kind_bonus(hint, c, w) + region_bonus(c, context, w)


@dataclass(frozen=True)
class Choice:
    """The outcome for one mention: candidates with their final scores and probabilities."""

    candidates: tuple[Candidate, ...]
    scores: tuple[float, ...]
    probs: tuple[float, ...]
    bonus: tuple[float, ...] = ()  # the stream prior's share of each score

    @property
    def best(self) -> int | None:
        if not self.candidates:
            return None
        return max(range(len(self.scores)), key=self.scores.__getitem__)

    def ranked(self) -> list[int]:
        """Candidate indexes, most probable first."""
        return sorted(range(len(self.scores)), key=self.scores.__getitem__, reverse=True)

    def own_probability(self, k: int, temperature: float) -> float:
        """The probability of candidate ``k`` without the stream prior's bonus (what may teach the prior)."""
        if not self.bonus:
            return self.probs[k]
        return _softmax([s - b for s, b in zip(self.scores, self.bonus, strict=True)], temperature)[k]


def choose(
    texts: Sequence[str],
    spans: Sequence[tuple[int, int]],
    cands: Sequence[Sequence[Candidate]],
    extra: Sequence[ContextPlace],
    context: GeoContext | None,
    w: Weights | None = None,
    *,
    types: Sequence[PlaceType | None] | None = None,
    bonus: Sequence[Sequence[float]] | None = None,
) -> list[Choice]:
    """Score every mention's candidates together (see the module docstring).

    ``types`` are the recognizer's place types per mention (``None``: untyped); ``bonus`` adds a
    per-candidate score such as the stream prior's.
    """
    w = w or Weights()
    hints = [shape_hint(t) for t in texts]
    keys = [norm(t) for t in texts]
    kinds = list(types) if types is not None else [None] * len(texts)
    extra_score = [list(b) for b in bonus] if bonus is not None else [[0.0] * len(cs) for cs in cands]
    base = [
        [base_score(c, hints[i], context, w) + type_bonus(kinds[i], c, w) + extra_score[i][k] for k, c in enumerate(cs)]
        for i, cs in enumerate(cands)
    ]
    probs = [_softmax(b, w.temperature) for b in base]
    scores = base
    joint = [i for i, cs in enumerate(cands) if cs][:MAX_JOINT]
    extra_probs = [_softmax([x.match + x.importance for x in e.candidates], 0.1) for e in extra]
    for _ in range(max(w.rounds, 0) if len(cands) + len(extra) > 1 else 0):
        new_scores = list(base)  # a mention outside the joint step keeps its own score
        for i in joint:
            others: list[tuple[Sequence[Candidate], Sequence[float], float]] = [
                (cands[j], probs[j], 1.0)
                for j in joint
                if j != i and keys[j] != keys[i] and not _overlap(spans[i], spans[j])
            ]
            others.extend(
                (e.candidates, ep, e.weight)
                for e, ep in zip(extra, extra_probs, strict=True)
                if e.key != keys[i] and not _overlap(spans[i], e.span)
            )
            support = [min(_support(c, others, w), w.ctx_cap) for c in cands[i]]
            new_scores[i] = [b + w.ctx * s for b, s in zip(base[i], support, strict=True)]
        scores = new_scores
        probs = [_softmax(s, w.temperature) for s in scores]
    return [
        Choice(tuple(cs), tuple(scores[i]), tuple(probs[i]), tuple(extra_score[i]) if bonus is not None else ())
        for i, cs in enumerate(cands)
    ]


def _support(c: Candidate, others: Sequence[tuple[Sequence[Candidate], Sequence[float], float]], w: Weights) -> float:
    """What the post's other places say for ``c``: per other place, its best probability x relation, weighted."""
    support = 0.0
    for ocands, oprobs, weight in others:
        best = 0.0
        for oc, p in zip(ocands, oprobs, strict=True):
            if p < 0.02 or oc.match < w.support_min_match:
                continue
            best = max(best, p * relation(c, oc, w.near_km))
        support += weight * best
    return support


def _overlap(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


_CAP_SEQ = re.compile(
    r"(?:(?<=\s)|(?<=^)|(?<=[#(\"']))([A-Z][\w'’.\-]*(?:\s+(?:of\s+|de\s+|the\s+)?[A-Z][\w'’.\-]*){0,3})"
)


def scan_post(
    post: str,
    mention_spans: Sequence[tuple[int, int]],
    lookup: Callable[[str], list[Candidate]],
    *,
    max_places: int = 8,
) -> list[ContextPlace]:
    """Countries and first-level divisions named in the post outside the mentions: the longest capitalised
    phrase that names one, and, as Arabic has no capitals, the longest run of up to three Arabic words
    (:func:`geocode.arabic.word_runs`, looked up by :func:`geocode.arabic.phrase_keys`)."""
    out: list[ContextPlace] = []
    inside = _Spans(mention_spans)
    for m in _CAP_SEQ.finditer(post):
        start, end = m.span(1)
        if inside.overlaps(start, end):
            continue
        words = m.group(1).split()
        # Try the longest prefix that names a country or division.
        for n in range(len(words), 0, -1):
            phrase = " ".join(words[:n]).rstrip(".,'’")
            cands = _strong(lookup, [(phrase, 1.0)])
            if cands:
                span_end = start + len(phrase)
                after_comma = bool(re.search(r",\s*$", post[max(0, start - 3) : start]))
                out.append(ContextPlace(cands, 1.5 if after_comma else 0.6, norm(phrase), (start, span_end)))
                break
        if len(out) >= max_places:
            return out
    for run in arabic.word_runs(post):
        i = 0
        while i < len(run) and len(out) < max_places:
            i += _arabic_place(post, run[i : i + 3], inside, lookup, out)
    return out


def _arabic_place(
    post: str,
    words: Sequence[tuple[int, int]],
    inside: _Spans,
    lookup: Callable[[str], list[Candidate]],
    out: list[ContextPlace],
) -> int:
    """Append the country or division the longest leading run of ``words`` names; the count of words it took (1
    when none)."""
    for n in range(len(words), 0, -1):
        start, end = words[0][0], words[n - 1][1]
        if inside.overlaps(start, end):
            continue
        keys = arabic.phrase_keys([post[a:b] for a, b in words[:n]])
        cands = _strong(lookup, keys)
        if cands:
            out.append(ContextPlace(cands, 0.6, keys[0][0], (start, end)))
            return n
    return 1


def _strong(lookup: Callable[[str], list[Candidate]], keys: Sequence[tuple[str, float]]) -> tuple[Candidate, ...]:
    """The countries and first-level divisions the first of ``keys`` that names one names strongly (``match`` x the
    key's weight >= 0.85), best six."""
    for key, weight in keys:
        cands = [
            dataclasses.replace(c, match=round(c.match * weight, 4))
            for c in lookup(key)
            if c.kind in ("country", "admin1") and c.match * weight >= 0.85
        ]
        if cands:
            return tuple(cands[:6])
    return ()


class _Spans:
    """Whether a span overlaps any of a post's mention spans, in O(log n) (a post may list 1,000 places)."""

    def __init__(self, spans: Sequence[tuple[int, int]]) -> None:
        ordered = sorted(spans)
        self.starts = [a for a, _ in ordered]
        # running maximum of the ends: the furthest reach of any span starting at or before each one
        self.reach: list[int] = []
        for _, b in ordered:
            self.reach.append(max(b, self.reach[-1]) if self.reach else b)

    def overlaps(self, start: int, end: int) -> bool:
        i = bisect.bisect_left(self.starts, end)  # spans [0, i) start before ``end``
        return i > 0 and self.reach[i - 1] > start
