"""The values that cross the resolver's boundary."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

from lmr.errors import ConfigError
from lmr.place_types import COARSE_OF, PLACE_TYPES, PlaceType

UnresolvedReason = Literal["no_candidate", "ambiguous", "backend_error", "rate_limited", "deadline"]
REASONS: tuple[str, ...] = ("no_candidate", "ambiguous", "backend_error", "rate_limited", "deadline")

#: Words a mention's ``label`` may carry for each coarse place type: the types, IDRISI's fine types, synonyms.
_TYPE_WORDS: dict[str, PlaceType] = {
    **{t: t for t in PLACE_TYPES},
    **{fine.lower(): coarse for fine, coarse in COARSE_OF.items()},
    "province": "admin",
    "region": "admin",
    "admin1": "admin",
    "admin2": "admin",
    "town": "city",
    "village": "city",
    "neighbourhood": "city",
    "road": "street",
}


def place_type(label: str | None) -> PlaceType | None:
    """The coarse type a mention label carries, or ``None`` for an untyped label.

    ``"location"`` (today's untyped recognizer) -> ``None``; ``"city"``, ``"LOC:city"``,
    ``"location/city"`` or IDRISI's ``"City/town"`` -> ``"city"``.
    """
    if not label:
        return None
    low = label.strip().lower()
    if low in _TYPE_WORDS:
        return _TYPE_WORDS[low]
    for sep in (":", "/", "."):
        if sep in low:
            tail = low.rsplit(sep, 1)[1].strip()
            if tail in _TYPE_WORDS:
                return _TYPE_WORDS[tail]
    return None


#: A bounding box as ``(south, west, north, east)`` in degrees.
BBox = tuple[float, float, float, float]


class MentionLike(Protocol):
    """Anything with the text and character span of a mention (``lmr.mentions.Mention`` fits).

    A ``label`` attribute, where present, may carry a :data:`PlaceType` (see :func:`place_type`).
    """

    @property
    def text(self) -> str: ...

    @property
    def start(self) -> int: ...

    @property
    def end(self) -> int: ...


@dataclass(frozen=True)
class Resolution:
    """A mention resolved to a place. ``bbox`` is ``(south, west, north, east)`` when known.

    ``kind`` is the place's level as a :class:`Candidate` names it (continent, region, country, admin1, admin2,
    city, poi; '' when unknown); ``feature_type`` is the source's finer word for it (state, county, town ...).
    """

    text: str
    start: int
    end: int
    lat: float
    lon: float
    display_name: str
    country_code: str | None
    admin1: str | None
    feature_type: str
    bbox: BBox | None
    backend: str
    score: float
    kind: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["bbox"] = list(self.bbox) if self.bbox else None
        d["resolved"] = True
        return d


def resolution(
    text: str, span: tuple[int, int], c: Candidate, p: float, backend: str, *, by_match: bool = True
) -> Resolution:
    """``c`` as the place of a mention; ``score`` is the probability times the name match (a resolution) or the
    probability alone (a ranking)."""
    score = round(p * min(c.match, 1.0) if by_match else p, 4)
    return Resolution(
        text=text,
        start=span[0],
        end=span[1],
        lat=c.lat,
        lon=c.lon,
        display_name=c.display_name or c.name,
        country_code=c.country_code,
        admin1=c.admin1,
        feature_type=c.feature_type,
        bbox=c.bbox,
        backend=backend,
        score=score,
        kind=c.kind,
    )


@dataclass(frozen=True)
class Unresolved:
    """A mention that could not be resolved, and why (one of :data:`REASONS`)."""

    text: str
    start: int
    end: int
    reason: UnresolvedReason
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["resolved"] = False
        return d


@dataclass(frozen=True)
class GeoContext:
    """Event context given per stream or per call: a region box and/or ISO 3166-1 alpha-2 country codes."""

    bbox: BBox | None = None
    country_codes: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        codes = tuple(c.strip().upper() for c in self.country_codes if c.strip())
        bad = [c for c in codes if len(c) != 2 or not c.isalpha()]
        if bad:
            raise ConfigError(
                f"Region country codes {bad} are not ISO 3166-1 alpha-2 codes.", "use two letters, e.g. US,PR."
            )
        object.__setattr__(self, "country_codes", codes)
        if self.bbox is not None:
            s, w, n, e = (float(x) for x in self.bbox)
            if not (-90 <= s < n <= 90 and -180 <= w <= 180 and -180 <= e <= 180):
                raise ConfigError(
                    f"Region box {self.bbox} is not (south, west, north, east) in degrees.",
                    "give south<north within -90..90 and west/east within -180..180, e.g. 24.5,-107,37,-93.5.",
                )
            object.__setattr__(self, "bbox", (s, w, n, e))

    @property
    def empty(self) -> bool:
        return self.bbox is None and not self.country_codes

    def contains(self, lat: float, lon: float) -> bool:
        """Whether a point lies in the box (a box may cross the antimeridian: west > east)."""
        if self.bbox is None:
            return False
        s, w, n, e = self.bbox
        if not s <= lat <= n:
            return False
        return w <= lon <= e if w <= e else (lon >= w or lon <= e)

    def key(self) -> str:
        """A stable string for cache keys."""
        box = ",".join(f"{x:.4f}" for x in self.bbox) if self.bbox else ""
        return f"{box}|{','.join(sorted(self.country_codes))}"

    @classmethod
    def parse(cls, value: str | None) -> GeoContext | None:
        """Parse ``--region``: country codes ``US,PR`` or a box ``south,west,north,east``."""
        if value is None or not value.strip():
            return None
        parts = [p.strip() for p in value.split(",") if p.strip()]
        try:
            nums = [float(p) for p in parts]
        except ValueError:
            return cls(country_codes=tuple(parts))
        if len(nums) != 4:
            raise ConfigError(
                f"Region {value!r} has {len(nums)} numbers.", "give a box as south,west,north,east (four numbers)."
            )
        return cls(bbox=(nums[0], nums[1], nums[2], nums[3]))


@dataclass(frozen=True)
class Candidate:
    """A place a backend proposes for a query, before disambiguation."""

    name: str
    lat: float
    lon: float
    kind: str  # continent, region, country, admin1, admin2, city, poi
    feature_type: str
    country_code: str | None = None
    admin1: str | None = None
    admin2: str | None = None
    population: int = 0
    importance: float = 0.5
    bbox: BBox | None = None
    display_name: str = ""
    match: float = 1.0  # how well the name matched (1 = exact name)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["bbox"] = list(self.bbox) if self.bbox else None
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Candidate:
        box = d.get("bbox")
        return cls(**{**d, "bbox": tuple(box) if box else None})
