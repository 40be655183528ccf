"""Resolve location mentions to places: offline gazetteer first, geopy geocoders for remote services.

    from geocode import build_resolver
    resolver = build_resolver("offline")              # or "nominatim", url=..., user_agent=...
    results = resolver.resolve(mentions, post, GeoContext(country_codes=("US",)))

See :mod:`geocode.disambiguate` for the scoring and :mod:`geocode.resolver` for caching and limits.
"""

from geocode.resolver import Resolver, ResolverOptions, build_resolver
from geocode.results import Candidate, GeoContext, Resolution, Unresolved

__all__ = ["Candidate", "GeoContext", "Resolution", "Resolver", "ResolverOptions", "Unresolved", "build_resolver"]
