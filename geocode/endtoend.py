"""End-to-end scoring: places on a map against the annotators' places.

A crisis team consumes places, not spans or geocodes, so recognition and resolution are scored together.
An output place is a location the pipeline emitted *with a point* (a location whose ``geo`` is null or
unresolved puts nothing on a map: it is counted apart, ``n_unplaced_outputs``, not in precision).

* **exact**: a gold place is found when an output place has its exact span and lies within ``km`` of the gold
  point; **overlap**: when an output place overlapping it does (each gold place and each output used once,
  pairs within ``km`` first). precision = found / output places, recall = found / gold places.
* A gold place found with a wrong point is a miss *and* a wrong output.
* An output place that overlaps no gold place but overlaps a span the gold marks without a point (see
  :mod:`geocode.endtoend_gold`) cannot be judged: it is left out of precision (``n_unjudged``).

Every miss (exact) has one cause, checked in this order: ``unresolved`` (an output with the span but no point),
``wrong_level`` (with the span, beyond ``km``, at another admin level of the same or an unknown country: a
county for a city), ``namesake`` (with the span, beyond ``km``, otherwise), ``other_span`` (no output with the
span, but one overlapping it), ``not_recognised`` (nothing overlapping it). Every wrong output place has one
too: ``wrong_level`` or ``namesake`` (the span of a gold place, beyond ``km``), ``other_span`` (overlapping a
gold place with another span), ``spurious`` (touching no gold span).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geocode import placed
from geocode.disambiguate import LEVEL
from geocode.endtoend_gold import GoldPlace, GoldPost, gold_note, read_gold
from geocode.geo import ACC_KM, haversine_km
from lmr.errors import DataError
from lmr.evaluation import read_events
from lmr.posts import DEFAULT_ID_FIELD
from lmr.readers import DEFAULT_LABEL, Span
from lmr.scoring import Counts, HasSpan

if TYPE_CHECKING:
    from geocode.resolver import Resolver

MISS_CAUSES = ("not_recognised", "other_span", "unresolved", "namesake", "wrong_level")
WRONG_CAUSES = ("spurious", "other_span", "namesake", "wrong_level")
SpanKey = tuple[int, int]


@dataclass(frozen=True)
class OutputPlace:
    """One emitted location: its span and, when it was placed, its point and level."""

    start: int
    end: int
    text: str = ""
    lat: float | None = None
    lon: float | None = None
    kind: str = ""
    country_code: str | None = None
    name: str = ""

    @property
    def point(self) -> tuple[float, float] | None:
        return (self.lat, self.lon) if self.lat is not None and self.lon is not None else None

    @property
    def placed(self) -> bool:
        return self.point is not None


def output_place(loc: Any) -> OutputPlace | None:
    """An enriched event's location (``start``, ``end``, ``geo``) as an output place; None when it has no span."""
    if not isinstance(loc, dict) or not isinstance(loc.get("start"), int) or not isinstance(loc.get("end"), int):
        return None
    geo = loc.get("geo")
    text = str(loc.get("text") or "")
    if not placed.is_placed(geo):
        return OutputPlace(loc["start"], loc["end"], text)
    cc = geo.get("country_code")
    return OutputPlace(
        loc["start"],
        loc["end"],
        text,
        float(geo["lat"]),
        float(geo["lon"]),
        str(geo.get("kind") or ""),
        cc if isinstance(cc, str) else None,
        str(geo.get("display_name") or ""),
    )


def output_places(locations: Iterable[Any]) -> list[OutputPlace]:
    """The output places of an enriched event's ``locations`` (entries without a span are skipped)."""
    return [o for loc in locations if (o := output_place(loc)) is not None]


def event_outputs(posts: Sequence[GoldPost], events: dict[str, dict[str, Any]]) -> list[list[OutputPlace]]:
    """Each gold post's output places, read from the event with its id (a post with no event emitted nothing)."""
    return [output_places(events[p.id].get("locations") or []) if p.id in events else [] for p in posts]


