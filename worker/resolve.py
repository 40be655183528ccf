"""The resolve stage: mention -> place, through ``geocode`` when ``--geocoder`` is given.

Without ``--geocoder`` the stage is a no-op and every location carries ``"geo": null``.
``geocode`` is imported lazily, only when a geocoder is asked for.

With a geocoder the stage keeps a stream prior (:mod:`geocode.stream_prior`): the places it
resolved confidently in recent posts break ties between namesakes in the next
ones. The prior is keyed by the post's ``event`` field when it has one (several
events on one topic), else one key for the stream; ``reset_prior()`` forgets it.
A mention's ``label``, when a typed recognizer sets one (``city``, ``country``, ...),
is passed on to the resolver, which prefers candidates of that kind.

A geocoder never holds a batch past its deadline (see :mod:`worker.pipeline`): a
mention it did not resolve in time, or one of a post the geocoder failed on, gets
``"geo": null`` with the reason in ``"geo_skipped"`` (one of :data:`SKIP_REASONS`).
Without a geocoder ``geo`` is null with no reason.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from lmr.deadline import Deadline
from lmr.errors import ConfigError
from lmr.mentions import Mention

if TYPE_CHECKING:
    from geocode.resolver import Resolver

log = logging.getLogger(__name__)

#: The post field that keys the stream prior, when present (else one key for the whole stream).
EVENT_FIELD = "event"

#: Why a location's ``geo`` is null although a geocoder is configured (its ``geo_skipped``).
DEADLINE = "deadline"  # the batch deadline passed before the mention was resolved
GEOCODER_ERROR = "geocoder_error"  # the geocoder failed on the post (logged)
SKIP_REASONS = (DEADLINE, GEOCODER_ERROR)


@dataclass(frozen=True)
class Skipped:
    """``geo: null`` for a reason, one of :data:`SKIP_REASONS`."""

    reason: str


#: What the stage gives one mention: the geocoder's answer as a dict, null for a reason, or null (no geocoder).
Geo = dict[str, Any] | Skipped | None


def location(mention: Mention, geo: Geo) -> dict[str, Any]:
    """A mention with its ``geo`` as an event's location (``geo_skipped`` only when null for a reason)."""
    if isinstance(geo, Skipped):
        return {**mention.to_dict(), "geo": None, "geo_skipped": geo.reason}
    return {**mention.to_dict(), "geo": geo}


class GeoStage(Protocol):
    """Resolves the mentions of one post by ``deadline`` (when given); returns one :data:`Geo` per mention."""

    def resolve(
        self, mentions: Sequence[Mention], post: dict[str, Any], text: str, deadline: Deadline | None = None
    ) -> list[Geo]: ...

    def stats(self) -> dict[str, Any]: ...


class NoGeocoder:
    """The stage when no geocoder is configured: ``geo`` stays null."""

    def resolve(
        self, mentions: Sequence[Mention], post: dict[str, Any], text: str, deadline: Deadline | None = None
    ) -> list[Geo]:
        return [None] * len(mentions)

    def stats(self) -> dict[str, Any]:
        return {}


class ResolverStage:
    """Wraps a ``geocode.resolver.Resolver``; a geocoder failure leaves ``geo`` null (logged), never drops a post."""

    def __init__(self, resolver: Resolver, *, event_field: str = EVENT_FIELD) -> None:
        self.resolver = resolver
        self.event_field = event_field
        self.failures = 0
        self.skipped: Counter[str] = Counter()  # mentions left null, by reason

    def stream_key(self, post: dict[str, Any]) -> str:
        value = post.get(self.event_field)
        return value if isinstance(value, str) else ""

    def resolve(
        self, mentions: Sequence[Mention], post: dict[str, Any], text: str, deadline: Deadline | None = None
    ) -> list[Geo]:
        if not mentions:
            return []
        if deadline is not None and deadline.expired:
            return self._skip(DEADLINE, len(mentions))
        try:
            results = self.resolver.resolve(list(mentions), text, stream=self.stream_key(post), deadline=deadline)
        except Exception as exc:  # the geocoder must never drop a post
            self.failures += 1
            log.warning("geocoder failed for a post (geo left null): %s", exc)
            return self._skip(GEOCODER_ERROR, len(mentions))
        out: list[Geo] = []
        for r in results:
            d = r.to_dict()
            if d.get("reason") == DEADLINE:  # the resolver ran out of time for this mention
                self.skipped[DEADLINE] += 1
                out.append(Skipped(DEADLINE))
            else:
                out.append(d)
        return out

    def _skip(self, reason: str, n: int) -> list[Geo]:
        self.skipped[reason] += n
        return [Skipped(reason)] * n

    def reset_prior(self, key: str | None = None) -> None:
        """Forget the stream prior of one event key, or all of it (e.g. when a new disaster starts)."""
        if self.resolver.prior is not None:
            self.resolver.prior.reset(key)

    def stats(self) -> dict[str, Any]:
        return {**self.resolver.stats(), "failures": self.failures, "skipped": dict(self.skipped)}


def build_geo_stage(
    backend: str | None,
    *,
    url: str | None = None,
    user_agent: str | None = None,
    cache_path: str | None = None,
    region: str | None = None,
    prior: bool = True,
    offline_fallback: bool = False,
    rate_limit_file: str | None = None,
    memory: str | None = None,
) -> GeoStage:
    """``NoGeocoder`` when ``backend`` is None, else a resolver from ``geocode`` (with the stream prior)."""
    if not backend:
        return NoGeocoder()
    try:
        from geocode.resolver import build_resolver
    except ImportError as exc:
        raise ConfigError(
            f"--geocoder {backend} needs the geocode package, which cannot be imported ({exc}).",
            "install lmr with its geocode package, or leave out --geocoder (events then carry geo: null).",
        ) from exc
    try:
        resolver = build_resolver(
            backend=backend,
            url=url,
            user_agent=user_agent,
            cache_path=cache_path,
            region=region,
            prior=prior,
            offline_fallback=offline_fallback,
            rate_limit_file=rate_limit_file,
            memory=memory,
        )
    except ConfigError:
        raise  # it names the setting and its fix already
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"Geocoder {backend!r} cannot be built: {exc}.", "check --geocoder and its --geocoder-* options."
        ) from exc
    log.info("geocoder %s ready (stream prior %s)", backend, "on" if prior else "off")
    return ResolverStage(resolver)
