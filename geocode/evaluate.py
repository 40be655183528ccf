"""Evaluation on IDRISI-D: resolve the gold mentions and compare with the annotators' OSM points.

``acc_161`` counts every gold mention: an unresolved mention is a miss.
``coverage`` is the share resolved; ``median_km``/``mean_km`` are over resolved
mentions. ``by_type`` breaks the same numbers down by IDRISI type.
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from geocode.gazetteer import haversine_km
from geocode.resolver import Resolver
from geocode.types import GeoContext, Resolution
from lmr.errors import DataError

ACC_KM = 161.0


@dataclass(frozen=True)
class GoldMention:
    text: str
    start: int
    end: int
    type: str
    lat: float
    lon: float


@dataclass(frozen=True)
class GoldPost:
    event: str
    text: str
    mentions: tuple[GoldMention, ...]


def event_of(path: Path) -> str:
    """IDRISI keeps one folder per event: ``lmd/<event>/dev.jsonl``."""
    return path.parent.name


def read_idrisi(path: str | Path) -> Iterator[GoldPost]:
    """Posts of one IDRISI-D file with their resolved gold mentions."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p} does not exist.", "pass IDRISI-D files such as ../shared/data/idrisi/lmd/*/dev.jsonl.")
    with p.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                gold = []
                for m in row.get("location_mentions") or []:
                    osm = m.get("osm_json") or {}
                    if "lat" not in osm:
                        raise KeyError("osm_json.lat")
                    gold.append(GoldMention(m["text"], int(m["start_offset"]), int(m["end_offset"]), m["type"],
                                            float(osm["lat"]), float(osm["lon"])))  # fmt: skip
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                raise DataError(
                    f"{p}:{n} is not an IDRISI-D record ({exc}).",
                    "pass files from IDRISI-D's lmd/ folder (they carry osm_json), not the lmr/ folder.",
                ) from exc
            yield GoldPost(event_of(p), row["text"], tuple(gold))


@dataclass
class _Tally:
    n: int = 0
    resolved: int = 0
    within: int = 0

    def __post_init__(self) -> None:
        self.errors: list[float] = []


def evaluate(
    resolver: Resolver,
    files: Iterable[str | Path],
    *,
    region: GeoContext | None = None,
    region_map: Mapping[str, GeoContext] | None = None,
    details: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Metrics over every gold mention of ``files`` (see the module docstring)."""
    total = _Tally()
    by_type: dict[str, _Tally] = defaultdict(_Tally)
    by_event: dict[str, _Tally] = defaultdict(_Tally)
    for f in files:
        for post in read_idrisi(f):
            if not post.mentions:
                continue
            ctx = region_map.get(post.event, region) if region_map else region
            results = resolver.resolve(post.mentions, post.text, ctx)
            for g, r in zip(post.mentions, results, strict=True):
                km = haversine_km(r.lat, r.lon, g.lat, g.lon) if isinstance(r, Resolution) else None
                for t in (total, by_type[g.type], by_event[post.event]):
                    t.n += 1
                    if km is not None:
                        t.resolved += 1
                        t.errors.append(km)
                        t.within += km <= ACC_KM
                if details is not None:
                    details.append({"event": post.event, "type": g.type, "gold": [g.lat, g.lon], "km": km,
                                    "post": post.text, **r.to_dict()})  # fmt: skip
    if total.n == 0:
        raise DataError("The files hold no gold mentions.", "pass IDRISI-D lmd/*/dev.jsonl files.")
    out = _summary(total)
    out["by_type"] = {k: _summary(v) for k, v in sorted(by_type.items(), key=lambda kv: -kv[1].n)}
    out["by_event"] = {k: _summary(v) for k, v in sorted(by_event.items())}
    out["backend"] = resolver.backend
    out["stats"] = resolver.stats()
    return out


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
