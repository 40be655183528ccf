"""Resolve a post's mentions to places: cache -> (rate-limited) backend -> disambiguation.

``Resolver.resolve(mentions, post, context)`` returns one :class:`Resolution` or
:class:`Unresolved` per mention, in order. A backend outage never raises: the
affected mentions come back ``Unresolved(reason="backend_error")`` (or
``"rate_limited"``) and the stream goes on. Under a ``deadline`` no lookup waits past
it (see :mod:`geocode.deadline`): the mentions it leaves no time for come back
``Unresolved(reason="deadline")``. Keep one resolver for the life of a
process: its cache (LRU + SQLite) and rate limiter are shared by every call.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from geocode import context_fallback
from geocode.backends import CandidateSource, OfflineGeocoder, RemoteSource, build_geocoder
from geocode.cache import DEFAULT_BYTES as DEFAULT_CACHE_BYTES
from geocode.cache import GeoCache
from geocode.context_fallback import STORM_DETAIL, Result
from geocode.deadline import GeocoderDeadline, passed, within
from geocode.disambiguate import Choice, ContextPlace, Weights, choose, scan_post
from geocode.gazetteer import Gazetteer, open_gazetteer
from geocode.guard import DeadlineTimeout, Guard, GuardConfig
from geocode.memory import BACKEND as MEMORY_BACKEND
from geocode.memory import Memory
from geocode.memory_watch import WatchedMemory
from geocode.ratelimit import SharedRateLimit, check_public_nominatim
from geocode.results import (
    Candidate,
    GeoContext,
    MentionLike,
    Resolution,
    Unresolved,
    UnresolvedReason,
    place_type,
    resolution,
)
from geocode.stream_prior import PriorConfig, StreamPrior
from geocode.text import is_storm_name
from lmr.deadline import Deadline
from lmr.errors import ConfigError, GeocoderError, GeocoderRateLimited
from lmr.lru import Memo
from lmr.names import is_upper_code, norm
from lmr.place_types import PlaceType

log = logging.getLogger(__name__)

FALLBACKS = ("none", "context")
CONTEXT_CACHE_BYTES = 8 * 2**20  # context phrases looked up in the gazetteer (a phrase is as long as the post's words)


@dataclass(frozen=True)
class _Decision:
    """What one post's disambiguation decided, before it becomes results."""

    texts: list[str]
    spans: list[tuple[int, int]]
    types: list[PlaceType | None]
    choices: list[Choice]
    named: list[ContextPlace]  # countries and divisions the post names outside its mentions
    errors: dict[int, Unresolved]
    backends: list[str]


@dataclass(frozen=True)
class ResolverOptions:
    """Tunables of a resolver (all have CLI flags in ``lmr-geocode``)."""

    min_confidence: float = 0.0
    fallback: str = "context"  # "context": a mention with no candidate inherits the post's most specific place
    scan_post: bool = True
    weights: Weights = field(default_factory=Weights)
    stranger_max_population: int = 500_000  # see geocode.context_fallback.drop_strangers

    def __post_init__(self) -> None:
        if self.fallback not in FALLBACKS:
            raise ConfigError(f"Unknown fallback {self.fallback!r}.", f"use one of {', '.join(FALLBACKS)}.")
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ConfigError("min_confidence must lie in [0, 1].", "pass e.g. --min-confidence 0.3.")


