"""--oversample: posts of one script repeated in training only, and a clear error for a bad spec."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lmr.errors import ConfigError
from lmr.readers import Example, Span
from trainer import oversample
from trainer.settings import TrainSettings

EN = Example("Flooding in Houston tonight", [Span(12, 19, "location")], event="harvey")
AR = Example("سيول في الكويت اليوم", [Span(8, 14, "location")], event="kuwait")


def test_arabic_posts_repeat_and_others_stay_once_in_order() -> None:
    out, counts = oversample.oversample([EN, AR, EN], oversample.parse(["arabic=3"]))
    assert out == [EN, AR, AR, AR, EN]
    assert counts == {"latin": 2, "arabic": 3}


@pytest.mark.parametrize("spec", ["arabic", "arabic=", "arabic=two", "klingon=2", "arabic=0", "arabic=11", "=2"])
def test_a_bad_spec_names_the_fix(spec: str) -> None:
    with pytest.raises(ConfigError) as err:
        oversample.parse([spec])
    assert "--oversample" in str(err.value)


def test_settings_refuse_a_bad_spec_before_training() -> None:
    with pytest.raises(ConfigError):
        TrainSettings(train=["x.jsonl"], oversample=["arabic=many"]).validate()


@given(st.lists(st.sampled_from([EN, AR]), max_size=30), st.integers(1, 10))
def test_only_arabic_posts_grow_and_the_order_stays(posts: list[Example], times: int) -> None:
    out, counts = oversample.oversample(posts, {"arabic": times})
    assert len(out) == sum(counts.values()) == posts.count(EN) + times * posts.count(AR)
    assert out == [q for p in posts for q in [p] * (times if p is AR else 1)]
