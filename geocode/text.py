"""Mention shape and the queries tried for a mention.

Names and mentions are keyed by :func:`lmr.names.norm` (see :mod:`lmr.names`):
accents removed, case folded, ``saint``/``st``-like forms on one spelling, a
leading ``the`` dropped.

:func:`variants` turns a mention into the queries tried in order: the whole
mention, then without a hashtag and split at camel case, then without a type
word (``Harris County`` -> ``Harris`` with a ``county`` hint), then the squashed
form (``Fortmcmurray``), then the longest word n-grams inside it (``Chico's
WalMart`` -> ``Chico``), each with a match weight that the scorer uses. Arabic mentions have
their own queries (clitics, the article, leading type words: :mod:`geocode.arabic`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from geocode import arabic
from lmr.language import script_of
from lmr.names import fold, norm, split_camel, tokens


def _words(text: str) -> list[str]:
    return text.split()


#: Trailing words that say what kind of place a mention is, with the kind they hint at.
TYPE_WORDS: dict[str, str] = {
    "county": "admin2",
    "co": "admin2",
    "cnty": "admin2",
    "parish": "admin2",
    "district": "admin2",
    "dist": "admin2",
    "municipality": "admin2",
    "borough": "admin2",
    "province": "admin1",
    "prov": "admin1",
    "state": "admin1",
    "region": "admin1",
    "governorate": "admin1",
    "territory": "admin1",
    "city": "city",
    "town": "city",
    "township": "city",
    "village": "city",
    "villages": "city",
    "area": "city",
    "island": "island",
    "islands": "island",
}
#: Words that mark a mention as a point of interest, road or natural feature.
POI_WORDS = frozenset(
    _words(
        """river creek lake dam bay beach falls mountain mountains mtns hill hills valley forest park reserve
        road rd street st avenue ave boulevard blvd highway hwy freeway fwy interstate bridge lane ln drive
        dr route pkwy parkway expressway trail school hs elementary university college campus hospital
        church mosque temple airport station stadium mall center centre market hotel restaurant shelter
        office council library museum zoo port harbour harbor plant base camp walmart"""
    )
)
#: Words that often follow a place name in hashtags and carry no place meaning.
NOISE_WORDS = frozenset(
    _words(
        """flood floods flooding fire fires wildfire wildfires quake earthquake strong relief rescue storm
        hurricane cyclone news weather update help recovery disaster emergency rain rains strong"""
    )
)
#: Words that, followed by a name, make a storm's name (``#HurricaneDorian``), which is not a place.
STORM_WORDS = frozenset(("hurricane", "cyclone", "typhoon", "storm", "tropical", "tropicalstorm", "ts"))


def squash(text: str) -> str:
    """The key without spaces: ``"Fort McMurray"`` -> ``"ftmcmurray"``."""
    return norm(text).replace(" ", "")


def raw_squash(text: str) -> str:
    """Letters and digits only, no canonical forms: ``"Fort McMurray"`` -> ``"fortmcmurray"`` (hashtags)."""
    return re.sub(r"[^\w]|_", "", fold(text).casefold())


def is_latin(text: str) -> bool:
    """Whether ``text`` is written in Latin letters (after removing accents)."""
    return all(ord(ch) < 0x250 or not ch.isalpha() for ch in fold(text))


def is_arabic(text: str) -> bool:
    """Whether ``text`` is written in Arabic letters (see :func:`lmr.language.script_of`)."""
    return script_of(text) == "arabic"


@dataclass(frozen=True)
class Variant:
    """One query tried for a mention: its key, match weight and the kind its shape hints at."""

    key: str
    weight: float
    kind_hint: str | None = None
    partial: bool = False


def shape_hint(text: str) -> str | None:
    """The kind a mention's last word hints at: ``county``-like -> ``admin2``, ``river`` -> ``poi``."""
    if is_arabic(text):
        return arabic.shape_hint(text)
    toks = tokens(split_camel(text))
    if not toks:
        return None
    last = toks[-1]
    if last in TYPE_WORDS and len(toks) > 1:
        return TYPE_WORDS[last]
    if any(t in POI_WORDS for t in toks[1:]) or (len(toks) > 1 and toks[0] in ("hwy", "highway", "route", "i")):
        return "poi"
    return None


