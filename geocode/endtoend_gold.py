"""Gold for end-to-end scoring: posts whose location mentions carry the annotators' points.

A mention's point comes from IDRISI-D's ``osm_json`` (``lat``, ``lon``; its ``addresstype``/``place_rank`` give the
place's level and ``address.country_code`` its country), or from ``lat``/``lon`` on the mention itself (any JSONL in
the IDRISI shape; an optional ``kind`` there names the level: country, admin1, admin2, city, poi).

A mention without a point is a span the recognition gold marks but the resolution gold could not place: it is kept
apart (``unplaceable``), so an output on it is neither right nor wrong. For an IDRISI-D file
``.../lmd/<event>/<split>.jsonl``, the recognition gold of the same posts (any split of ``.../lmr/<event>/``) adds
the spans it marks that IDRISI-D did not place (IDRISI-D resolved most, not all, of them).

The language of a post is its ``lang`` (or ``language``) field; else, in the IDRISI layout, ``ar`` under an
``ar/`` folder and ``en`` elsewhere; else unknown ('').
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from geocode.backends import candidate_from_nominatim
from geocode.geo import on_earth
from lmr.posts import post_id
from lmr.readers import Example, expand_paths, is_json_file, json_records, mention_offsets, read_file

IDRISI_FOLDERS = ("lmd", "lmr")  # resolution and recognition gold, side by side in the IDRISI layout


@dataclass(frozen=True)
class GoldPlace:
    """A gold mention with the annotators' point; ``kind`` is its level ('' when unknown)."""

    start: int
    end: int
    text: str
    type: str
    lat: float
    lon: float
    kind: str = ""
    country_code: str | None = None


@dataclass(frozen=True)
class GoldPost:
    """One gold post: its placed mentions and the spans the gold marks but could not place."""

    id: str
    text: str
    event: str
    lang: str
    places: tuple[GoldPlace, ...]
    unplaceable: tuple[tuple[int, int], ...] = ()


def _float(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if v == v else None  # NaN is no point


def mention_point(m: Any) -> tuple[float, float, str, str | None] | None:
    """``(lat, lon, kind, country_code)`` of a gold mention, or None when it carries no point."""
    if not isinstance(m, dict):
        return None
    osm = m.get("osm_json")
    if isinstance(osm, dict):
        cand = candidate_from_nominatim(osm)
        if cand is not None and on_earth(cand.lat, cand.lon):
            return cand.lat, cand.lon, cand.kind, cand.country_code
    lat, lon = _float(m.get("lat")), _float(m.get("lon"))
    if lat is None or lon is None or not on_earth(lat, lon):
        return None
    cc = m.get("country_code")
    return lat, lon, str(m.get("kind") or ""), cc.upper() if isinstance(cc, str) and cc else None


def _language(obj: dict[str, Any], path: Path) -> str:
    for name in ("lang", "language"):
        if isinstance(obj.get(name), str) and obj[name]:
            return str(obj[name])
    if path.parent.parent.name in IDRISI_FOLDERS:
        return "ar" if path.parent.parent.parent.name == "ar" else "en"
    return ""


def recognition_files(path: Path) -> list[Path]:
    """The recognition gold of an IDRISI-D file ``.../lmd/<event>/<split>.jsonl``: ``.../lmr/<event>/*.jsonl``
    (every split: IDRISI-D's splits are not the recognition gold's)."""
    if path.parent.parent.name != "lmd":
        return []
    return sorted((path.parent.parent.parent / "lmr" / path.parent.name).glob("*.jsonl"))


def _relocate(text: str, mention: str, start: int) -> tuple[int, int] | None:
    """The span of ``mention`` in ``text``: at ``start`` if it is there, else its nearest occurrence, else None."""
    if not mention:
        return None
    if text[start : start + len(mention)] == mention:
        return start, start + len(mention)
    hits = [m.start() for m in re.finditer(re.escape(mention), text)]
    if not hits:
        return None
    best = min(hits, key=lambda h: abs(h - start))
    return best, best + len(mention)


def _recognition_spans(path: Path) -> dict[str, list[tuple[str, int]]]:
    """Post id -> (mention text, start) of every mention the recognition gold file marks."""
    out: dict[str, list[tuple[str, int]]] = {}
    for _, obj in json_records(path):
        pid = post_id(obj) if isinstance(obj, dict) else None
        if pid is None:
            continue
        spans = []
        for m in obj.get("location_mentions") or []:
            try:
                start = mention_offsets(m)[0]
            except ValueError:
                continue
            if isinstance(m.get("text"), str):
                spans.append((m["text"], start))
        out[pid] = spans
    return out


def _overlaps(span: tuple[int, int], others: Iterable[tuple[int, int]]) -> bool:
    return any(span[0] < b and a < span[1] for a, b in others)


def _post(ex: Example, obj: Any, path: Path, extra: Sequence[tuple[str, int]]) -> GoldPost:
    mentions = obj.get("location_mentions") or [] if isinstance(obj, dict) and "text" in obj else []
    points = [mention_point(m) for m in mentions] if len(mentions) == len(ex.spans) else [None] * len(ex.spans)
    places, unplaceable = [], []
    for span, pt in zip(ex.spans, points, strict=True):
        if pt is None:
            unplaceable.append((span.start, span.end))
        else:
            places.append(GoldPlace(span.start, span.end, span.text, span.type, pt[0], pt[1], pt[2], pt[3]))
    placed = [(p.start, p.end) for p in places]
    for mention, start in extra:
        found = _relocate(ex.text, mention, start)
        if found is not None and not _overlaps(found, placed) and found not in unplaceable:
            unplaceable.append(found)
    lang = _language(obj if isinstance(obj, dict) else {}, path)
    return GoldPost(ex.id, ex.text, ex.event, lang, tuple(places), tuple(sorted(unplaceable)))


def read_file_gold(path: Path) -> list[GoldPost]:
    """Every post of one gold file (the same posts, in the same order, as :func:`lmr.readers.read_file`)."""
    examples = read_file(path, fine_types=False)
    records: list[Any] = [obj for _, obj in json_records(path)] if is_json_file(path) else [None] * len(examples)
    recognised = {pid: spans for f in recognition_files(path) for pid, spans in _recognition_spans(f).items()}
    return [_post(ex, obj, path, recognised.get(ex.id, ())) for ex, obj in zip(examples, records, strict=True)]


def read_gold(paths: Sequence[str | Path]) -> list[GoldPost] | None:
    """Gold posts of ``paths`` (files, folders, globs, ``idrisi:`` references), or None when no mention has a point."""
    posts = [p for f in expand_paths(paths) for p in read_file_gold(f)]
    return posts if any(p.places for p in posts) else None


def gold_note(posts: Sequence[GoldPost]) -> str:
    """How many gold spans could not be placed, for the result's note."""
    n = sum(len(p.unplaceable) for p in posts)
    return f"Gold spans the recognition gold marks but the resolution gold could not place: {n}."
