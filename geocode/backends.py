"""Backends: one :class:`CandidateSource` interface (as geopy has one ``Geocoder``), answers as candidates.

* ``offline``: :class:`OfflineGeocoder`, a geopy geocoder over the local gazetteer
  (no network). It tries the mention's query variants (see :mod:`geocode.text`)
  and returns every matching place; ``raw`` holds the candidate.
* remote: :class:`RemoteSource` wraps any geopy geocoder behind a guarded call
  (rate limit, retries, circuit breaker) and turns its answers into candidates.
* ``nominatim`` (public or self-hosted with ``url``; a user agent is required),
  ``photon``, and any other geopy geocoder by name (``geopy.geocoders.get_geocoder_for_service``)
  with keyword options. A key, where the service needs one, comes only from the
  ``LMR_GEOCODER_API_KEY`` environment variable.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import urlsplit

from geopy.geocoders import get_geocoder_for_service
from geopy.geocoders.base import Geocoder
from geopy.location import Location
from geopy.point import Point

from geocode.gazetteer import Gazetteer, importance, open_gazetteer
from geocode.results import BBox, Candidate, GeoContext
from geocode.text import variants
from lmr.config import redact_url, secret_from_env
from lmr.errors import ConfigError
from lmr.language import language_of
from lmr.names import is_upper_code, split_camel

API_KEY_ENV = "LMR_GEOCODER_API_KEY"
DEFAULT_TIMEOUT = 10.0  # geopy's default of 1 s is too short for public services
REMOTE_LIMIT = 5

_SECRET_PARAM = re.compile(r"((?:api_?key|key|token|access_token|apikey|auth|password)=)[^&\s'\"]+", re.IGNORECASE)


class RedactKeys(logging.Filter):
    """Blank key-like URL parameters in log records (geopy logs request URLs at DEBUG level)."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        clean = _SECRET_PARAM.sub(r"\1***", msg)
        key = secret_from_env(API_KEY_ENV)
        if key:
            clean = clean.replace(key, "***")
        if clean != msg:
            record.msg, record.args = clean, None
        return True


_REDACT = RedactKeys()


def install_log_redaction() -> None:
    """Attach :class:`RedactKeys` to geopy's and lmr's geocoder loggers (idempotent)."""
    for name in ("geopy", "geocode", "urllib3", "urllib3.connectionpool", "requests", "httpx"):
        lg = logging.getLogger(name)
        if _REDACT not in lg.filters:
            lg.addFilter(_REDACT)


class CandidateSource(Protocol):
    """Where a resolver's candidates come from.

    ``name`` labels resolutions and cache keys; ``context_aware`` says whether the
    answers depend on the event context (then the context is part of the cache key);
    ``query`` turns a mention into the text sent; ``candidates`` may raise
    :class:`~lmr.errors.GeocoderError` (never cached by the resolver).
    """

    @property
    def name(self) -> str: ...

    @property
    def context_aware(self) -> bool: ...

    def query(self, text: str) -> str: ...

    def candidates(self, query: str, context: GeoContext | None = None) -> list[Candidate]: ...

    def stats(self) -> dict[str, Any]: ...


# ----------------------------------------------------------------------------- offline


class OfflineGeocoder(Geocoder):  # type: ignore[misc]
    """geopy-compatible geocoder over the offline gazetteer; also a :class:`CandidateSource`.

    It scores the event context itself (in :mod:`geocode.disambiguate`), so its answers do not depend on it.
    """

    name = "offline"
    context_aware = False

    def __init__(self, gazetteer: Gazetteer | None = None, *, max_candidates: int = 60) -> None:
        super().__init__(user_agent="lmr-offline")
        self._gazetteer = gazetteer
        self.max_candidates = max_candidates

    def query(self, text: str) -> str:
        return " ".join(text.split())

    def stats(self) -> dict[str, Any]:
        return {}

    @property
    def gazetteer(self) -> Gazetteer:
        if self._gazetteer is None:
            self._gazetteer = open_gazetteer()
        return self._gazetteer

    def candidates(self, query: str, context: GeoContext | None = None) -> list[Candidate]:
        """Every place the query's variants name, with ``match`` = name quality x variant weight."""
        upper = is_upper_code(query)
        found: dict[tuple[str, float, float], Candidate] = {}
        exact_hit = False
        for v in variants(query):
            if v.partial and exact_hit:
                break
            for c in self.gazetteer.lookup(v.key, upper=upper):
                m = round(c.match * v.weight, 4)
                key = (c.kind, round(c.lat, 2), round(c.lon, 2))
                old = found.get(key)
                if old is None or m > old.match:
                    found[key] = Candidate(**{**c.__dict__, "match": m})
                if not v.partial:
                    exact_hit = True
        if not found:
            # One typo away from an important place ("Moambique", "Biera"): whole mention, then without type word.
            for v in variants(query)[:4]:
                if v.partial:
                    continue
                for c in self.gazetteer.fuzzy(v.key):
                    key = (c.kind, round(c.lat, 2), round(c.lon, 2))
                    found.setdefault(key, Candidate(**{**c.__dict__, "match": round(c.match * v.weight, 4)}))
                if found:
                    break
        out = sorted(found.values(), key=lambda c: (c.match, c.importance), reverse=True)
        return out[: self.max_candidates]

    def geocode(self, query: str, *, exactly_one: bool = True, **_: Any) -> Location | list[Location] | None:
        cands = self.candidates(query)
        if not cands:
            return None
        locs = [Location(c.display_name, Point(c.lat, c.lon), c.to_dict()) for c in cands]
        return locs[0] if exactly_one else locs