def resolve_outputs(
    resolver: Resolver,
    posts: Sequence[GoldPost],
    predicted: Sequence[Sequence[HasSpan]],
    *,
    threshold: float | None = None,
    by_event: bool = True,
) -> list[list[OutputPlace]]:
    """Resolve each post's predicted spans, in order, as the worker's geocode stage does (label kept): the
    output places ``lmr-worker run --geocoder`` would emit.

    With ``threshold``, a span scoring below it is kept only when it is placed (:mod:`geocode.placed`).
    ``by_event`` keys the stream prior by the post's event, as the worker does for posts with an ``event``
    field; otherwise one key serves every post, as for posts without one."""
    out = []
    for post, spans in zip(posts, predicted, strict=True):
        ms = [Span(p.start, p.end, getattr(p, "label", DEFAULT_LABEL), text=post.text[p.start : p.end]) for p in spans]
        stream = post.event if by_event else ""
        geos = [r.to_dict() for r in resolver.resolve(ms, post.text, stream=stream)] if ms else []
        scores = [float(getattr(p, "score", 1.0)) for p in spans]
        kept = placed.keep(scores, geos, threshold) if threshold is not None else [True] * len(ms)
        out.append(
            output_places(
                {"text": m.text, "start": m.start, "end": m.end, "geo": g}
                for m, g, k in zip(ms, geos, kept, strict=True)
                if k
            )
        )
    return out


@dataclass(frozen=True)
class Miss:
    gold: GoldPlace
    cause: str
    output: OutputPlace | None = None
    km: float | None = None


@dataclass(frozen=True)
class Wrong:
    output: OutputPlace
    cause: str
    gold: GoldPlace | None = None
    km: float | None = None


@dataclass
class PostScore:
    """What one post scored: found gold places (with their outputs), misses, wrong outputs."""

    post: GoldPost
    found: list[tuple[GoldPlace, OutputPlace]] = field(default_factory=list)
    misses: list[Miss] = field(default_factory=list)
    wrong: list[Wrong] = field(default_factory=list)
    unjudged: int = 0
    unplaced: int = 0
    overlap: Counts = field(default_factory=Counts)

    @property
    def errors(self) -> int:
        """Misses + wrong outputs (a gold place found with a wrong point counts twice: a miss and a wrong output)."""
        return len(self.misses) + len(self.wrong)

    @property
    def exact(self) -> Counts:
        return Counts(len(self.found), len(self.found) + len(self.wrong), len(self.found) + len(self.misses))


def _overlap(a: Any, b: Any) -> bool:
    return bool(a.start < b.end and b.start < a.end)


def _far_cause(g: GoldPlace, o: OutputPlace) -> str:
    """``wrong_level`` when both levels are known, differ, and the countries agree (or one is unknown)."""
    lg, lo = LEVEL.get(g.kind), LEVEL.get(o.kind)
    same_country = g.country_code is None or o.country_code is None or g.country_code == o.country_code
    return "wrong_level" if lg is not None and lo is not None and lg != lo and same_country else "namesake"


def _unique(items: Iterable[Any], prefer: Any = None) -> dict[SpanKey, Any]:
    """One item per span (the first, or the first ``prefer`` accepts)."""
    out: dict[SpanKey, Any] = {}
    for it in items:
        key = (it.start, it.end)
        if key not in out or (prefer is not None and prefer(it) and not prefer(out[key])):
            out[key] = it
    return out


