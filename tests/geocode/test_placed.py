"""The end-to-end threshold (geocode.placed): which spans below the model's threshold are emitted."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from geocode.placed import PLACED_GEO_SCORE, extraction_threshold, is_placed, keep, placed_well

PLACED = {"lat": 29.76, "lon": -95.37, "resolved": True, "score": 0.9}


def test_a_span_above_the_threshold_is_kept_placed_or_not() -> None:
    assert keep([0.9, 0.9], [PLACED, None], 0.5) == [True, True]


def test_a_span_below_the_threshold_is_kept_only_when_placed_well() -> None:
    unresolved = {"lat": None, "lon": None, "resolved": False, "reason": "not_found"}
    weak = {**PLACED, "score": PLACED_GEO_SCORE / 2}
    assert keep([0.2, 0.2, 0.2, 0.2], [PLACED, None, unresolved, weak], 0.5) == [True, False, False, False]
    assert keep([0.2], [weak], 0.5, min_geo_score=0.0) == [True]


def test_the_model_reads_down_to_the_lower_threshold() -> None:
    assert extraction_threshold(0.5, 0.3) == 0.3
    assert extraction_threshold(0.3, 0.5) == 0.3
    assert extraction_threshold(0.5, None) == 0.5


geo_values = st.one_of(
    st.none(),
    st.dictionaries(
        st.sampled_from(["lat", "lon", "resolved", "reason", "score"]),
        st.one_of(st.none(), st.booleans(), st.floats(allow_nan=False), st.integers(), st.text(max_size=3)),
    ),
)


@given(st.lists(st.tuples(st.floats(0, 1), geo_values), max_size=8), st.floats(0, 1))
def test_any_geo_json_is_judged_without_error_and_only_points_rescue(
    spans: list[tuple[float, Any]], threshold: float
) -> None:
    kept = keep([s for s, _ in spans], [g for _, g in spans], threshold)
    assert len(kept) == len(spans)
    for (score, geo), k in zip(spans, kept, strict=True):
        if score >= threshold:
            assert k
        else:
            assert k == placed_well(geo)
            if k:  # rescued: a numeric point, not marked unresolved, a confident resolution
                assert is_placed(geo) and geo["score"] >= PLACED_GEO_SCORE
                assert geo["resolved"] is not False
                assert all(isinstance(geo[x], int | float) and not isinstance(geo[x], bool) for x in ("lat", "lon"))
