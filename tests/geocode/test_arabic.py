"""Arabic mentions resolved by the offline gazetteer, and the language a remote service is asked to answer in.

The offline tests use the real index (built once under LMR_CACHE_DIR); the remote one a Nominatim-like server
on 127.0.0.1 (tests/geocode/test_remote.py's).
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from geocode import Resolution, build_resolver
from geocode.arabic import without_type_word, word_runs
from geocode.disambiguate import scan_post
from geocode.gazetteer import open_gazetteer
from geocode.guard import GuardConfig
from geocode.resolver import Resolver
from geocode.text import shape_hint, variants
from lmr.mentions import Mention
from lmr.names import norm
from tests.geocode.test_remote import FakeNominatim


@pytest.fixture(scope="module")
def resolver() -> Resolver:
    return build_resolver("offline")


def _one(r: Resolver, post: str, text: str) -> Resolution:
    i = post.index(text)
    res = r.resolve([Mention(text, i, i + len(text), 0.9)], post)[0]
    assert isinstance(res, Resolution), res
    return res


@pytest.mark.parametrize(
    ("post", "text", "cc", "kind"),
    [
        ("استنفار حاليا بالكويت ورفع الحالة", "بالكويت", "KW", "country"),  # clitic ب + article
        ("أمطار غزيرة على الكويت", "الكويت", "KW", "country"),
        ("أمطار على #الأحمدي الآن", "الأحمدي", "KW", None),  # hamza spelling of GeoNames' الاحمدي
        ("سيول في #حفرالباطن", "حفرالباطن", "SA", None),  # a hashtag with the space squashed out
        ("وصول الإسعاف إلى مدينة الجهراء", "مدينة الجهراء", "KW", "city"),  # not Medina: مدينة is "city"
        ("انفجار بمحافظة #الجيزة", "بمحافظة #الجيزة", "EG", "admin1"),  # governorate, written after a clitic
        ("رحلات إلى السعودية", "السعودية", "SA", "country"),  # the short name (the packages ship the long one)
    ],
)
def test_arabic_mentions_resolve_offline(resolver: Resolver, post: str, text: str, cc: str, kind: str | None) -> None:
    res = _one(resolver, post, text)
    assert res.country_code == cc, res
    if kind is not None:
        assert res.kind == kind, res


def test_arabic_variants_strip_clitics_articles_and_leading_type_words() -> None:
    keys = [v.key for v in variants("للقاهرة")]
    assert keys[0] == "للقاهره" and "القاهره" in keys  # لل = ل + ال
    assert "كويت" in [v.key for v in variants("بالكويت")] and "الكويت" in [v.key for v in variants("كويت")]
    assert [v.key for v in variants("كويت")][:2] == ["كويت", "الكويت"]  # ك is not split off a short name
    city = variants("مدينة صباح الأحمد")
    assert "صباح الاحمد" in [v.key for v in city] and "مدينه" not in [v.key for v in city]
    assert shape_hint("مدينة صباح الأحمد") == "city" and shape_hint("شارع الخليج") == "poi"
    assert shape_hint("الكويت") is None
    assert all(v.partial for v in variants("مستشفى الفروانية") if v.key == "الفروانيه")


def test_remote_requests_ask_for_arabic_answers_only_for_arabic_mentions(tmp_path: Path) -> None:
    server = FakeNominatim()
    server.thread.start()
    try:
        guard = GuardConfig(min_delay_seconds=0.0, max_retries=0, backoff_seconds=0.01, failure_threshold=3,
                            reset_after=60.0)  # fmt: skip
        r = build_resolver("nominatim", url=server.url, user_agent="lmr-tests/1.0", timeout=5.0, guard_config=guard,
                           cache_path=tmp_path / "geo.sqlite")  # fmt: skip
        r.resolve([Mention("الكويت", 0, 6, 1.0)], "الكويت")
        r.resolve([Mention("Houston", 0, 7, 1.0)], "Houston")
    finally:
        server.server.shutdown()
        server.server.server_close()
    by_query = {q["q"][0]: q for q in server.requests}
    assert by_query["الكويت"].get("accept-language") == ["ar"]
    assert "accept-language" not in by_query["Houston"]  # English requests are as they were


def test_a_division_named_with_its_type_word_answers_to_the_rest(resolver: Resolver) -> None:
    # countrystatecity names Saudi Arabia's Eastern Province المنطقة الشرقية; posts say الشرقية
    assert without_type_word("المنطقة الشرقية") == "الشرقيه"
    assert without_type_word("محافظة الجيزة") == "الجيزه"
    assert without_type_word("الإقليم الخامس") is None  # an ordinal names nothing alone
    assert without_type_word("المنطقة") is None and without_type_word("الرياض") is None
    post = "أمطار غزيرة على الدمام والخبر في الشرقية"
    spans = [(post.index(t), post.index(t) + len(t)) for t in ("الدمام", "والخبر", "الشرقية")]
    *_, region_of = resolver.resolve([Mention(post[a:b], a, b, 0.9) for a, b in spans], post)
    assert isinstance(region_of, Resolution) and region_of.country_code == "SA", region_of
    assert _one(resolver, "سيول في الشرقية", "الشرقية").country_code == "EG"  # alone: Egypt's Sharqia, exact name
    region = variants("المنطقة الشرقية")  # the query side reads the article form of the type word too
    assert any(v.key == "الشرقيه" and v.kind_hint == "admin1" for v in region)
    assert shape_hint("المحافظة الجديدة") == "admin1" and shape_hint("المدينة المنورة") is None  # Medina


_ARABIC = st.text(st.sampled_from("ابتثجحخدذرزسشصضطظعغفقكلمنهويةىأإآء ـ"), max_size=30)


@given(_ARABIC)
def test_without_type_word_keeps_a_tail_of_the_name(name: str) -> None:
    rest = without_type_word(name)
    if rest is not None:
        words = norm(name).split()
        assert rest == " ".join(words[1:]) and len(words) >= 2


def _named(post: str, mentions: tuple[str, ...] = ()) -> dict[str, tuple[str | None, str]]:
    """What scan_post finds in an Arabic post outside ``mentions``: the text at each span -> (country, kind)."""
    spans = [(post.index(t), post.index(t) + len(t)) for t in mentions]
    gz = open_gazetteer()
    found = scan_post(post, spans, gz.lookup)
    return {post[a:b]: (e.candidates[0].country_code, e.candidates[0].kind) for e in found for a, b in [e.span]}


def test_an_arabic_post_names_its_country_and_division_outside_the_mentions() -> None:
    post = "انفجار أمام معهد الأورام في القاهرة #مصر وحريق بالقاهرة_الان ووزارة الداخلية تحقق"
    named = _named(post, ("معهد الأورام",))
    assert named["القاهرة"] == ("EG", "admin1")
    assert named["مصر"] == ("EG", "country")  # a hashtag
    assert named["بالقاهرة"] == ("EG", "admin1")  # a clitic, in a hashtag whose _ ends the name
    assert "الداخلية" not in named  # "interior": a common word, not Oman's Ad Dakhiliyah
    assert not _named(post, ("القاهرة #مصر وحريق بالقاهرة",)).keys() & {"القاهرة", "مصر", "بالقاهرة"}  # inside


def test_a_leading_word_does_not_place_a_cairo_street_in_algeria(resolver: Resolver) -> None:
    # القصر ("the palace") is El Kseur's Arabic name: the partial query of القصر العيني finds that town first
    assert any(v.partial and v.key == "القصر" for v in variants("القصر العيني"))
    post = "حريق قرب القصر العيني في القاهرة"
    res = resolver.resolve([Mention("القصر العيني", 9, 21, 0.9)], post)[0]
    assert isinstance(res, Resolution) and res.country_code == "EG", res  # inherits the Cairo the post names
    assert res.feature_type == "context"


def test_a_lone_partial_far_from_the_streams_country_is_dropped() -> None:
    r = build_resolver("offline", prior=True)
    cairo = "انفجار في القاهرة"
    r.resolve([Mention("القاهرة", 10, 17, 0.9)], cairo, stream="cairo")  # one post: heard, not settled
    assert r.prior is not None and not r.prior.settled("cairo")
    post = "دخان قرب القصر العيني"
    res = r.resolve([Mention("القصر العيني", 9, 21, 0.9)], post, stream="cairo")[0]
    assert not (isinstance(res, Resolution) and res.country_code == "DZ"), res
    fresh = build_resolver("offline", prior=True).resolve([Mention("القصر العيني", 9, 21, 0.9)], post, stream="x")
    assert isinstance(fresh[0], Resolution), fresh  # a stream that has heard nothing keeps the partial


@given(st.text(st.sampled_from("ابتثجحخدذرزسشصضطظعغفقكلمنهويةىأإآء ـ_#،.\nab1"), max_size=60))
def test_arabic_word_runs_are_ordered_words_of_the_text(text: str) -> None:
    runs = word_runs(text)
    spans = [s for run in runs for s in run]
    assert all(a < b for a, b in spans) and all(b1 <= a2 for (_, b1), (a2, _) in itertools.pairwise(spans))
    for a, b in spans:
        assert not set(text[a:b]) & set(" _#،.\nab1"), text[a:b]  # a word holds no joiner, mark or other script
    for run in runs:
        for (_, b1), (a2, _) in itertools.pairwise(run):
            assert set(text[b1:a2]) <= set(" _#"), text[b1:a2]  # only spaces and hashtag marks join a run
