"""Stream prior, recognizer types, storm names, ranked candidates and the MRR metric (offline, no network)."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from geocode import Resolution, Unresolved, build_resolver
from geocode.cli import main
from geocode.evaluate import ranked_points
from geocode.mrr import MrrTally, reverse_levels
from geocode.resolver import Resolver
from geocode.results import Candidate, place_type
from geocode.stream_prior import PriorConfig, StreamPrior
from lmr.mentions import Mention
from worker.resolve import ResolverStage


@pytest.fixture(scope="module")
def resolver() -> Resolver:
    return build_resolver("offline")


def _m(post: str, text: str, label: str = "location") -> Mention:
    i = post.index(text)
    return Mention(text, i, i + len(text), 0.9, label)


def _place(
    cc: str, lat: float, lon: float, kind: str = "city", admin1: str | None = "A", match: float = 1.0
) -> Candidate:
    return Candidate(name="x", lat=lat, lon=lon, kind=kind, feature_type=kind, country_code=cc, admin1=admin1)


def test_prior_prefers_the_streams_country_and_forgets_with_time() -> None:
    prior = StreamPrior(PriorConfig(half_life=5, warmup=2))
    us, ge = _place("US", 33.7, -84.4), _place("GE", 41.7, 44.8)
    assert prior.affinity("t", us) == 0.0  # nothing learned yet
    for _ in range(4):
        prior.observe("t", [us])
    assert prior.affinity("t", us) > 0.5 > prior.affinity("t", ge) == 0.0
    assert prior.affinity("other-topic", us) == 0.0  # keys are separate
    for _ in range(40):  # the stream moves on to Georgia the country
        prior.observe("t", [ge])
    assert prior.affinity("t", ge) > 0.9 and prior.affinity("t", us) < 0.01
    prior.reset("t")
    assert prior.affinity("t", ge) == 0.0


def test_prior_memory_is_bounded() -> None:
    prior = StreamPrior(PriorConfig(max_entries=8, max_keys=3))
    for k in range(10):
        prior.observe(f"key{k}", [_place(f"A{k % 10}", k, k, admin1=f"S{i}") for i in range(30)])
    s = prior.stats()
    assert s["prior_keys"] == 3 and s["prior_entries"] <= 3 * 3 * 8


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["US", "NZ", "MZ", "GR"]), st.floats(-89, 89), st.floats(-179, 179),
                          st.sampled_from(["city", "admin1", "admin2", "country", "continent"])), max_size=30),
       st.floats(-89, 89), st.floats(-179, 179))  # fmt: skip
def test_prior_affinity_is_a_share(obs: list[tuple[str, float, float, str]], lat: float, lon: float) -> None:
    prior = StreamPrior(PriorConfig(warmup=1))
    for cc, la, lo, kind in obs:
        prior.observe("k", [_place(cc, la, lo, kind)])
    for cc in ("US", "NZ", "FR"):
        for kind in ("city", "admin1", "country"):
            assert 0.0 <= prior.affinity("k", _place(cc, lat, lon, kind)) <= 1.0


def test_stream_prior_breaks_a_namesake_tie() -> None:
    r = build_resolver("offline", prior=PriorConfig(warmup=3))
    lone = "Georgia is bracing for the storm"
    first = r.resolve([_m(lone, "Georgia")], lone, stream="irma")[0]
    assert isinstance(first, Resolution) and first.country_code == "GE"  # no context: the country
    stream = [("Power out in Atlanta, Georgia", "Atlanta"), ("Atlanta shelters open", "Atlanta"),
              ("Macon, Georgia shelters open", "Macon"), ("Trees down across Atlanta", "Atlanta")]  # fmt: skip
    for post, place in stream:
        res = r.resolve([_m(post, place)], post, stream="irma")[0]
        assert isinstance(res, Resolution) and res.country_code == "US"
    after = r.resolve([_m(lone, "Georgia")], lone, stream="irma")[0]
    assert isinstance(after, Resolution) and (after.country_code, after.feature_type) == ("US", "state")
    other = r.resolve([_m(lone, "Georgia")], lone, stream="another-event")[0]
    assert isinstance(other, Resolution) and other.country_code == "GE"
    # A post that says where it is outvotes the prior.
    tbilisi = "Protests in Georgia: Tbilisi streets full"
    own = r.resolve([_m(tbilisi, "Georgia"), _m(tbilisi, "Tbilisi")], tbilisi, stream="irma")[0]
    assert isinstance(own, Resolution) and own.country_code == "GE"
    assert r.stats()["prior_observations"] >= 4


@pytest.mark.parametrize(
    ("label", "expected"),
    [("location", None), ("city", "city"), ("LOC:country", "country"), ("State", "admin"), ("City/town", "city"),
     ("Human-made Point-of-Interest", "poi"), ("Road/street", "street"), ("spaceship", None), ("", None)],
)  # fmt: skip
def test_place_type_reads_typed_labels(label: str, expected: str | None) -> None:
    assert place_type(label) == expected


def test_recognizer_type_picks_the_kind(resolver: Resolver) -> None:
    post = "Georgia hit hard"
    untyped = resolver.resolve([_m(post, "Georgia")], post)[0]
    country = resolver.resolve([_m(post, "Georgia", "country")], post)[0]
    state = resolver.resolve([_m(post, "Georgia", "admin")], post)[0]
    assert isinstance(untyped, Resolution) and isinstance(country, Resolution) and isinstance(state, Resolution)
    assert country.feature_type == "country" and untyped.feature_type == "country"
    assert (state.country_code, state.feature_type) == ("US", "state")


def test_storm_hashtags_are_not_places_but_island_hashtags_are(resolver: Resolver) -> None:
    post = "Praying for #Abaco after #HurricaneDorian"
    abaco, storm = resolver.resolve([_m(post, "#Abaco"), _m(post, "#HurricaneDorian")], post)
    assert isinstance(abaco, Resolution) and abaco.country_code == "BS"
    assert isinstance(storm, Unresolved) and storm.reason == "no_candidate" and "storm" in storm.detail


def test_rank_lists_k_candidates_best_first(resolver: Resolver) -> None:
    post = "Paris"
    ranked = resolver.rank([_m(post, "Paris")], post, k=4)[0]
    assert 2 <= len(ranked) <= 4
    assert ranked[0].country_code == "FR"
    best = resolver.resolve([_m(post, "Paris")], post)[0]
    assert isinstance(best, Resolution) and (best.lat, best.lon) == (ranked[0].lat, ranked[0].lon)
    assert resolver.rank([_m("Nowhereville", "Nowhereville")], "Nowhereville", k=3) == [[]]


def test_cli_candidates_prints_a_ranked_list() -> None:
    res = CliRunner().invoke(main, ["resolve", "Georgia", "--candidates", "2", "--json"])
    assert res.exit_code == 0, res.output
    row = json.loads(res.output)
    assert row["text"] == "Georgia" and len(row["candidates"]) == 2
    assert {c["country_code"] for c in row["candidates"]} == {"GE", "US"}
    bad = CliRunner().invoke(main, ["resolve", "Georgia", "--candidates", "0"])
    assert bad.exit_code != 0 and "0" in bad.output


def test_mrr_scores_the_rank_of_the_first_right_name() -> None:
    houston, paris, dallas = (29.76, -95.37), (48.86, 2.35), (32.78, -96.8)
    assert reverse_levels(*houston)[:2] == ("united states", "texas")
    t = MrrTally()
    t.add("City/town", houston, [paris, dallas, houston])  # right country and state at rank 2, city at rank 3
    t.add("Country", houston, [])  # unresolved: reciprocal rank 0; a country is not scored below country level
    s = t.summary()
    assert s["country"]["n"] == 2 and s["city"]["n"] == 1
    assert s["country"]["mrr@1"] == 0.0 and s["country"]["mrr@3"] == pytest.approx(0.25)
    assert s["state"]["mrr@3"] == pytest.approx(0.5) and s["city"]["mrr@3"] == pytest.approx(1 / 3, abs=1e-4)
    assert s["city"]["mrr@1"] == 0.0


def test_mrr_scores_arabic_provinces_at_the_state_level() -> None:
    cairo = (30.0444, 31.2357)
    t = MrrTally()
    t.add("Province", cairo, [cairo])  # IDRISI-D's Arabic files say Province where the English ones say State
    s = t.summary()
    assert s["state"]["n"] == 1 and s["state"]["mrr@1"] == 1.0
    assert s["county"]["n"] == 0 and s["city"]["n"] == 0


def test_mrr_ranks_the_resolvers_answer_first() -> None:
    cairo, giza, minya = (30.0444, 31.2357), (30.01, 31.21), (28.09, 30.76)
    place = Resolution("x", 0, 1, cairo[0], cairo[1], "Cairo", "EG", "Cairo", "context", None, "offline", 0.3)
    ranked = [Resolution("x", 0, 1, p[0], p[1], "y", "EG", None, "city", None, "offline", 0.5) for p in (minya, giza)]
    # an answer the context fallback supplied comes first; the ranked candidates follow, without a repeat
    assert ranked_points(place, ranked) == [cairo, minya, giza]
    assert ranked_points(place, []) == [cairo]
    assert ranked_points(place, [place, *ranked], k=2) == [cairo, minya]
    assert ranked_points(Unresolved("x", 0, 1, "no_candidate"), ranked) == [minya, giza]


@dataclass
class _Fields:
    text: str


def test_worker_stage_keys_the_prior_by_event_and_passes_types() -> None:
    stage = ResolverStage(build_resolver("offline", prior=PriorConfig(warmup=2)))
    for text, place in [("Savannah, Georgia flooding", "Savannah"), ("Atlanta, Georgia power out", "Atlanta"),
                        ("Macon, Georgia shelters", "Macon")]:  # fmt: skip
        geo = stage.resolve([_m(text, place)], {"event": "irma"}, text)
        assert geo[0] is not None and geo[0]["country_code"] == "US"
    lone = "Georgia is next"
    assert stage.resolve([_m(lone, "Georgia")], {"event": "irma"}, lone)[0]["country_code"] == "US"  # type: ignore[index]
    assert stage.resolve([_m(lone, "Georgia")], {"event": "other"}, lone)[0]["country_code"] == "GE"  # type: ignore[index]
    assert stage.resolve([_m(lone, "Georgia", "country")], {"event": "irma"}, lone)[0]["feature_type"] == "country"  # type: ignore[index]
    stage.reset_prior()
    assert stage.resolve([_m(lone, "Georgia")], {"event": "irma"}, lone)[0]["country_code"] == "GE"  # type: ignore[index]
    assert stage.stats()["prior_keys"] >= 1 and stage.stats()["failures"] == 0


@settings(max_examples=80, deadline=None)
@given(st.text(max_size=40), st.text(max_size=20), st.text(max_size=12))
def test_any_mention_text_and_label_resolve_without_raising(text: str, label: str, stream: str) -> None:
    r = _PROPERTY_RESOLVER
    post = f"{text} and more"
    m = Mention(text, 0, len(text), 0.5, label)
    assert place_type(label) in (None, "country", "admin", "city", "poi", "street", "natural", "other")
    (res,) = r.resolve([m], post, stream=stream)
    assert (res.start, res.end) == (0, len(text))
    if isinstance(res, Resolution):
        assert -90 <= res.lat <= 90 and -180 <= res.lon <= 180 and 0 <= res.score <= 1
    (ranked,) = r.rank([m], post, k=3, stream=stream)
    assert len(ranked) <= 3 and all(a.score >= b.score for a, b in itertools.pairwise(ranked))


_PROPERTY_RESOLVER = build_resolver("offline", prior=PriorConfig(warmup=1))
