"""Evaluation on IDRISI-D: resolve the gold mentions and compare with the annotators' OSM points.

``acc_161`` counts every gold mention: an unresolved mention is a miss.
``coverage`` is the share resolved; ``median_km``/``mean_km`` are over resolved
mentions. ``by_type`` and ``by_event`` break the same numbers down.

Options: ``order="arrival"`` replays each event's posts by ``created_at`` (as a
stream would see them; the stream prior, if the resolver has one, is keyed by
event); ``typed=True`` passes each gold mention's IDRISI type as its label, as a
typed recognizer would (see :func:`geocode.results.place_type`); ``mrr=True`` adds
IDRISI-D's official MRR@1/3/5 per admin level (:mod:`geocode.mrr`), over the resolver's answer
followed by its other ranked candidates (:func:`ranked_points`), so MRR@1 and acc@161 score one answer.
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from geocode.geo import ACC_KM, haversine_km
from geocode.mrr import MrrTally
from geocode.resolver import Resolver
from geocode.results import GeoContext, Resolution, Unresolved
from lmr.errors import DataError
from lmr.readers import event_of, json_records, mention_span

Order = Literal["file", "arrival"]
ORDERS: tuple[str, ...] = ("file", "arrival")


@dataclass(frozen=True)
class GoldMention:
    text: str
    start: int
    end: int
    type: str
    lat: float
    lon: float

    @property
    def label(self) -> str:
        """The IDRISI type, read as a typed recognizer's label when ``typed`` evaluation asks for it."""
        return self.type


@dataclass(frozen=True)
class _Untyped:
    text: str
    start: int
    end: int


@dataclass(frozen=True)
class GoldPost:
    event: str
    text: str
    mentions: tuple[GoldMention, ...]
    created_at: float = 0.0


def _timestamp(value: Any) -> float:
    """Twitter's ``Sun Aug 27 11:56:40 +0000 2017`` (or ISO 8601) as seconds; 0 when absent or unreadable."""
    if not isinstance(value, str) or not value:
        return 0.0
    for fmt in ("%a %b %d %H:%M:%S %z %Y", "%Y-%m-%dT%H:%M:%S%z"):
        try:
            return datetime.strptime(value, fmt).timestamp()
        except ValueError:
            continue
    return 0.0


def read_posts(files: Iterable[str | Path], order: Order = "file") -> list[GoldPost]:
    """Every post of ``files``; ``arrival`` sorts each event's posts by time and keeps the events in file order."""
    posts = [p for f in files for p in read_idrisi(f)]
    if order == "file":
        return posts
    events = list(dict.fromkeys(p.event for p in posts))
    return sorted(posts, key=lambda p: (events.index(p.event), p.created_at))


