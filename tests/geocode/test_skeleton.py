"""Consonant skeletons: Arabic mentions of places GeoNames names only in Latin letters (real index, offline)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from geocode import Resolution, build_resolver
from geocode.resolver import Resolver
from geocode.skeleton import MIN_CONSONANTS, PREFIX, arabic_skeleton, latin_skeleton
from lmr.mentions import Mention


@pytest.fixture(scope="module")
def resolver() -> Resolver:
    return build_resolver("offline")


@pytest.mark.parametrize(
    ("arabic", "latin"),
    [
        ("الخفجي", "Al Khafjī"),  # the article, a long vowel dropped, خ as kh
        ("حفر الباطن", "Ḩafar al Bāţin"),  # two words, ط as ţ
        ("السليمانية", "As Sulaymānīyah"),  # an assimilated article, teh marbuta as -ah
        ("الفرافرة", "al Farāfirah"),  # a final -ah
        ("أبو فطيرة", "Abu Fatira"),
    ],
)
def test_an_arabic_name_and_its_romanization_share_a_skeleton(arabic: str, latin: str) -> None:
    assert arabic_skeleton(arabic) == latin_skeleton(latin) is not None


def test_short_or_different_names_get_no_or_another_skeleton() -> None:
    assert arabic_skeleton("قنا") is None and latin_skeleton("Qina") is None  # too few consonants to tell apart
    assert arabic_skeleton("المنيل") != latin_skeleton("‘Immanu‘el")  # the article counts
    assert arabic_skeleton("الخفجي") != arabic_skeleton("الجهراء")


def test_an_arabic_mention_finds_a_town_known_only_by_its_romanized_name(resolver: Resolver) -> None:
    post = "أمطار غزيرة على مدينة الخفجي الآن"
    i = post.index("الخفجي")
    res = resolver.resolve([Mention("الخفجي", i, i + 6, 0.9)], post)[0]
    assert isinstance(res, Resolution) and res.country_code == "SA" and "Khafj" in res.display_name, res
    assert res.score > 0


_TEXT = st.text(st.characters(codec="utf-8", categories=("L", "M", "N", "P", "Z")), max_size=40)


@given(_TEXT)
def test_skeletons_of_any_text_are_none_or_prefixed_ascii_letters(text: str) -> None:
    for key in (arabic_skeleton(text), latin_skeleton(text)):
        if key is not None:
            body = key[len(PREFIX) :]
            assert key.startswith(PREFIX) and body.isascii() and body.isalpha() and len(body) >= MIN_CONSONANTS