# ----------------------------------------------------------------------------- remote


def _float(x: Any) -> float | None:
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


_NOMINATIM_KIND = {
    "country": "country",
    "state": "admin1",
    "province": "admin1",
    "region": "admin1",
    "county": "admin2",
    "district": "admin2",
    "city": "city",
    "town": "city",
    "village": "city",
    "hamlet": "city",
    "municipality": "city",
    "suburb": "city",
    "neighbourhood": "city",
    "continent": "continent",
}


def candidate_from_nominatim(raw: dict[str, Any]) -> Candidate | None:
    """A Nominatim ``jsonv2``/``json`` result (as in IDRISI-D's ``osm_json``) as a candidate."""
    lat, lon = _float(raw.get("lat")), _float(raw.get("lon"))
    if lat is None or lon is None:
        return None
    addr = raw.get("address") or {}
    atype = str(raw.get("addresstype") or raw.get("type") or "")
    rank = int(raw.get("place_rank") or 30)
    if atype in _NOMINATIM_KIND:
        kind = _NOMINATIM_KIND[atype]
    elif rank <= 4:
        kind = "country"
    elif rank <= 8:
        kind = "admin1"
    elif rank <= 12:
        kind = "admin2"
    elif rank <= 20:
        kind = "city"
    else:
        kind = "poi"
    box = raw.get("boundingbox")
    bbox: BBox | None = None
    if isinstance(box, list) and len(box) == 4:
        s, n, w, e = (_float(x) for x in box)
        if None not in (s, n, w, e):
            bbox = (s, w, n, e)  # type: ignore[assignment]
    cc = addr.get("country_code")
    imp = _float(raw.get("importance"))
    return Candidate(
        name=str(raw.get("name") or str(raw.get("display_name", "")).split(",")[0]),
        lat=lat,
        lon=lon,
        kind=kind,
        feature_type=atype or kind,
        country_code=cc.upper() if isinstance(cc, str) else None,
        admin1=addr.get("state") or addr.get("province") or addr.get("region"),
        admin2=addr.get("county") or addr.get("state_district"),
        importance=imp if imp is not None else importance(kind, 0),
        bbox=bbox,
        display_name=str(raw.get("display_name", "")),
        match=1.0,
    )


def candidate_from_photon(raw: dict[str, Any]) -> Candidate | None:
    """A Photon GeoJSON feature as a candidate."""
    geom = raw.get("geometry") or {}
    props = raw.get("properties") or {}
    coords = geom.get("coordinates") or []
    if len(coords) != 2:
        return None
    ptype = str(props.get("type") or props.get("osm_value") or "")
    kind = _NOMINATIM_KIND.get(ptype, "poi")
    ext = props.get("extent")
    bbox = (ext[3], ext[0], ext[1], ext[2]) if isinstance(ext, list) and len(ext) == 4 else None
    cc = props.get("countrycode")
    name = str(props.get("name") or "")
    parts = [name, props.get("city"), props.get("county"), props.get("state"), props.get("country")]
    return Candidate(
        name=name,
        lat=float(coords[1]),
        lon=float(coords[0]),
        kind=kind,
        feature_type=ptype or kind,
        country_code=cc.upper() if isinstance(cc, str) else None,
        admin1=props.get("state"),
        admin2=props.get("county"),
        importance=importance(kind, 0),
        bbox=bbox,
        display_name=", ".join(dict.fromkeys(str(p) for p in parts if p)),
        match=1.0,
    )


def candidate_from_location(loc: Location) -> Candidate | None:
    """Any geopy ``Location`` as a candidate (service-specific ``raw`` formats first)."""
    raw = loc.raw if isinstance(loc.raw, dict) else {}
    if "kind" in raw and "match" in raw:
        return Candidate.from_dict(raw)
    if "lat" in raw and "lon" in raw:
        return candidate_from_nominatim(raw)
    if raw.get("type") == "Feature":
        return candidate_from_photon(raw)
    return Candidate(
        name=str(loc.address).split(",")[0],
        lat=loc.latitude,
        lon=loc.longitude,
        kind="poi",
        feature_type="place",
        display_name=str(loc.address),
        importance=0.5,
    )


