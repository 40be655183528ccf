"""Offline gazetteer and disambiguation on hand-made posts (no network).

The first test run builds the gazetteer index once (about 20-30 s) under
LMR_CACHE_DIR or ~/.cache/lmr; later runs reuse it.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from geocode import GeoContext, Resolution, Unresolved, build_resolver
from geocode.gazetteer import haversine_km
from geocode.resolver import Resolver
from geocode.text import variants
from lmr.errors import ConfigError
from lmr.mentions import Mention
from lmr.names import norm


@pytest.fixture(scope="module")
def resolver() -> Resolver:
    return build_resolver("offline")


def _resolve(r: Resolver, post: str, *texts: str, ctx: GeoContext | None = None) -> list[Resolution | Unresolved]:
    mentions = []
    for t in texts:
        i = post.index(t)
        mentions.append(Mention(t, i, i + len(t), 0.9))
    return r.resolve(mentions, post, ctx)


def _one(r: Resolver, post: str, text: str, ctx: GeoContext | None = None) -> Resolution:
    res = _resolve(r, post, text, ctx=ctx)[0]
    assert isinstance(res, Resolution), res
    return res


def test_paris_defaults_to_france_and_follows_context(resolver: Resolver) -> None:
    assert _one(resolver, "Paris", "Paris").country_code == "FR"
    us = _one(resolver, "Paris", "Paris", GeoContext(country_codes=("US",)))
    assert us.country_code == "US"
    tx = _one(resolver, "Storm damage in Paris, Texas tonight", "Paris")
    assert (tx.country_code, tx.admin1) == ("US", "Texas")
    assert haversine_km(tx.lat, tx.lon, 33.66, -95.55) < 30


def test_long_capitalised_phrases_keep_the_context_cache_under_its_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    """The post's capitalised phrases are looked up as context: 20,000-character ones are counted by their bytes."""
    import geocode.resolver

    monkeypatch.setattr(geocode.resolver, "CONTEXT_CACHE_BYTES", 150_000)
    r = build_resolver("offline")
    for k in range(6):
        junk = " ".join(f"Q{'x' * 20_000}{k}{j}" for j in range(3))
        tx = _one(r, f"{junk} Storm damage in Paris, Texas tonight", "Paris")
        assert (tx.country_code, tx.admin1) == ("US", "Texas")  # the context is still read
        assert 0 < r._context_lookup.cache.bytes <= 150_000


def test_georgia_state_or_country_from_co_mentions(resolver: Resolver) -> None:
    state, atlanta = _resolve(resolver, "Flooding in Georgia, streets of Atlanta closed", "Georgia", "Atlanta")
    assert isinstance(state, Resolution) and isinstance(atlanta, Resolution)
    assert (state.country_code, state.feature_type) == ("US", "state")
    country, _ = _resolve(resolver, "Protests in Georgia: Tbilisi streets full", "Georgia", "Tbilisi")
    assert isinstance(country, Resolution)
    assert (country.country_code, country.feature_type) == ("GE", "country")
    hinted = _one(resolver, "Georgia braces for the storm", "Georgia", GeoContext(country_codes=("US",)))
    assert hinted.feature_type == "state"


@pytest.mark.parametrize(
    ("post", "text", "cc", "name"),
    [
        ("Roads closed across Tx tonight", "Tx", "US", "Texas"),
        ("Roads closed across TX tonight", "TX", "US", "Texas"),
        ("NYC sends crews", "NYC", "US", "New York City"),
        ("Help N.C. now", "N.C.", "US", "North Carolina"),
        ("Donate to PR relief", "PR", None, "Puerto Rico"),
        ("#HoustonFlood", "#HoustonFlood", "US", "Houston"),
        ("Evacuate Fortmcmurray now", "Fortmcmurray", "CA", "Fort McMurray"),
        ("Kaikōura quake", "Kaikōura", "NZ", "Kaikoura"),
        ("Aid for Mozambiqe", "Mozambiqe", "MZ", "Mozambique"),
        ("Fires in Northern California", "Northern California", "US", "California"),
    ],
)
def test_abbreviations_hashtags_and_typos(resolver: Resolver, post: str, text: str, cc: str | None, name: str) -> None:
    res = _one(resolver, post, text)
    assert res.display_name.startswith(name)
    if cc:
        assert res.country_code == cc


def test_code_words_need_capitals(resolver: Resolver) -> None:
    _, upper = _resolve(resolver, "Flood warning for Indianapolis, IN", "Indianapolis", "IN")
    assert isinstance(upper, Resolution) and upper.display_name.startswith("Indiana")
    lower = _resolve(resolver, "stay in", "in")[0]
    assert not (isinstance(lower, Resolution) and lower.display_name.startswith("Indiana"))