class Resolver:
    """Resolves mentions with one candidate source behind a shared cache.

    ``fallback`` (e.g. the offline gazetteer behind a remote service) answers when the source fails;
    ``prior`` (a :class:`~geocode.stream_prior.StreamPrior`) learns where a stream's places are and breaks
    ties between namesakes for the next posts of the same ``stream`` key; ``memory`` (a
    :class:`~geocode.memory.Memory`) answers the names annotators have placed before the source is asked.
    """

    def __init__(
        self,
        source: CandidateSource,
        *,
        cache: GeoCache | None = None,
        region: GeoContext | None = None,
        options: ResolverOptions | None = None,
        context_gazetteer: Gazetteer | None = None,
        fallback: CandidateSource | None = None,
        prior: StreamPrior | None = None,
        memory: Memory | None = None,
    ) -> None:
        self.source = source
        self.memory = memory
        self.fallback = fallback
        self.prior = prior
        self.cache = cache or GeoCache()
        self.region = region
        self.options = options or ResolverOptions()
        self._context_gazetteer = context_gazetteer
        self._context_lookup = Memo(self._lookup_context, "geocode_context", CONTEXT_CACHE_BYTES)
        self._lock = threading.Lock()
        self.calls = 0
        self.mentions = 0
        self.resolved = 0
        self.fallbacks = 0
        self.remembered = 0
        self.unresolved: dict[str, int] = {}

    @property
    def backend(self) -> str:
        return self.source.name

    # -- candidates ------------------------------------------------------------------------------

    def candidates(
        self, text: str, context: GeoContext | None, source: CandidateSource | None = None
    ) -> list[Candidate]:
        """Candidates for one mention text, through the cache (errors propagate, never cached)."""
        src = source or self.source
        query = src.query(text)
        qkey = norm(query) + ("|U" if is_upper_code(query) else "")
        ckey = context.key() if context is not None and src.context_aware else ""
        hit = self.cache.get(src.name, qkey, ckey)
        if hit is not None:
            return [Candidate.from_dict(d) for d in hit]
        cands = src.candidates(query, context)
        self.cache.put(src.name, qkey, ckey, [c.to_dict() for c in cands])
        return cands

    def _lookup_context(self, phrase: str) -> list[Candidate]:
        gz = self._context_gazetteer
        if gz is None:
            return []
        return gz.lookup(norm(phrase), upper=is_upper_code(phrase))

    # -- resolution ------------------------------------------------------------------------------

    def resolve(
        self,
        mentions: Sequence[MentionLike],
        post: str | Mapping[str, Any],
        context: GeoContext | None = None,
        *,
        stream: str = "",
        deadline: Deadline | None = None,
    ) -> list[Result]:
        """One Resolution or Unresolved per mention, in order.

        ``post`` is the post's text (a mapping with a ``"text"`` key, such as a worker event, also works);
        ``stream`` keys the stream prior (an input topic or event), when the resolver has one. Mentions
        not looked up by ``deadline`` come back ``Unresolved(reason="deadline")``.
        """
        d = self._decide(mentions, post, context, stream, deadline)
        results: list[Result] = []
        for i, ch in enumerate(d.choices):
            start, end = d.spans[i]
            if i in d.errors:
                results.append(d.errors[i])
                continue
            b = ch.best
            if b is None:
                detail = STORM_DETAIL if is_storm_name(d.texts[i]) else ""
                results.append(Unresolved(d.texts[i], start, end, "no_candidate", detail))
                continue
            p = ch.probs[b]
            if p < self.options.min_confidence:
                results.append(Unresolved(d.texts[i], start, end, "ambiguous", f"best candidate probability {p:.2f}"))
                continue
            results.append(resolution(d.texts[i], d.spans[i], ch.candidates[b], p, d.backends[i]))
        if self.options.fallback == "context":
            results = context_fallback.drop_strangers(
                results, d.choices, self.prior, stream, self.options.stranger_max_population
            )
            results = context_fallback.drop_stray_partials(
                results, d.choices, d.types, d.named, self.prior, stream, self.options.weights.near_km
            )
            results = context_fallback.inherit(results, d.choices, d.named, self.prior, stream, self.backend)
        self._teach(stream, results, d.choices)
        self._count(results)
        return results

    def rank(
        self,
        mentions: Sequence[MentionLike],
        post: str | Mapping[str, Any],
        context: GeoContext | None = None,
        *,
        k: int = 5,
        stream: str = "",
    ) -> list[list[Resolution]]:
        """The ``k`` most probable places per mention, best first (``score`` = probability); [] when none."""
        if k < 1:
            raise ConfigError(f"k={k} asks for no candidates.", "pass --candidates 1 or more.")
        d = self._decide(mentions, post, context, stream)
        out: list[list[Resolution]] = []
        for i, ch in enumerate(d.choices):
            out.append(
                [
                    resolution(d.texts[i], d.spans[i], ch.candidates[j], ch.probs[j], d.backends[i], by_match=False)
                    for j in ch.ranked()[:k]
                ]
            )
        return out

    def _decide(
        self,
        mentions: Sequence[MentionLike],
        post: str | Mapping[str, Any],
        context: GeoContext | None,
        stream: str,
        deadline: Deadline | None = None,
    ) -> _Decision:
        if isinstance(post, Mapping):
            post = str(post.get("text") or "")
        ctx = context if context is not None else self.region
        texts = [str(m.text) for m in mentions]
        spans = [(int(m.start), int(m.end)) for m in mentions]
        types = [place_type(getattr(m, "label", None)) for m in mentions]
        cands: list[list[Candidate]] = []
        backends: list[str] = []
        errors: dict[int, Unresolved] = {}
        for i, text in enumerate(texts):
            place = self.memory.lookup(text) if self.memory is not None else None
            if place is not None:
                cands.append([place])
                backends.append(MEMORY_BACKEND)
                continue
            found, backend, error = self._candidates_or_fallback(text, ctx, deadline)
            cands.append(found)
            backends.append(backend)
            if error is not None:
                errors[i] = Unresolved(text, spans[i][0], spans[i][1], _reason(error), error.problem)
        extra: list[ContextPlace] = []
        if self.options.scan_post and self._context_gazetteer is not None and post:
            extra = scan_post(post, spans, self._context_lookup)
        bonus = None
        if self.prior is not None:
            wp = self.prior.config.weight
            bonus = [[wp * self.prior.affinity(stream, c) for c in cs] for cs in cands]
        choices = choose(texts, spans, cands, extra, ctx, self.options.weights, types=types, bonus=bonus)
        return _Decision(texts, spans, types, choices, extra, errors, backends)

    def _candidates_or_fallback(
        self, text: str, ctx: GeoContext | None, deadline: Deadline | None = None
    ) -> tuple[list[Candidate], str, GeocoderError | None]:
        if deadline is not None and deadline.expired:
            return [], self.source.name, passed("this mention was looked up")
        try:
            with within(deadline):
                return self.candidates(text, ctx), self.source.name, None
        except GeocoderDeadline as exc:
            return [], self.source.name, exc  # out of time: no fallback either
        except GeocoderError as exc:
            if self.fallback is None:
                return [], self.source.name, exc
            with self._lock:
                self.fallbacks += 1
            log.debug("%s failed (%s); answering from %s", self.source.name, exc.problem, self.fallback.name)
            try:
                return self.candidates(text, ctx, self.fallback), self.fallback.name, None
            except GeocoderError:
                return [], self.source.name, exc

    def _teach(self, stream: str, results: list[Result], choices: list[Choice]) -> None:
        if self.prior is None:
            return
        t = self.options.weights.temperature
        taught = [
            ch.candidates[ch.best]
            for r, ch in zip(results, choices, strict=True)
            if isinstance(r, Resolution)
            and r.feature_type not in ("context", "stream")
            and ch.best is not None
            and self.prior.teaches(ch.candidates[ch.best], ch.own_probability(ch.best, t))
        ]
        self.prior.observe(stream, taught)

    def _count(self, results: list[Result]) -> None:
        with self._lock:
            self.calls += 1
            self.mentions += len(results)
            for r in results:
                if isinstance(r, Resolution):
                    self.resolved += 1
                    self.remembered += r.backend == MEMORY_BACKEND
                else:
                    self.unresolved[r.reason] = self.unresolved.get(r.reason, 0) + 1

    def stats(self) -> dict[str, Any]:
        """Counters: calls, mentions, resolved, unresolved by reason, cache hits/misses, limiter state."""
        with self._lock:
            s: dict[str, Any] = {
                "backend": self.backend,
                "calls": self.calls,
                "mentions": self.mentions,
                "resolved": self.resolved,
                "unresolved": dict(self.unresolved),
                "fallbacks": self.fallbacks,
            }
            if self.memory is not None:
                s.update(memory_places=len(self.memory), memory_answers=self.remembered)
        s.update(self.cache.stats())
        s.update(self.source.stats())
        if self.prior is not None:
            s.update(self.prior.stats())
        return s

    def close(self) -> None:
        self.cache.close()


