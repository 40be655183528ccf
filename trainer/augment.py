"""Name-swap augmentation: gold mentions replaced with other real place names, offsets rewritten.

A model trained on a few disasters learns their names (Houston, Pedernales) as much as the context
that makes a word a place ("flooding in ___", "#___Strong"). Swapping each gold mention of a training
post, with probability ``rate``, for a random place of a comparable kind from the offline gazetteer
(:mod:`geocode.gazetteer`: countries, first- and second-level divisions, towns of 15,000+, worldwide)
keeps the context and varies the name. The replacement is written in the mention's surface style:
``#Hashtag`` (spaces dropped, CamelCase or lower as the tag was), all lower, ALL CAPS, or an
abbreviation (``Tx``, ``NYC``: swapped for another short form or code). The same mention text within
a post gets the same replacement. Mentions without a gazetteer class (streets, POIs, islands) stay.

``case_noise`` capitalises some words outside the mentions of that share of posts, so capitals
alone do not make a place. Everything is seeded: the same seed gives the same augmented posts.
"""

from __future__ import annotations

import itertools
import random
import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from lmr.readers import Example, Span
from lmr.words import char_to_word_bounds, split_words

#: IDRISI fine type -> gazetteer kind whose names replace it.
KIND_OF = {
    "Country": "country",
    "State": "admin1",
    "County": "admin2",
    "District": "admin2",
    "City/town": "city",
    "Neighborhood": "city",
}
MIN_CITY_POPULATION = 15_000
_NAME_OK = re.compile(r"^[A-Za-z][A-Za-z .'\-]*[A-Za-z.]$")
_WORD = re.compile(r"[A-Za-z]+")


@dataclass
class NamePool:
    """Replacement names by gazetteer kind, and short forms for abbreviations."""

    names: dict[str, list[str]]
    short: list[str] = field(default_factory=list)  # mixed-case short forms: Tx, Fla, Calif
    codes: list[str] = field(default_factory=list)  # capital codes: TX, UK, NYC

    @classmethod
    def from_gazetteer(cls) -> NamePool:
        """Names from the offline gazetteer index (built on first use, see :mod:`geocode.gazetteer`)."""
        from geocode import aliases, gazetteer

        path = gazetteer.open_gazetteer().path
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = con.execute(
                "SELECT kind, name FROM places WHERE kind IN ('country', 'admin1', 'admin2')"
                " OR (kind = 'city' AND pop >= ?)",
                (MIN_CITY_POPULATION,),
            ).fetchall()
        finally:
            con.close()
        names: dict[str, set[str]] = {k: set() for k in set(KIND_OF.values())}
        for kind, name in rows:
            if isinstance(name, str) and _NAME_OK.match(name):
                names[kind].add(name)
        abbr = aliases.load_aliases().us_state_abbreviations
        short = sorted({a for forms in abbr.values() for a in forms if len(a) <= 5 and "." not in a})
        codes = sorted(set(abbr) | {"UK", "USA", "UAE", "NYC", "DRC", "NZ", "PK", "KPK", "AJK"})
        return cls({k: sorted(v) for k, v in names.items()}, short, codes)


def _style(surface: str) -> str:
    body = surface.lstrip("#")
    if surface.startswith("#"):
        return "hashtag-lower" if body.islower() else "hashtag"
    letters = [c for c in body if c.isalpha()]
    if 1 < len(letters) <= 3 or (len(letters) <= 5 and "." in body):
        return "abbr-caps" if body.isupper() else "abbr"
    if len(letters) > 1 and body.isupper():
        return "caps"
    if body.islower():
        return "lower"
    return "plain"


def restyle(name: str, style: str) -> str:
    """``name`` written in ``style`` (see :func:`_style`)."""
    if style == "hashtag":
        return "#" + "".join(w[:1].upper() + w[1:] for w in _WORD.findall(name))
    if style == "hashtag-lower":
        return "#" + "".join(_WORD.findall(name)).lower()
    if style == "caps":
        return name.upper()
    if style == "lower":
        return name.lower()
    return name