def test_county_versus_city(resolver: Resolver) -> None:
    county = _one(resolver, "Harris County under water", "Harris County")
    assert (county.feature_type, county.admin1) == ("county", "Texas")
    brazoria, houston = _resolve(resolver, "Brazoria County levee breach near Houston", "Brazoria County", "Houston")
    assert isinstance(brazoria, Resolution) and brazoria.feature_type == "county"
    assert isinstance(houston, Resolution) and houston.feature_type == "city" and houston.admin1 == "Texas"
    assert _one(resolver, "Orange County fire in California", "Orange County").admin1 == "California"
    assert _one(resolver, "Orange County flooding, Florida", "Orange County").admin1 == "Florida"
    # A town named like a county: the shape of the mention decides.
    assert _one(resolver, "Houston is flooding", "Houston").feature_type == "city"


def test_post_context_without_other_mentions(resolver: Resolver) -> None:
    luling = _one(resolver, "Flooding in Luling, Texas", "Luling")
    assert (luling.country_code, luling.admin1) == ("US", "Texas")


def test_unresolved_and_order(resolver: Resolver) -> None:
    post = "Xqzzyplace and Houston and Qwzzxv"
    out = _resolve(resolver, post, "Xqzzyplace", "Houston", "Qwzzxv")
    assert [o.text for o in out] == ["Xqzzyplace", "Houston", "Qwzzxv"]
    assert isinstance(out[1], Resolution)
    # With fallback "context" a mention with no candidate inherits the post's place, marked as such.
    assert isinstance(out[0], Resolution) and out[0].feature_type == "context"
    strict = build_resolver("offline", fallback="none")
    out = _resolve(strict, post, "Xqzzyplace", "Houston")
    assert isinstance(out[0], Unresolved) and out[0].reason == "no_candidate"
    d = out[0].to_dict()
    assert d["resolved"] is False and d["start"] == 0 and d["end"] == len("Xqzzyplace")
    r = out[1].to_dict()
    assert r["resolved"] is True and r["backend"] == "offline" and 0 < r["score"] <= 1


def test_min_confidence_marks_ambiguous() -> None:
    r = build_resolver("offline", min_confidence=0.95)
    res = r.resolve([Mention("Springfield", 0, 11, 1.0)], "Springfield")[0]
    assert isinstance(res, Unresolved) and res.reason == "ambiguous"


def test_any_object_with_text_start_end_is_a_mention(resolver: Resolver) -> None:
    @dataclass
    class Span:
        text: str
        start: int
        end: int

    res = resolver.resolve([Span("Beira", 0, 5)], "Beira flooded")[0]
    assert isinstance(res, Resolution) and res.country_code == "MZ"
    # A worker event (a mapping with the post's text) works as the post too.
    event = {"id": "1", "text": "Flooding in Luling, Texas"}
    res = resolver.resolve([Span("Luling", 12, 18)], event)[0]
    assert isinstance(res, Resolution) and res.admin1 == "Texas"


def test_stats_count_cache_hits(resolver: Resolver) -> None:
    before = resolver.stats()
    _resolve(resolver, "Beira and Beira", "Beira")
    _resolve(resolver, "Beira again", "Beira")
    after = resolver.stats()
    assert after["cache_hits"] >= before["cache_hits"] + 1
    assert after["mentions"] == before["mentions"] + 2


def test_region_parsing_errors_name_the_fix() -> None:
    assert GeoContext.parse("us, pr") == GeoContext(country_codes=("US", "PR"))
    assert GeoContext.parse("24.5,-107,37,-93.5") == GeoContext(bbox=(24.5, -107.0, 37.0, -93.5))
    with pytest.raises(ConfigError, match="alpha-2"):
        GeoContext.parse("USA")
    with pytest.raises(ConfigError, match="south,west,north,east"):
        GeoContext.parse("1,2,3")
    with pytest.raises(ConfigError, match="south<north"):
        GeoContext(bbox=(40, 0, 30, 10))


def test_normalisation_and_variants() -> None:
    assert norm("St. Louis") == norm("Saint Louis") == "st louis"
    assert norm("N.C.") == "nc"
    assert norm("Chico’s") == "chico"
    keys = [v.key for v in variants("Harris County")]
    assert keys[:2] == ["harris county", "harris"]
    partial = [v for v in variants("Charlotte Humane Society") if v.partial]
    assert partial and partial[-1].key == "charlotte"
