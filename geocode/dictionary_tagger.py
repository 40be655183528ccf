"""A dictionary tagger over the offline gazetteer: the spaCy-free baseline beside a model's recognition F1.

It marks every run of words that *is* a place name of the gazetteer, with no model at all, so the
recognition figures show what a model adds to looking names up. A post is split into words by the
splitter the models use (:func:`lmr.words.split_words`: hashtags split at ``_`` and camel case, offsets
kept), and, left to right, the longest run of up to :data:`MAX_WORDS` words whose name key
(:func:`lmr.names.norm`, which writes Arabic in its matching form, :func:`lmr.language.match_form`) is a
known name is marked; marked runs never overlap.

Which names count (one rule, stated once): a name counts when at least one place bearing it is a
continent, macro region, country, first- or second-level division, or a town of
:data:`IMPORTANT_POPULATION` people or more, the population from which the gazetteer counts a town
important enough for its typo-tolerant index (:mod:`geocode.build`). Names only of smaller towns are
left out: the gazetteer holds every town of 500 people, and their names include everyday words.

How a run is read:

* a run starts and ends on a word of letters; inside it only the joiners of names may stand
  (``St. Louis``, ``Winston-Salem``, ``Hawke's Bay``, ``حفر_الباطن``);
* a code (``TX``, ``PR``) is a name only when written in capitals, as in :meth:`Gazetteer.lookup`;
* a single word written in lower case is not a name (English writes names capitalised: ``can``,
  ``reading``, ``bath``);
* words inside links and @handles are never marked.

Nothing else is done to a run: no clitic is taken off an Arabic word (``بالكويت`` is not looked up as
``الكويت``), no article added or dropped, no type word (``Harris County``, ``محافظة الجيزة``) removed.
Those are the geocoder's query expansions (:func:`geocode.text.variants`) for a mention already found;
here the question is only whether the run of words is itself a name.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from geocode.build import IMPORTANT_POPULATION
from geocode.gazetteer import Gazetteer, open_gazetteer
from lmr.language import LINKS
from lmr.mentions import Mention
from lmr.names import is_upper_code, norm
from lmr.words import Word, split_words

MAX_WORDS = 5  # the longest run of words looked up (joiners count as words)
DIVISION_KINDS = frozenset({"continent", "region", "country", "admin1", "admin2"})
JOINERS = frozenset("_-.'’&")
SCORE = 1.0  # a dictionary has no confidence: every mark scores the same


def counts(kind: str, population: int) -> bool:
    """Whether a place of this kind and population lends its names to the tagger (the module's one rule)."""
    return kind in DIVISION_KINDS or population >= IMPORTANT_POPULATION


@dataclass(frozen=True)
class NameSet:
    """The name keys the tagger marks: ``names`` match in any case, ``codes`` only when written in capitals."""

    names: frozenset[str] = field(repr=False)
    codes: frozenset[str] = field(repr=False)

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[str, str, int, bool]]) -> NameSet:
        """From :meth:`Gazetteer.names` rows ``(key, kind, population, capitals_only)``, kept by :func:`counts`."""
        names: set[str] = set()
        codes: set[str] = set()
        for key, kind, population, caps in rows:
            if key and counts(kind, population):
                (codes if caps else names).add(key)
        return cls(frozenset(names), frozenset(codes))

    def __len__(self) -> int:
        return len(self.names | self.codes)

    def knows(self, surface: str) -> bool:
        """Whether ``surface`` (a run of a post's text) is a name the tagger marks."""
        key = norm(surface)
        return key in self.names or (key in self.codes and is_upper_code(surface))


def _is_letters(w: Word) -> bool:
    return w.text[:1].isalpha()


class DictionaryTagger:
    """Marks the gazetteer's names in posts (see the module docstring); thread-safe once built."""

    def __init__(self, names: NameSet, max_words: int = MAX_WORDS) -> None:
        if max_words < 1:
            raise ValueError("max_words must be at least 1")
        self.names = names
        self.max_words = max_words

    @classmethod
    def from_gazetteer(cls, gazetteer: Gazetteer | None = None, max_words: int = MAX_WORDS) -> DictionaryTagger:
        """A tagger over every name of ``gazetteer`` (default: the offline index, built on first use)."""
        g = gazetteer or open_gazetteer()
        return cls(NameSet.from_rows(g.names()), max_words)

    def tag(self, text: str) -> list[Mention]:
        """The names in ``text``, in order, never overlapping, each with its exact character offsets."""
        return self.tag_words(text, split_words(text))

    def tag_words(self, text: str, words: Sequence[Word]) -> list[Mention]:
        """:meth:`tag` on words already split by :func:`lmr.words.split_words`."""
        links = [m.span() for m in LINKS.finditer(text)]
        usable = [_is_letters(w) and not any(s <= w.start < e for s, e in links) for w in words]
        out: list[Mention] = []
        i = 0
        while i < len(words):
            last = self._longest(text, words, usable, i) if usable[i] else None
            if last is None:
                i += 1
                continue
            start, end = words[i].start, words[last].end
            out.append(Mention(text[start:end], start, end, SCORE))
            i = last + 1
        return out

    def _longest(self, text: str, words: Sequence[Word], usable: Sequence[bool], i: int) -> int | None:
        """The index of the last word of the longest name starting at word ``i``, or ``None``."""
        ends = [i]
        for j in range(i + 1, min(len(words), i + self.max_words)):
            if usable[j]:
                ends.append(j)
            elif words[j].text not in JOINERS:
                break
        for j in reversed(ends):
            if j == i and words[i].text[0].islower():
                continue
            if self.names.knows(text[words[i].start : words[j].end]):
                return j
        return None