def score_post(post: GoldPost, outputs: Sequence[OutputPlace], km: float = ACC_KM) -> PostScore:
    """Score one post's outputs against its gold places (see the module docstring)."""
    gold: dict[SpanKey, GoldPlace] = _unique(post.places)
    outs: dict[SpanKey, OutputPlace] = _unique(outputs, prefer=lambda o: o.placed)
    res = PostScore(post, unplaced=sum(not o.placed for o in outs.values()))
    dist = {
        s: haversine_km(g.lat, g.lon, o.lat, o.lon)
        for s, g in gold.items()
        if (o := outs.get(s)) is not None and o.lat is not None and o.lon is not None
    }
    for s, g in gold.items():
        o = outs.get(s)
        if o is not None and s in dist and dist[s] <= km:
            res.found.append((g, o))
        elif o is not None and s in dist:
            res.misses.append(Miss(g, _far_cause(g, o), o, dist[s]))
        elif o is not None:
            res.misses.append(Miss(g, "unresolved", o))
        elif any(_overlap(g, x) for x in outs.values()):
            res.misses.append(Miss(g, "other_span", next(x for x in outs.values() if _overlap(g, x))))
        else:
            res.misses.append(Miss(g, "not_recognised"))
    unjudged: set[SpanKey] = set()
    for s, o in outs.items():
        if not o.placed or (s in dist and dist[s] <= km):
            continue
        if s in gold:
            res.wrong.append(Wrong(o, _far_cause(gold[s], o), gold[s], dist[s]))
        elif any(_overlap(o, g) for g in gold.values()):
            res.wrong.append(Wrong(o, "other_span", next(g for g in gold.values() if _overlap(o, g))))
        elif any(o.start < b and a < o.end for a, b in post.unplaceable):
            unjudged.add(s)
        else:
            res.wrong.append(Wrong(o, "spurious"))
    res.unjudged = len(unjudged)
    placed = [o for s, o in outs.items() if o.placed and s not in unjudged]
    res.overlap = Counts(_overlap_found(list(gold.values()), placed, km), len(placed), len(gold))
    return res


def _overlap_found(gold: Sequence[GoldPlace], outs: Sequence[OutputPlace], km: float) -> int:
    """Gold places found by an overlapping output within ``km``, one to one, nearest pairs first."""
    pairs = sorted(
        (haversine_km(g.lat, g.lon, o.lat, o.lon), i, j)
        for i, g in enumerate(gold)
        for j, o in enumerate(outs)
        if _overlap(g, o) and o.lat is not None and o.lon is not None
    )
    used_g: set[int] = set()
    used_o: set[int] = set()
    found = 0
    for d, i, j in pairs:
        if d > km:
            break
        if i not in used_g and j not in used_o:
            used_g.add(i)
            used_o.add(j)
            found += 1
    return found


def _prf(c: Counts) -> dict[str, Any]:
    return {
        "precision": round(c.precision, 4),
        "recall": round(c.recall, 4),
        "f1": round(c.f1, 4),
        "n_gold": c.n_gold,
        "n_pred": c.n_pred,
        "tp": c.tp,
    }


def _shares(counts: Counter[str], causes: Sequence[str]) -> dict[str, dict[str, Any]]:
    total = sum(counts.values())
    return {c: {"n": counts[c], "share": round(counts[c] / total, 4) if total else 0.0} for c in causes}


def summarise(scores: Sequence[PostScore], km: float = ACC_KM) -> dict[str, Any]:
    """The figures of scored posts: overall, per event, per language, per gold type, errors by cause."""
    exact, overlap = Counts(), Counts()
    groups: dict[str, dict[str, Counts]] = {"by_event": defaultdict(Counts), "by_lang": defaultdict(Counts)}
    by_type: dict[str, Counter[str]] = defaultdict(Counter)
    misses: Counter[str] = Counter()
    wrong: Counter[str] = Counter()
    for s in scores:
        exact.add(s.exact)
        overlap.add(s.overlap)
        groups["by_event"][s.post.event].add(s.exact)
        groups["by_lang"][s.post.lang or "unknown"].add(s.exact)
        misses.update(m.cause for m in s.misses)
        wrong.update(w.cause for w in s.wrong)
        for g, _ in s.found:
            by_type[g.type]["found"] += 1
        for m in s.misses:
            by_type[m.gold.type][m.cause] += 1
    out: dict[str, Any] = {"km": km, **_prf(exact)}
    out.update({f"overlap_{k}": v for k, v in _prf(overlap).items() if k in ("precision", "recall", "f1", "tp")})
    out["n_posts"] = len(scores)
    out["n_unplaced_outputs"] = sum(s.unplaced for s in scores)
    out["n_unjudged"] = sum(s.unjudged for s in scores)
    out["n_unplaceable_gold"] = sum(len(s.post.unplaceable) for s in scores)
    out["misses"] = _shares(misses, MISS_CAUSES)
    out["wrong"] = _shares(wrong, WRONG_CAUSES)
    for name, counts in groups.items():
        out[name] = {k: _prf(c) for k, c in sorted(counts.items())}
    out["by_type"] = {
        t: {"recall": round(c["found"] / n, 4), "n": n, "misses": {k: c[k] for k in MISS_CAUSES if c[k]}}
        for t, c in sorted(by_type.items())
        if (n := sum(c.values()))
    }
    out["note"] = (
        f"A gold place counts as found when an output place has its span and lies within {km:g} km of it; "
        "found with a wrong point, it is a miss and a wrong output. Locations without a point "
        f"({out['n_unplaced_outputs']}) are not output places. "
        + gold_note([s.post for s in scores])
        + f" Output places on them, left out of precision as they cannot be judged: {out['n_unjudged']}."
    )
    return out


