"""The gazetteer as a dictionary tagger (the recognition baseline), on the real offline index.

The index is built once under LMR_CACHE_DIR or ~/.cache/lmr (see tests/geocode/test_offline.py); the names
the tests look for are checked against the index itself, so a changed gazetteer fails them with a reason.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geocode.build import IMPORTANT_POPULATION
from geocode.dictionary_tagger import DictionaryTagger, NameSet, counts
from geocode.gazetteer import Gazetteer, open_gazetteer
from lmr.names import norm
from lmr.words import split_words


@pytest.fixture(scope="module")
def gazetteer() -> Gazetteer:
    return open_gazetteer()


@pytest.fixture(scope="module")
def tagger(gazetteer: Gazetteer) -> DictionaryTagger:
    return DictionaryTagger.from_gazetteer(gazetteer)


def _marks(tagger: DictionaryTagger, text: str) -> list[tuple[str, int, int]]:
    return [(m.text, m.start, m.end) for m in tagger.tag(text)]


def _at(text: str, name: str) -> tuple[str, int, int]:
    i = text.index(name)
    return (name, i, i + len(name))


def _big_town(gazetteer: Gazetteer, name: str) -> None:
    """The test's premise: ``name`` is a town of the gazetteer large enough to count."""
    assert any(c.kind == "city" and c.population >= IMPORTANT_POPULATION for c in gazetteer.lookup(norm(name))), name


def test_an_english_city_is_marked_with_its_offsets(tagger: DictionaryTagger, gazetteer: Gazetteer) -> None:
    _big_town(gazetteer, "Houston")
    text = "Flooding across Houston tonight, stay off the roads"
    assert _marks(tagger, text) == [_at(text, "Houston")]


def test_a_city_inside_an_english_hashtag_is_marked(tagger: DictionaryTagger) -> None:
    text = "Volunteers needed #HoustonFlood"
    assert _marks(tagger, text) == [_at(text, "Houston")]


def test_an_arabic_city_is_marked_with_its_offsets(tagger: DictionaryTagger, gazetteer: Gazetteer) -> None:
    _big_town(gazetteer, "الكويت")
    text = "أمطار غزيرة في الكويت اليوم"
    assert _marks(tagger, text) == [_at(text, "الكويت")]


def test_a_city_inside_an_arabic_hashtag_keeps_exact_offsets(tagger: DictionaryTagger) -> None:
    text = "شوارع غارقة بعد الأمطار #سيول_الكويت"
    (mark,) = [m for m in tagger.tag(text) if m.text == "الكويت"]
    assert (mark.start, mark.end) == (text.rindex("الكويت"), len(text))
    assert text[mark.start - 1] == "_"


def test_arabic_is_matched_in_its_matching_form(tagger: DictionaryTagger) -> None:
    text = "الوضع في الكويـــت صعب"  # tatweel inside the name
    assert _marks(tagger, text) == [_at(text, "الكويـــت")]


def test_the_longest_name_wins(tagger: DictionaryTagger) -> None:
    assert norm("New York") in tagger.names.names and norm("York") in tagger.names.names
    text = "Shelters open in New York for the night"
    assert _marks(tagger, text) == [_at(text, "New York")]


def test_words_that_are_no_place_are_not_marked(tagger: DictionaryTagger) -> None:
    assert tagger.tag("Please donate to the relief effort, every bit helps") == []
    assert tagger.tag("نرجو من الجميع البقاء في المنازل") == []


def test_a_code_needs_capitals_and_a_lowercase_word_is_no_name(tagger: DictionaryTagger) -> None:
    code = next(c for c in sorted(tagger.names.codes) if c.isalpha() and c not in tagger.names.names)
    text = f"roads closed across {code.upper()}"
    assert _marks(tagger, text) == [_at(text, code.upper())]
    assert tagger.tag(f"roads closed across {code.title()}") == []
    assert _marks(tagger, "flooding in Houston") == [_at("flooding in Houston", "Houston")]
    assert tagger.tag("flooding in houston") == []


def test_links_and_handles_are_never_marked(tagger: DictionaryTagger) -> None:
    assert tagger.tag("@Houston https://example.com/Houston www.Houston.org") == []


def test_names_only_of_small_towns_are_left_out(gazetteer: Gazetteer, tagger: DictionaryTagger) -> None:
    kept: dict[str, bool] = {}
    for key, kind, population, caps in gazetteer.names():
        if not caps and key.isalpha() and key.isascii() and len(key) >= 6:
            kept[key] = kept.get(key, False) or counts(kind, population)
    small = next(k for k, v in kept.items() if not v)
    big = next(k for k, v in kept.items() if v)
    assert tagger.tag(f"news from {small.title()} today") == []
    text = f"news from {big.title()} today"
    assert _marks(tagger, text) == [_at(text, big.title())]


def test_a_name_set_keeps_what_the_rule_counts() -> None:
    rows = [("springfield", "city", 120_000, False), ("smallville", "city", 900, False), ("ks", "admin1", 0, True)]
    names = NameSet.from_rows(rows)
    assert names.names == frozenset({"springfield"}) and names.codes == frozenset({"ks"})
    tagger = DictionaryTagger(names)
    text = "Smallville and Springfield, KS"
    assert _marks(tagger, text) == [_at(text, "Springfield"), _at(text, "KS")]


_NAMES = ["Houston", "New York", "St. Louis", "Texas", "TX", "الكويت", "حفر الباطن", "القاهرة", "Kuwait"]
_PIECES = st.one_of(
    st.sampled_from(_NAMES),
    st.sampled_from([" ", "#", "_", "-", ".", "'", "@", "https://t.co/", "\n", "في ", "ب", "و", "ـ"]),
    st.text(max_size=8),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_PIECES, max_size=14).map("".join))
def test_marks_are_sorted_disjoint_names_on_word_bounds(tagger: DictionaryTagger, text: str) -> None:
    marks = tagger.tag(text)
    starts = {w.start for w in split_words(text)}
    ends = {w.end for w in split_words(text)}
    last_end = 0
    for m in marks:
        assert 0 <= last_end <= m.start < m.end <= len(text)
        assert m.start in starts and m.end in ends
        assert text[m.start : m.end] == m.text
        assert tagger.names.knows(m.text)
        last_end = m.end