def _default_adapter_factory() -> Callable[..., Any]:
    """geopy's HTTP adapter without transport-level retries: the Guard owns retries, backoff and the breaker."""
    import functools

    from geopy.adapters import RequestsAdapter, URLLibAdapter

    if RequestsAdapter.is_available:
        return functools.partial(RequestsAdapter, max_retries=0)
    return URLLibAdapter


def geocoder_kwargs(service: str, context: GeoContext | None, language: str | None = None) -> dict[str, Any]:
    """Per-call options that pass the event context, and the mention's language, to services that understand them.

    ``language`` (an ISO 639-1 code such as ``ar``) becomes Nominatim's ``accept-language`` and Photon's ``lang``
    (geopy's ``language`` argument); other services get it where their geopy ``geocode`` takes ``language``.
    """
    kw: dict[str, Any] = {"exactly_one": False}
    if language and _takes_language(service):
        kw["language"] = language
    if service == "nominatim":
        kw.update(limit=REMOTE_LIMIT, addressdetails=True)
        if context and context.country_codes:
            kw["country_codes"] = [c.lower() for c in context.country_codes]
        if context and context.bbox:
            s, w, n, e = context.bbox
            kw["viewbox"] = [(n, w), (s, e)]
    elif service == "photon":
        kw["limit"] = REMOTE_LIMIT
    return kw


def _takes_language(service: str) -> bool:
    """Whether geopy's geocoder for ``service`` takes a ``language`` argument in ``geocode``."""
    import inspect

    try:
        cls = get_geocoder_for_service(service)
    except Exception:
        return False
    return "language" in inspect.signature(cls.geocode).parameters


def build_geocoder(
    service: str,
    *,
    url: str | None = None,
    user_agent: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    options: dict[str, Any] | None = None,
    adapter_factory: Callable[..., Any] | None = None,
) -> Geocoder:
    """A geopy geocoder by name (``nominatim``, ``photon``, ``arcgis``, ...) with keyword options."""
    install_log_redaction()
    redact_url(url)  # a password in the URL is masked in every log line (geopy logs request URLs)
    opts = dict(options or {})
    if any(k.lower() in ("api_key", "key", "apikey") for k in opts):
        raise ConfigError(
            "A geocoder key was passed as an option.",
            f"put it in the {API_KEY_ENV} environment variable instead (keys never go in flags or files).",
        )
    try:
        cls = get_geocoder_for_service(service)
    except Exception as exc:
        raise ConfigError(
            f"Unknown geocoder {service!r}.", "use offline, nominatim, photon or a geopy service name such as arcgis."
        ) from exc
    if service in ("nominatim", "photon") and not (user_agent or opts.get("user_agent")):
        raise ConfigError(
            f"The {service} geocoder needs a user agent that identifies your application.",
            "pass --user-agent 'my-app/1.0 (me@example.org)' or set LMR_USER_AGENT.",
        )
    if user_agent:
        opts.setdefault("user_agent", user_agent)
    opts.setdefault("timeout", timeout)
    opts.setdefault("adapter_factory", adapter_factory or _default_adapter_factory())
    if url:
        parts = urlsplit(url if "://" in url else f"https://{url}")
        opts.setdefault("domain", parts.netloc + parts.path.rstrip("/"))
        opts.setdefault("scheme", parts.scheme or "https")
    key = secret_from_env(API_KEY_ENV)
    if key:
        import inspect

        params = inspect.signature(cls.__init__).parameters
        for name in ("api_key", "apikey", "key"):
            if name in params:
                opts.setdefault(name, key)
                break
    try:
        geocoder: Geocoder = cls(**opts)
        return geocoder
    except TypeError as exc:
        raise ConfigError(
            f"The {service} geocoder does not accept these options: {sorted(k for k in opts if k != 'api_key')}.",
            "check the option names in geopy's documentation for this geocoder.",
        ) from exc
    except Exception as exc:  # geopy's ConfigurationError, e.g. a missing key
        raise ConfigError(
            f"The {service} geocoder cannot be built: {type(exc).__name__}.",
            f"check its options; a key goes in {API_KEY_ENV}.",
        ) from exc


class RemoteSource:
    """A geopy geocoder as a :class:`CandidateSource`: guarded calls, answers ranked as the service ranks them."""

    context_aware = True

    def __init__(self, geocoder: Geocoder, service: str, call: Callable[..., Any] | None = None) -> None:
        self.geocoder = geocoder
        self.service = service
        self._call = call if call is not None else geocoder.geocode

    @property
    def name(self) -> str:
        return self.service

    def query(self, text: str) -> str:
        return " ".join(split_camel(text).split())

    def candidates(self, query: str, context: GeoContext | None = None) -> list[Candidate]:
        found = self._call(query, **geocoder_kwargs(self.service, context, language_of(query)))
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

    def stats(self) -> dict[str, Any]:
        stats = getattr(self._call, "stats", None)
        return dict(stats()) if callable(stats) else {}