def score_outputs(
    posts: Sequence[GoldPost], outputs: Sequence[Sequence[OutputPlace]], km: float = ACC_KM
) -> tuple[dict[str, Any], list[PostScore]]:
    """Score each gold post against its outputs (one list per post): the summary and the per-post scores."""
    scores = [score_post(p, o, km) for p, o in zip(posts, outputs, strict=True)]
    return summarise(scores, km), scores


def score_event_files(
    outputs: Sequence[str | Path], gold: Sequence[str | Path], *, id_field: str = DEFAULT_ID_FIELD, km: float = ACC_KM
) -> tuple[dict[str, Any], list[PostScore]] | None:
    """Score a worker's output events end to end against ``gold``; None when no gold mention carries a point."""
    posts = read_gold(gold)
    if posts is None:
        return None
    return score_outputs(posts, event_outputs(posts, read_events(outputs, id_field)), km)


def score_model_predictions(
    backend: str,
    gold: Sequence[str | Path],
    predicted: Sequence[tuple[Any, Sequence[HasSpan]]],
    *,
    km: float = ACC_KM,
    threshold: float | None = None,
    by_event: bool = True,
    prior: bool = True,
    memory: str | Path | None = None,
) -> tuple[dict[str, Any], list[PostScore]]:
    """Resolve a model's predictions on ``gold`` with ``backend`` (stream prior on, as ``lmr-worker run`` has it)
    and score them end to end. ``predicted``: each gold post (an :class:`~lmr.readers.Example` read from the same
    files, in order) with its predicted mentions; with ``threshold``, those below it count only when placed
    (:func:`resolve_outputs`); ``memory``: a place memory file (:mod:`geocode.memory`)."""
    from geocode.resolver import build_resolver

    posts = read_gold(gold)
    if posts is None:
        raise DataError(
            "No gold mention carries a point, so places cannot be scored end to end.",
            "pass IDRISI-D files (idrisi:lmd/dev) or mentions with lat/lon, or leave out --geocoder.",
        )
    if [p.id for p in posts] != [ex.id for ex, _ in predicted]:
        raise DataError("The predictions do not follow the gold posts.", "read both from the same files.")
    resolver = build_resolver(backend, prior=prior, memory=memory)
    spans = [ms for _, ms in predicted]
    outputs = resolve_outputs(resolver, posts, spans, threshold=threshold, by_event=by_event)
    return score_outputs(posts, outputs, km)


def summary_lines(r: dict[str, Any]) -> list[str]:
    """The end-to-end result as the CLIs print it."""

    def causes(d: dict[str, dict[str, Any]]) -> str:
        return ", ".join(f"{c.replace('_', ' ')} {v['n']} ({v['share']:.0%})" for c, v in d.items() if v["n"]) or "-"

    lines = [
        f"end to end (within {r['km']:g} km): places {r['n_gold']} gold, {r['n_pred']} output, {r['tp']} found",
        f"  exact   P {r['precision']:.4f}  R {r['recall']:.4f}  F1 {r['f1']:.4f}",
        f"  overlap P {r['overlap_precision']:.4f}  R {r['overlap_recall']:.4f}  F1 {r['overlap_f1']:.4f}",
        f"  misses by cause: {causes(r['misses'])}",
        f"  wrong outputs by cause: {causes(r['wrong'])}",
    ]
    for name in ("by_event", "by_lang"):
        if len(r[name]) > 1:
            cells = "  ".join(f"{k} {v['f1']:.3f}" for k, v in r[name].items())
            lines.append(f"  F1 {name.replace('by_', 'per ')}: {cells}")
    lines.append(f"  {r['note']}")
    return lines
