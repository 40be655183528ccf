"""The end-to-end threshold (geocode.placed): which spans below the model's threshold are emitted."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from geocode.placed import extraction_threshold, is_placed, keep

PLACED = {"lat": 29.76, "lon": -95.37, "resolved": True}


def test_a_span_above_the_threshold_is_kept_placed_or_not() -> None:
    assert keep([0.9, 0.9], [PLACED, None], 0.5) == [True, True]


def test_a_span_below_the_threshold_is_kept_only_when_placed() -> None:
    unresolved = {"lat": None, "lon": None, "resolved": False, "reason": "not_found"}
    assert keep([0.2, 0.2, 0.2], [PLACED, None, unresolved], 0.5) == [True, False, False]


def test_the_model_reads_down_to_the_lower_threshold() -> None:
    assert extraction_threshold(0.5, 0.3) == 0.3
    assert extraction_threshold(0.3, 0.5) == 0.3
    assert extraction_threshold(0.5, None) == 0.5


geo_values = st.one_of(
    st.none(),
    st.dictionaries(
        st.sampled_from(["lat", "lon", "resolved", "reason"]),
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
            assert k == is_placed(geo)
            if k:  # rescued: a numeric point, not marked unresolved
                assert geo["resolved"] is not False
                assert all(isinstance(geo[x], int | float) and not isinstance(geo[x], bool) for x in ("lat", "lon"))
