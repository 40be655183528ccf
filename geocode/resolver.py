"""Resolve a post's mentions to places: cache -> (rate-limited) backend -> disambiguation.

``Resolver.resolve(mentions, post, context)`` returns one :class:`Resolution` or
:class:`Unresolved` per mention, in order. A backend outage never raises: the
affected mentions come back ``Unresolved(reason="backend_error")`` (or
``"rate_limited"``) and the stream goes on. Keep one resolver for the life of a
process: its cache (LRU + SQLite) and rate limiter are shared by every call.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from geopy.geocoders.base import Geocoder

from geocode.backends import (
    OfflineGeocoder,
    build_geocoder,
    candidate_from_location,
    geocoder_kwargs,
)
from geocode.cache import GeoCache
from geocode.disambiguate import ContextPlace, Weights, choose, scan_post
from geocode.gazetteer import Gazetteer, haversine_km, open_gazetteer
from geocode.guard import Guard, GuardConfig
from geocode.text import is_upper_code, norm, split_camel
from geocode.types import Candidate, GeoContext, MentionLike, Resolution, Unresolved
from lmr.errors import ConfigError, GeocoderError, GeocoderRateLimited

log = logging.getLogger(__name__)

Result = Resolution | Unresolved
FALLBACKS = ("none", "context")


@dataclass(frozen=True)
class ResolverOptions:
    """Tunables of a resolver (all have CLI flags in ``lmr-geocode``)."""

    min_confidence: float = 0.0
    fallback: str = "context"  # "context": a mention with no candidate inherits the post's most specific place
    scan_post: bool = True
    weights: Weights = field(default_factory=Weights)

    def __post_init__(self) -> None:
        if self.fallback not in FALLBACKS:
            raise ConfigError(f"Unknown fallback {self.fallback!r}.", f"use one of {', '.join(FALLBACKS)}.")
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ConfigError("min_confidence must lie in [0, 1].", "pass e.g. --min-confidence 0.3.")


class Resolver:
    """Resolves mentions with one backend behind a shared cache."""

    def __init__(
        self,
        geocoder: Geocoder,
        *,
        backend: str,
        cache: GeoCache | None = None,
        guard: Guard | None = None,
        region: GeoContext | None = None,
        options: ResolverOptions | None = None,
        context_gazetteer: Gazetteer | None = None,
    ) -> None:
        self.geocoder = geocoder
        self.backend = backend
        self.cache = cache or GeoCache()
        self.guard = guard
        self.region = region
        self.options = options or ResolverOptions()
        self._context_gazetteer = context_gazetteer
        self._lock = threading.Lock()
        self.calls = 0
        self.mentions = 0
        self.resolved = 0
        self.unresolved: dict[str, int] = {}

    # -- candidates ------------------------------------------------------------------------------

    def _query(self, text: str) -> str:
        q = split_camel(text).strip() if self.backend != "offline" else text.strip()
        return " ".join(q.split())

    def candidates(self, text: str, context: GeoContext | None) -> list[Candidate]:
        """Candidates for one mention text, through the cache (errors propagate, never cached)."""
        query = self._query(text)
        qkey = norm(query) + ("|U" if is_upper_code(query) else "")
        # The offline backend scores the context itself; remote services filter by it.
        ckey = context.key() if context is not None and self.backend != "offline" else ""
        hit = self.cache.get(self.backend, qkey, ckey)
        if hit is not None:
            return [Candidate.from_dict(d) for d in hit]
        cands = self._fetch(query, context)
        self.cache.put(self.backend, qkey, ckey, [c.to_dict() for c in cands])
        return cands

    def _fetch(self, query: str, context: GeoContext | None) -> list[Candidate]:
        if isinstance(self.geocoder, OfflineGeocoder):
            return self.geocoder.candidates(query)
        kwargs = geocoder_kwargs(self.backend, context)
        call = self.guard if self.guard is not None else self.geocoder.geocode
        found = call(query, **kwargs)
        if found is None:
            return []
        locs = found if isinstance(found, list) else [found]
        out = []
        for rank, loc in enumerate(locs):
            c = candidate_from_location(loc)
            if c is not None:
                # Services rank their answers: later ones match the query less well.
                out.append(Candidate(**{**c.__dict__, "match": round(c.match * (1.0 - 0.05 * rank), 4)}))
        return out

    def _context_lookup(self, phrase: str) -> list[Candidate]:
        gz = self._context_gazetteer
        if gz is None:
            return []
        return gz.lookup(norm(phrase), upper=is_upper_code(phrase))

    # -- resolution ------------------------------------------------------------------------------

    def resolve(
        self, mentions: Sequence[MentionLike], post: str | Mapping[str, Any], context: GeoContext | None = None
    ) -> list[Result]:
        """One Resolution or Unresolved per mention, in order.

        ``post`` is the post's text (a mapping with a ``"text"`` key, such as a worker event, also works).
        """
        if isinstance(post, Mapping):
            post = str(post.get("text") or "")
        ctx = context if context is not None else self.region
        texts = [str(m.text) for m in mentions]
        spans = [(int(m.start), int(m.end)) for m in mentions]
        cands: list[list[Candidate]] = []
        errors: dict[int, Unresolved] = {}
        for i, text in enumerate(texts):
            try:
                cands.append(self.candidates(text, ctx))
            except GeocoderError as exc:
                reason = "rate_limited" if isinstance(exc, GeocoderRateLimited) else "backend_error"
                errors[i] = Unresolved(text, spans[i][0], spans[i][1], reason, exc.problem)  # type: ignore[arg-type]
                cands.append([])
        extra: list[ContextPlace] = []
        if self.options.scan_post and self._context_gazetteer is not None and post:
            extra = scan_post(post, spans, self._context_lookup)
        choices = choose(texts, spans, cands, extra, ctx, self.options.weights)
        results: list[Result] = []
        for i, ch in enumerate(choices):
            start, end = spans[i]
            if i in errors:
                results.append(errors[i])
                continue
            b = ch.best
            if b is None:
                results.append(Unresolved(texts[i], start, end, "no_candidate"))
                continue
            p = ch.probs[b]
            if p < self.options.min_confidence:
                results.append(Unresolved(texts[i], start, end, "ambiguous", f"best candidate probability {p:.2f}"))
                continue
            c = ch.candidates[b]
            results.append(
                Resolution(texts[i], start, end, c.lat, c.lon, c.display_name or c.name, c.country_code, c.admin1,
                           c.feature_type, c.bbox, self.backend, round(p * min(c.match, 1.0), 4))
            )  # fmt: skip
        if self.options.fallback == "context":
            results = self._drop_stray_partials(results, choices)
            results = self._inherit(results, choices)
        with self._lock:
            self.calls += 1
            self.mentions += len(results)
            for r in results:
                if isinstance(r, Resolution):
                    self.resolved += 1
                else:
                    self.unresolved[r.reason] = self.unresolved.get(r.reason, 0) + 1
        return results

    def _drop_stray_partials(self, results: list[Result], choices: list[Any]) -> list[Result]:
        """A place found only from a word inside a longer mention ("Griffith" in "Griffith Park") that lies
        far from every other place of the post is less likely than the post's own place: drop it."""
        near = self.options.weights.near_km
        solid = [
            ch.candidates[ch.best] for r, ch in zip(results, choices, strict=True)
            if isinstance(r, Resolution) and ch.best is not None and ch.candidates[ch.best].match >= 0.7
            and ch.candidates[ch.best].kind in ("city", "admin2", "admin1")
        ]  # fmt: skip
        if not solid:
            return results
        out: list[Result] = []
        for r, ch in zip(results, choices, strict=True):
            if isinstance(r, Resolution) and ch.best is not None and ch.candidates[ch.best].match < 0.7:
                c = ch.candidates[ch.best]
                if all(haversine_km(c.lat, c.lon, o.lat, o.lon) > near for o in solid):
                    out.append(Unresolved(r.text, r.start, r.end, "no_candidate", "only a partial name match"))
                    continue
            out.append(r)
        return out

    def _inherit(self, results: list[Result], choices: list[Any]) -> list[Result]:
        """A mention with no candidate takes the post's most specific resolved place (feature ``context``)."""
        level = {"city": 4, "admin2": 3, "admin1": 2, "country": 1}
        best: Resolution | None = None
        best_level = 0
        for r, ch in zip(results, choices, strict=True):
            if isinstance(r, Resolution) and ch.best is not None:
                lv = level.get(ch.candidates[ch.best].kind, 0)
                if lv > best_level:
                    best, best_level = r, lv
        if best is None:
            return results
        out: list[Result] = []
        for r in results:
            if isinstance(r, Unresolved) and r.reason == "no_candidate":
                out.append(
                    Resolution(r.text, r.start, r.end, best.lat, best.lon, best.display_name, best.country_code,
                               best.admin1, "context", best.bbox, self.backend, round(0.25 * best.score, 4))
                )  # fmt: skip
            else:
                out.append(r)
        return out

    def stats(self) -> dict[str, Any]:
        """Counters: calls, mentions, resolved, unresolved by reason, cache hits/misses, limiter state."""
        with self._lock:
            s: dict[str, Any] = {
                "backend": self.backend,
                "calls": self.calls,
                "mentions": self.mentions,
                "resolved": self.resolved,
                "unresolved": dict(self.unresolved),
            }
        s.update(self.cache.stats())
        if self.guard is not None:
            s.update(self.guard.stats())
        return s

    def close(self) -> None:
        self.cache.close()


