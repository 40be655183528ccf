"""The text cache: repeated texts are read once, and every post gets offsets into its own text."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lmr.mentions import Mention
from lmr.model.dedup import TextCache, core_span
from lmr.words import Word, split_words


class CapitalisedWords:
    """A real (rule-based) predictor: every capitalised word is a mention; counts the posts it reads."""

    model_id = "rule@v1"
    runtime = "rule"

    def __init__(self) -> None:
        self.read = 0

    def predict_words(
        self,
        words_list: Sequence[Sequence[Word]],
        texts: Sequence[str],
        *,
        threshold: float | None = None,
        batch_size: int = 16,
    ) -> list[list[Mention]]:
        self.read += len(words_list)
        return [[Mention(w.text, w.start, w.end, 0.9) for w in ws if w.text[:1].isupper()] for ws in words_list]


WORDS = st.sampled_from(["Houston", "flood", "in", "Texas", "#Harvey", "help", "NYC", "road", "é", "Ōsaka"])
CORE = st.lists(WORDS, min_size=1, max_size=12).map(" ".join)


@settings(max_examples=150, deadline=None)
@given(core=CORE, user=st.from_regex(r"[A-Za-z0-9_]{1,15}", fullmatch=True), link=st.booleans())
def test_a_retweet_or_copy_gets_the_originals_mentions_at_its_own_offsets(core: str, user: str, link: bool) -> None:
    model, cache = CapitalisedWords(), TextCache(100)
    repeat = f"RT @{user}: {core}" + (" https://t.co/abc123" if link else "")
    first, again = cache.predict(model, [core, repeat])
    assert model.read == 1  # the repeat was not read
    shift = repeat.index(core)
    assert [(m.start + shift, m.end + shift, m.text) for m in first] == [(m.start, m.end, m.text) for m in again]
    assert all(repeat[m.start : m.end] == m.text for m in again)
    s, e = core_span(repeat)
    assert repeat[s:e] == core.strip()


@settings(max_examples=100, deadline=None)
@given(texts=st.lists(CORE, min_size=1, max_size=20), size=st.integers(0, 5))
def test_the_cache_gives_what_the_model_gives_and_stays_bounded(texts: list[str], size: int) -> None:
    model, cache = CapitalisedWords(), TextCache(size)
    got = cache.predict(model, texts)
    direct = CapitalisedWords().predict_words([split_words(t) for t in texts], texts)
    assert got == direct
    assert cache.stats()["size"] <= size
    if size:
        assert model.read == len(set(t.strip() for t in texts))
        assert cache.stats()["hits"] == len(texts) - model.read


def test_a_new_model_version_or_threshold_is_a_miss() -> None:
    model, cache = CapitalisedWords(), TextCache()
    cache.predict(model, ["Flood in Houston"])
    cache.predict(model, ["Flood in Houston"], threshold=0.3)
    model.model_id = "rule@v2"
    cache.predict(model, ["Flood in Houston"])
    assert model.read == 3 and cache.stats()["hits"] == 0


def test_negative_size_is_refused() -> None:
    with pytest.raises(ValueError, match=">= 0"):
        TextCache(-1)


def test_real_model_retweet_offsets(tiny_model: Path) -> None:
    from lmr.model.extractor import load_extractor

    ex = load_extractor(str(tiny_model), runtime="fused")
    cache = TextCache()
    core = "Flooding reported in Houston, Texas tonight"
    posts = [core, "RT @kprc2: " + core, "RT @a: RT @b: " + core + " http://t.co/x"]
    got = cache.predict(ex, posts, threshold=0.01)
    assert cache.stats()["hits"] == 2
    direct = ex.predict([core], threshold=0.01)[0]
    assert [(m.start, m.end) for m in got[0]] == [(m.start, m.end) for m in direct]
    for post, ms in zip(posts, got, strict=True):
        shift = post.index(core)
        assert [(m.start - shift, m.end - shift) for m in ms] == [(m.start, m.end) for m in direct]
        assert all(post[m.start : m.end] == m.text for m in ms)


def test_worker_reads_a_retweet_once_and_reports_the_hit_rate(tiny_model: Path) -> None:
    import json

    from worker.extract import ExtractStage
    from worker.metrics import Metrics
    from worker.parse import Message
    from worker.pipeline import Pipeline
    from worker.reload import ModelManager

    metrics = Metrics()
    cache = metrics.watch_text_cache(TextCache(10))
    pipe = Pipeline(ModelManager(str(tiny_model)), extract=ExtractStage(threshold=0.01, text_cache=cache))
    core = "Evacuations ordered along the Guadalupe River near Victoria"
    texts = [
        core,
        f"RT @kvue: {core}",
        "Power out across Florida after the storm",
        f"RT @x: RT @y: {core} https://t.co/q",
    ]
    msgs = [Message(json.dumps({"id": str(i), "text": t}).encode(), "in", 0, i) for i, t in enumerate(texts)]
    events = [json.loads(r.value) for r in pipe.process(msgs).outputs if r.value is not None]
    assert cache.stats()["hits"] == 2 and cache.stats()["lookups"] == 4
    first = [(loc["start"], loc["end"]) for loc in events[0]["locations"]]
    for ev in events:
        for loc in ev["locations"]:
            assert ev["text"][loc["start"] : loc["end"]] == loc["text"]
    shift = texts[1].index(core)
    assert [(loc["start"] - shift, loc["end"] - shift) for loc in events[1]["locations"]] == first
    page = metrics.render().decode()
    assert "lmr_worker_text_cache_hits_total 2.0" in page and "lmr_worker_text_cache_hit_ratio 0.5" in page