def read_idrisi(path: str | Path) -> Iterator[GoldPost]:
    """Posts of one IDRISI-D file with their resolved gold mentions."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p} does not exist.", "pass IDRISI-D files such as idrisi:lmd/dev (lmd/<event>/dev.jsonl).")
    for n, row in json_records(p):
        try:
            text = row["text"]
            if not isinstance(text, str):
                raise TypeError("'text' is not a string")
            gold = []
            for m in row.get("location_mentions") or []:
                osm = m.get("osm_json") or {}
                if "lat" not in osm:
                    raise KeyError("osm_json.lat")
                start, end = mention_span(text, m)
                gold.append(GoldMention(m["text"], start, end, m["type"], float(osm["lat"]), float(osm["lon"])))
        except (AttributeError, KeyError, OverflowError, TypeError, ValueError) as exc:
            raise DataError(
                f"{p}:{n} is not an IDRISI-D record ({exc!r}).",
                "pass files from IDRISI-D's lmd/ folder (they carry osm_json), not the lmr/ folder.",
            ) from exc
        yield GoldPost(event_of(p), text, tuple(gold), _timestamp(row.get("created_at")))


@dataclass
class _Tally:
    n: int = 0
    resolved: int = 0
    within: int = 0

    def __post_init__(self) -> None:
        self.errors: list[float] = []

    def add(self, km: float | None) -> None:
        self.n += 1
        if km is not None:
            self.resolved += 1
            self.errors.append(km)
            self.within += km <= ACC_KM


def evaluate(
    resolver: Resolver,
    files: Iterable[str | Path],
    *,
    region: GeoContext | None = None,
    region_map: Mapping[str, GeoContext] | None = None,
    details: list[dict[str, Any]] | None = None,
    order: Order = "file",
    typed: bool = False,
    mrr: bool = False,
    posts: Iterable[GoldPost] | None = None,
    stream_of: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Metrics over every gold mention of ``files`` (or of ``posts``; see the module docstring).

    ``stream_of`` maps an event to the stream-prior key (default: the event itself).
    """
    total = _Tally()
    by_type: dict[str, _Tally] = defaultdict(_Tally)
    by_event: dict[str, _Tally] = defaultdict(_Tally)
    ranks = MrrTally()
    for post in posts if posts is not None else read_posts(files, order):
        if not post.mentions:
            continue
        ctx = region_map.get(post.event, region) if region_map else region
        mentions = post.mentions if typed else tuple(_Untyped(m.text, m.start, m.end) for m in post.mentions)
        key = stream_of.get(post.event, post.event) if stream_of else post.event
        # ranked before resolving (resolving teaches the stream prior), scored after it (see ranked_points)
        ranked = resolver.rank(mentions, post.text, ctx, k=5, stream=key) if mrr else []
        results = resolver.resolve(mentions, post.text, ctx, stream=key)
        if mrr:
            for g, r, ranks_of in zip(post.mentions, results, ranked, strict=True):
                ranks.add(g.type, (g.lat, g.lon), ranked_points(r, ranks_of))
        for g, r in zip(post.mentions, results, strict=True):
            km = haversine_km(r.lat, r.lon, g.lat, g.lon) if isinstance(r, Resolution) else None
            for t in (total, by_type[g.type], by_event[post.event]):
                t.add(km)
            if details is not None:
                details.append(
                    {
                        "event": post.event,
                        "type": g.type,
                        "gold": [g.lat, g.lon],
                        "km": km,
                        "post": post.text,
                        **r.to_dict(),
                    }
                )
    if total.n == 0:
        raise DataError("The files hold no gold mentions.", "pass IDRISI-D lmd/*/dev.jsonl files.")
    out = _summary(total)
    out["by_type"] = {k: _summary(v) for k, v in sorted(by_type.items(), key=lambda kv: -kv[1].n)}
    out["by_event"] = {k: _summary(v) for k, v in sorted(by_event.items())}
    if mrr:
        out["mrr"] = ranks.summary()
    out["backend"] = resolver.backend
    out["stats"] = resolver.stats()
    return out


def ranked_points(
    result: Resolution | Unresolved, ranked: Sequence[Resolution], k: int = 5
) -> list[tuple[float, float]]:
    """The points MRR scores for one mention: the resolver's answer first, then its other ranked candidates.

    The answer is what acc@161 scores (the context fallback may have replaced or supplied it, which the
    candidate ranking does not see); an unresolved mention keeps the ranking as it is.
    """
    points = [(r.lat, r.lon) for r in ranked]
    if isinstance(result, Resolution):
        first = (result.lat, result.lon)
        points = [first, *(p for p in points if p != first)]
    return points[:k]


def _summary(t: _Tally) -> dict[str, Any]:
    return {
        "n": t.n,
        "acc_161": round(t.within / t.n, 4) if t.n else 0.0,
        "coverage": round(t.resolved / t.n, 4) if t.n else 0.0,
        "median_km": round(statistics.median(t.errors), 1) if t.errors else None,
        "mean_km": round(statistics.fmean(t.errors), 1) if t.errors else None,
    }


def load_region_map(path: str | Path) -> dict[str, GeoContext]:
    """Event -> context from a JSON file ``{"event": {"country_codes": [...], "bbox": [s, w, n, e]}}``."""
    p = Path(path)
    try:
        raw = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"Cannot read the region map {p}: {exc}.", "pass a JSON object of event -> region.") from exc
    if not isinstance(raw, dict):
        raise DataError(f"The region map {p} is not a JSON object.", 'write {"event": {"country_codes": ["US"]}}.')
    out = {}
    for event, spec in raw.items():
        if event.startswith("_"):
            continue
        box = spec.get("bbox")
        out[event] = GeoContext(bbox=tuple(box) if box else None, country_codes=tuple(spec.get("country_codes", ())))
    return out