def build_resolver(
    backend: str = "offline",
    *,
    url: str | None = None,
    user_agent: str | None = None,
    cache_path: str | Path | None = None,
    region: GeoContext | str | None = None,
    options: dict[str, Any] | None = None,
    timeout: float = 10.0,
    min_delay_seconds: float | None = None,
    max_retries: int = 2,
    cache_size: int = 20_000,
    cache_ttl: float = 30 * 86400,
    negative_ttl: float = 86400,
    min_confidence: float = 0.0,
    fallback: str = "context",
    gazetteer_path: str | Path | None = None,
    guard_config: GuardConfig | None = None,
) -> Resolver:
    """A resolver for ``backend`` (``offline``, ``nominatim``, ``photon`` or any geopy service name).

    ``options`` are keyword options of the geopy geocoder; a key comes only from
    ``LMR_GEOCODER_API_KEY``. ``region`` is the default event context
    (a :class:`GeoContext` or ``"US,PR"`` / ``"south,west,north,east"``).
    """
    name = backend.strip().lower()
    ctx = GeoContext.parse(region) if isinstance(region, str) else region
    cache = GeoCache(cache_path, maxsize=cache_size, ttl=cache_ttl, negative_ttl=negative_ttl)
    ropts = ResolverOptions(min_confidence=min_confidence, fallback=fallback)
    gz: Gazetteer | None = None
    if name == "offline":
        if url:
            raise ConfigError("The offline backend takes no URL.", "drop --geocoder-url or pick --backend nominatim.")
        gz = open_gazetteer(Path(gazetteer_path) if gazetteer_path else None)
        return Resolver(OfflineGeocoder(gz), backend=name, cache=cache, region=ctx, options=ropts,
                        context_gazetteer=gz)  # fmt: skip
    geocoder = build_geocoder(name, url=url, user_agent=user_agent, timeout=timeout, options=options)
    if min_delay_seconds is None:
        # Nominatim's public usage policy: at most 1 request per second. Self-hosted: as given.
        min_delay_seconds = 1.0
    cfg = guard_config or GuardConfig(min_delay_seconds=min_delay_seconds, max_retries=max_retries)
    guard = Guard(geocoder.geocode, cfg, service=name)
    if gazetteer_path is not None:
        gz = open_gazetteer(Path(gazetteer_path))
    return Resolver(geocoder, backend=name, cache=cache, guard=guard, region=ctx, options=ropts,
                    context_gazetteer=gz)  # fmt: skip