def _reason(error: GeocoderError) -> UnresolvedReason:
    if isinstance(error, GeocoderDeadline):
        return "deadline"
    return "rate_limited" if isinstance(error, GeocoderRateLimited) else "backend_error"


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
    cache_bytes: int = DEFAULT_CACHE_BYTES,
    cache_ttl: float = 30 * 86400,
    negative_ttl: float = 86400,
    min_confidence: float = 0.0,
    fallback: str = "context",
    gazetteer_path: str | Path | None = None,
    guard_config: GuardConfig | None = None,
    offline_fallback: bool = False,
    rate_limit_file: str | Path | None = None,
    prior: PriorConfig | bool = False,
    memory: Memory | str | Path | None = None,
) -> Resolver:
    """A resolver for ``backend`` (``offline``, ``nominatim``, ``photon`` or any geopy service name).

    ``options`` are keyword options of the geopy geocoder; a key comes only from
    ``LMR_GEOCODER_API_KEY``. ``region`` is the default event context
    (a :class:`GeoContext` or ``"US,PR"`` / ``"south,west,north,east"``).
    ``offline_fallback`` answers from the offline gazetteer when a remote service fails;
    ``rate_limit_file`` shares the request rate with every process naming the same file;
    ``prior`` turns on the stream prior (``True`` for the defaults, or a :class:`PriorConfig`);
    ``memory`` is a :class:`~geocode.memory.Memory` (a :class:`~geocode.memory.PlaceMemory`) or the path of
    a file ``lmr-geocode learn`` wrote (re-read when it changes: :class:`~geocode.memory_watch.WatchedMemory`).
    """
    name = backend.strip().lower()
    ctx = GeoContext.parse(region) if isinstance(region, str) else region
    cache = GeoCache(cache_path, max_bytes=cache_bytes, ttl=cache_ttl, negative_ttl=negative_ttl)
    ropts = ResolverOptions(min_confidence=min_confidence, fallback=fallback)
    stream_prior = StreamPrior(prior if isinstance(prior, PriorConfig) else None) if prior else None
    remembered = WatchedMemory(memory) if isinstance(memory, (str, Path)) else memory
    if name == "offline":
        if url:
            raise ConfigError("The offline backend takes no URL.", "drop --geocoder-url or pick --backend nominatim.")
        gz = open_gazetteer(Path(gazetteer_path) if gazetteer_path else None)
        return Resolver(
            OfflineGeocoder(gz),
            cache=cache,
            region=ctx,
            options=ropts,
            context_gazetteer=gz,
            prior=stream_prior,
            memory=remembered,
        )
    geocoder = build_geocoder(name, url=url, user_agent=user_agent, timeout=timeout, options=options)
    if min_delay_seconds is None:
        # Nominatim's public usage policy: at most 1 request per second. Self-hosted: as given.
        min_delay_seconds = 1.0
    check_public_nominatim(name, url, min_delay_seconds)
    func: Any = DeadlineTimeout(geocoder.geocode, geocoder.timeout)
    if rate_limit_file is not None:
        func = SharedRateLimit(func, rate_limit_file, min_delay_seconds=min_delay_seconds)
        min_delay_seconds = 0.0  # the shared file spaces the calls
    cfg = guard_config or GuardConfig(min_delay_seconds=min_delay_seconds, max_retries=max_retries)
    guard = Guard(func, cfg, service=name)
    local: Gazetteer | None = None
    if gazetteer_path is not None or offline_fallback:
        local = open_gazetteer(Path(gazetteer_path) if gazetteer_path else None)
    return Resolver(
        RemoteSource(geocoder, name, guard),
        cache=cache,
        region=ctx,
        options=ropts,
        context_gazetteer=local,
        fallback=OfflineGeocoder(local) if offline_fallback else None,
        prior=stream_prior,
        memory=remembered,
    )