def _replacement(span: Span, style: str, pool: NamePool, rng: random.Random) -> str | None:
    """A raw replacement name (restyled per occurrence), or None to keep the mention."""
    if style == "abbr-caps" and pool.codes:
        return rng.choice(pool.codes)
    if style == "abbr" and pool.short:
        return rng.choice(pool.short)
    kind = KIND_OF.get(span.type)
    if kind is None or not pool.names.get(kind):
        return None
    return rng.choice(pool.names[kind])


def _aligned(text: str, spans: Sequence[Span]) -> bool:
    starts, ends = char_to_word_bounds(split_words(text))
    return all(sp.start in starts and sp.end in ends for sp in spans)


def swap_names(example: Example, pool: NamePool, rng: random.Random) -> Example:
    """``example`` with its gazetteer-class mentions replaced (the original when nothing could change)."""
    spans = sorted(example.spans, key=lambda sp: (sp.start, sp.end))
    if not spans or any(a.end > b.start for a, b in itertools.pairwise(spans)):
        return example  # overlapping gold spans: leave the post as it is
    chosen: dict[tuple[str, bool], str | None] = {}
    parts: list[str] = []
    new_spans: list[Span] = []
    pos = 0
    for sp in spans:
        surface = example.text[sp.start : sp.end]
        style = _style(surface)
        key = (surface.lstrip("#").casefold(), style.startswith("abbr"))  # one place per mention text and form
        if key not in chosen:
            chosen[key] = _replacement(sp, style, pool, rng)
        raw = chosen[key]
        new = surface if raw is None else raw if style.startswith("abbr") else restyle(raw, style)
        parts.append(example.text[pos : sp.start])
        start = sum(map(len, parts))
        parts.append(new)
        new_spans.append(replace(sp, start=start, end=start + len(new), text=new))
        pos = sp.end
    parts.append(example.text[pos:])
    text = "".join(parts)
    if text == example.text or not _aligned(text, new_spans):
        return example
    return replace(example, text=text, spans=new_spans, meta={**example.meta, "augmented": "name-swap"})


def add_case_noise(example: Example, rng: random.Random, share: float = 0.15) -> Example:
    """Capitalise about ``share`` of the lower-case words outside the mentions (offsets do not move)."""
    chars = list(example.text)
    inside = [False] * len(chars)
    for sp in example.spans:
        inside[sp.start : sp.end] = [True] * (sp.end - sp.start)
    changed = False
    for m in _WORD.finditer(example.text):
        if m.group().islower() and not any(inside[m.start() : m.end()]) and rng.random() < share:
            chars[m.start()] = chars[m.start()].upper()
            changed = True
    if not changed:
        return example
    return replace(example, text="".join(chars), meta={**example.meta, "augmented": "case-noise"})


@dataclass
class AugmentReport:
    swapped: int = 0
    case_noised: int = 0
    posts: int = 0

    def summary(self) -> str:
        return f"name-swapped {self.swapped} and case-noised {self.case_noised} of {self.posts} training posts"


def augment(
    examples: Sequence[Example], *, name_swap: float, case_noise: float, seed: int, pool: NamePool | None = None
) -> tuple[list[Example], AugmentReport]:
    """Each post replaced, with probability ``name_swap``, by its name-swapped copy; then case noise."""
    rng = random.Random(seed)
    report = AugmentReport(posts=len(examples))
    if name_swap > 0 and pool is None:
        pool = NamePool.from_gazetteer()
    out: list[Example] = []
    for ex in examples:
        new = ex
        if pool is not None and ex.spans and rng.random() < name_swap:
            new = swap_names(ex, pool, rng)
            report.swapped += new is not ex
        if case_noise > 0 and rng.random() < case_noise:
            noised = add_case_noise(new, rng)
            report.case_noised += noised is not new
            new = noised
        out.append(new)
    return out, report
