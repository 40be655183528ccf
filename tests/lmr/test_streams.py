"""Sample streams (:mod:`lmr.streams`): events taken in turn, Arabic labels removed, an even interleave."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lmr import streams
from lmr.errors import DataError
from lmr.language import script_of
from lmr.readers import expand_paths


@given(n=st.integers(0, 200), share=st.floats(0, 1))
def test_interleave_spaces_the_second_sample_evenly_and_keeps_each_order(n: int, share: float) -> None:
    first = [("en", i) for i in range(n)]
    second = [("ar", i) for i in range(n)]
    out = streams.interleave(first, second, share, n)
    assert len(out) == n
    picked = [i for i, (lang, _) in enumerate(out) if lang == "ar"]
    assert len(picked) == streams.second_count(n, share)
    exact = n * Fraction(repr(share))  # the share as written in decimal, as lmr.streams reads it
    assert exact - 1 < len(picked) <= exact, "the share of n, rounded down"
    assert [x for x in out if x[0] == "ar"] == second[: len(picked)]
    assert [x for x in out if x[0] == "en"] == first[: n - len(picked)]
    for j in range(1, n + 1):  # every prefix holds its share, rounded down: no clumps, no drift
        assert sum(1 for i in picked if i < j) == streams.second_count(j, share)


def test_one_in_five_is_every_fifth_and_a_decimal_share_is_taken_as_written() -> None:
    assert "".join(streams.interleave(["e"] * 16, ["a"] * 4, 0.2, 20)) == "eeeea" * 4
    assert streams.second_count(10, 0.7) == 7  # the float 0.7 times 10 is a hair under 7


@pytest.mark.parametrize("share", [-0.1, 1.5, float("nan")])
def test_a_share_outside_0_to_1_is_refused_with_the_fix(share: float) -> None:
    with pytest.raises(DataError, match="between 0 and 1") as err:
        streams.interleave(["e"], ["a"], share, 1)
    assert "pass a share" in str(err.value)


def test_too_few_posts_for_the_share_is_refused_with_the_counts() -> None:
    with pytest.raises(DataError, match=r"need 5 \+ 5 posts; the samples hold 10 \+ 2") as err:
        streams.interleave(["e"] * 10, ["a"] * 2, 0.5, 10)
    assert "fewer posts" in str(err.value)


def test_spread_takes_each_event_in_turn_and_drops_the_arabic_labels(idrisi_dir: Path) -> None:
    files = expand_paths(streams.ARABIC)
    assert len(files) > 1
    posts = streams.spread(streams.ARABIC)
    firsts = [json.loads(f.read_text(encoding="utf-8").splitlines()[0]) for f in files]
    assert [p["tweet_id"] for p in posts[: len(files)]] == [p["tweet_id"] for p in firsts]
    assert "location_mentions" in firsts[0], "the dev files are labelled"
    assert not any(k in p for p in posts for k in streams.LABEL_FIELDS)
    assert len(posts) == sum(len(f.read_text(encoding="utf-8").split("\n")) - 1 for f in files)
    assert {script_of(p["text"]) for p in posts} == {"arabic"}
    assert streams.spread(streams.ARABIC, 7) == posts[:7]
