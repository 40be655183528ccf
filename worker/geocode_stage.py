"""The resolve stage: mention -> place, through ``geocode`` when ``--geocoder`` is given.

Without ``--geocoder`` the stage is a no-op and every location carries ``"geo": null``.
``geocode`` is imported lazily, only when a geocoder is asked for.

With a geocoder the stage keeps a stream prior (:mod:`geocode.prior`): the places it
resolved confidently in recent posts break ties between namesakes in the next
ones. The prior is keyed by the post's ``event`` field when it has one (several
events on one topic), else one key for the stream; ``reset_prior()`` forgets it.
A mention's ``label``, when a typed recognizer sets one (``city``, ``country``, ...),
is passed on to the resolver, which prefers candidates of that kind.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from lmr.errors import ConfigError
from lmr.mentions import Mention

if TYPE_CHECKING:
    from geocode.resolver import Resolver

log = logging.getLogger(__name__)

#: The post field that keys the stream prior, when present (else one key for the whole stream).
EVENT_FIELD = "event"


class GeoStage(Protocol):
    """Resolves the mentions of one post; returns one ``geo`` dict (or None) per mention."""

    def resolve(self, mentions: Sequence[Mention], post: dict[str, Any], text: str) -> list[dict[str, Any] | None]: ...

    def stats(self) -> dict[str, Any]: ...


class NoGeocoder:
    """The stage when no geocoder is configured: ``geo`` stays null."""

    def resolve(self, mentions: Sequence[Mention], post: dict[str, Any], text: str) -> list[dict[str, Any] | None]:
        return [None] * len(mentions)

    def stats(self) -> dict[str, Any]:
        return {}


class ResolverStage:
    """Wraps a ``geocode.resolver.Resolver``; a geocoder failure leaves ``geo`` null (logged), never drops a post."""

    def __init__(self, resolver: Resolver, *, event_field: str = EVENT_FIELD) -> None:
        self.resolver = resolver
        self.event_field = event_field
        self.failures = 0

    def stream_key(self, post: dict[str, Any]) -> str:
        value = post.get(self.event_field)
        return value if isinstance(value, str) else ""

    def resolve(self, mentions: Sequence[Mention], post: dict[str, Any], text: str) -> list[dict[str, Any] | None]:
        if not mentions:
            return []
        try:
            results = self.resolver.resolve(list(mentions), text, stream=self.stream_key(post))
        except Exception as exc:  # the geocoder must never drop a post
            self.failures += 1
            log.warning("geocoder failed for a post (geo left null): %s", exc)
            return [None] * len(mentions)
        return [r.to_dict() for r in results]

    def reset_prior(self, key: str | None = None) -> None:
        """Forget the stream prior of one event key, or all of it (e.g. when a new disaster starts)."""
        if self.resolver.prior is not None:
            self.resolver.prior.reset(key)

    def stats(self) -> dict[str, Any]:
        return {**self.resolver.stats(), "failures": self.failures}


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
            backend=backend, url=url, user_agent=user_agent, cache_path=cache_path, region=region, prior=prior,
            offline_fallback=offline_fallback, rate_limit_file=rate_limit_file,
        )  # fmt: skip
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"Geocoder {backend!r} cannot be built: {exc}.", "check --geocoder and its --geocoder-* options."
        ) from exc
    log.info("geocoder %s ready (stream prior %s)", backend, "on" if prior else "off")
    return ResolverStage(resolver)