def is_storm_name(text: str) -> bool:
    """``#HurricaneDorian``, ``Cyclone Idai``, ``Tropical Storm Florence``: a storm, not a place.

    ``Hurricane`` alone (a town in Utah) and ``Hurricane Creek`` (a type word follows) stay places.
    """
    toks = tokens(split_camel(text))
    if len(toks) < 2 or toks[0] not in STORM_WORDS:
        return False
    rest = [t for t in toks[1:] if t not in STORM_WORDS]
    return bool(rest) and not any(t in POI_WORDS or t in TYPE_WORDS for t in rest)


def variants(text: str, max_ngram: int = 4) -> list[Variant]:
    """The queries to try for a mention, best first (see the module docstring); none for a storm's name."""
    out: list[Variant] = []
    if is_storm_name(text):
        return out
    seen: set[str] = set()

    def add(key: str, weight: float, hint: str | None = None, partial: bool = False) -> None:
        if key and key not in seen and len(key.replace(" ", "")) >= 2:
            seen.add(key)
            out.append(Variant(key, weight, hint, partial))

    if is_arabic(text):
        arabic.arabic_variants(text, add, max_ngram)
        return out
    hint = shape_hint(text)
    base = tokens(text)
    add(" ".join(base), 1.0, hint)
    split = tokens(split_camel(text))
    add(" ".join(split), 0.97, hint)
    # Drop trailing noise words from hashtags (#HoustonStrong, #KeralaFloods).
    core = list(split)
    while len(core) > 1 and core[-1] in NOISE_WORDS:
        core.pop()
    while len(core) > 1 and core[0] in NOISE_WORDS:
        core.pop(0)
    add(" ".join(core), 0.95, hint)
    if len(core) > 1 and core[-1] in TYPE_WORDS and not (len(core) == 2 and core[0] in _STOP):
        add(" ".join(core[:-1]), 0.93, TYPE_WORDS[core[-1]])
    # "Northern California", "Southeast Texas", "downtown Houston", "Greater Houston".
    if len(core) > 1 and core[0] in DIRECTION_WORDS:
        rest = core[1:]
        if rest[-1] in TYPE_WORDS and len(rest) > 1:
            rest = rest[:-1]
        if not all(t in TYPE_WORDS or t in _STOP or t in DIRECTION_WORDS for t in rest):
            add(" ".join(rest), 0.85, hint)
    if len(core) > 1 and core[0] in ("city", "town", "county", "province", "state", "village") and core[1] == "of":
        add(" ".join(core[2:]), 0.93, TYPE_WORDS.get(core[0]))
    if len(split) == 1 or "".join(split) != " ".join(split):
        add("".join(core), 0.9, hint)
    add(raw_squash(text), 0.9, hint)
    # Leading words of longer mentions ("Chico's WalMart", "Charlotte Humane Society", "Latta/Marion").
    if len(core) > 1:
        for n in range(min(max_ngram, len(core) - 1), 0, -1):
            gram = core[:n]
            if all(
                t in POI_WORDS
                or t in TYPE_WORDS
                or t in NOISE_WORDS
                or t in _STOP
                or t in DIRECTION_WORDS
                or t.isdigit()
                for t in gram
            ):
                continue
            if n == 1 and len(gram[0]) < 3:
                continue
            add(" ".join(gram), 0.55 + 0.05 * n, None, partial=True)
    return out


DIRECTION_WORDS = frozenset(
    _words(
        """north south east west northern southern eastern western central northeast northwest southeast
        southwest ne nw se sw n s e w upper lower downtown greater metro midtown uptown inner outer coastal
        rural"""
    )
)
_STOP = frozenset(
    _words(
        """the of in on at to for from and or by with near north south east west central upper lower new old n
        s e w ne nw se sw national state county city great little big"""
    )
)
