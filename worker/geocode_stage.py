"""The resolve stage: mention -> place, through ``geocode`` when ``--geocoder`` is given.

Without ``--geocoder`` the stage is a no-op and every location carries ``"geo": null``.
``geocode`` is imported lazily, only when a geocoder is asked for.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol

from lmr.errors import ConfigError
from lmr.mentions import Mention

log = logging.getLogger(__name__)


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

    def __init__(self, resolver: Any) -> None:
        self.resolver = resolver
        self.failures = 0

    def resolve(self, mentions: Sequence[Mention], post: dict[str, Any], text: str) -> list[dict[str, Any] | None]:
        if not mentions:
            return []
        try:
            results = self.resolver.resolve(list(mentions), {**post, "text": text})
        except Exception as exc:
            self.failures += 1
            log.warning("geocoder failed for a post (geo left null): %s", exc)
            return [None] * len(mentions)
        out: list[dict[str, Any] | None] = []
        for r in list(results)[: len(mentions)]:
            d = r.to_dict() if hasattr(r, "to_dict") else r
            out.append(d if isinstance(d, dict) else None)
        out.extend([None] * (len(mentions) - len(out)))
        return out

    def stats(self) -> dict[str, Any]:
        try:
            s = self.resolver.stats()
        except Exception:
            s = {}
        return {**(s if isinstance(s, dict) else {}), "failures": self.failures}


def build_geo_stage(
    backend: str | None,
    *,
    url: str | None = None,
    user_agent: str | None = None,
    cache_path: str | None = None,
    region: str | None = None,
) -> GeoStage:
    """``NoGeocoder`` when ``backend`` is None, else a resolver from ``geocode``."""
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
        resolver = build_resolver(backend=backend, url=url, user_agent=user_agent, cache_path=cache_path, region=region)
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"Geocoder {backend!r} cannot be built: {exc}.", "check --geocoder and its --geocoder-* options."
        ) from exc
    log.info("geocoder %s ready", backend)
    return ResolverStage(resolver)
