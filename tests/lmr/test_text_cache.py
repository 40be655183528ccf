"""The text cache: repeated texts are read once, and every post gets offsets into its own text."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lmr.mentions import Mention
from lmr.model.text_cache import TextCache, core_span, tail_start
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
    model, cache = CapitalisedWords(), TextCache()
    repeat = f"RT @{user}: {core}" + (" https://t.co/abc123" if link else "")
    first, again = cache.predict(model, [core, repeat])
    assert model.read == 1  # the repeat was not read
    shift = repeat.index(core)
    assert [(m.start + shift, m.end + shift, m.text) for m in first] == [(m.start, m.end, m.text) for m in again]
    assert all(repeat[m.start : m.end] == m.text for m in again)
    s, e = core_span(repeat)
    assert repeat[s:e] == core.strip()


@settings(max_examples=100, deadline=None)
@given(texts=st.lists(CORE, min_size=1, max_size=20), size=st.integers(0, 5_000))
def test_the_cache_gives_what_the_model_gives_and_stays_bounded(texts: list[str], size: int) -> None:
    model, cache = CapitalisedWords(), TextCache(size)
    got = cache.predict(model, texts)
    direct = CapitalisedWords().predict_words([split_words(t) for t in texts], texts)
    assert got == direct
    assert cache.stats()["bytes"] <= size
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

    from prometheus_client.parser import text_string_to_metric_families

    from worker.extract import ExtractStage
    from worker.metrics import Metrics
    from worker.parse import Message
    from worker.pipeline import Pipeline
    from worker.reload import ModelManager

    metrics = Metrics()
    cache = metrics.watch_text_cache(TextCache())
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
    held = {(x.name, x.labels.get("cache")): x.value for f in text_string_to_metric_families(page) for x in f.samples}
    assert held[("lmr_worker_cache_max_bytes", "text")] >= cache.max_bytes  # every text cache of the process
    assert 0 < cache.stats()["bytes"] <= held[("lmr_worker_cache_bytes", "text")]


# The patterns the core was found with before (quadratic in a run of whitespace): the reference.
OLD_RT_PREFIX = re.compile(r"(?:\s*RT\s+@\w+\s*:\s*)+")
OLD_TRAILING_LINKS = re.compile(r"(?:\s*https?://\S+)*\s*$")
# Fragments that make the tail hard: every kind of whitespace (\x1c and U+3000 are whitespace to both
# str.isspace and the regex), schemes whole and cut, links back to back, text inside and after links.
PIECES = st.sampled_from(
    [" ", "  ", "\t", "\n", "\r\n", "\x1c", "\u00a0", "\u2003", "\u3000", "http://", "https://", "http", "https:/",
     "http:/", "://", "s", "t.co/x", "a", "Houston", "é", "🌀", "RT", "@", ":", "@u_1", "RT @u:", "x:"]
)  # fmt: skip
TEXTS = st.lists(PIECES, max_size=24).map("".join) | st.text(max_size=40)


def old_core_span(text: str) -> tuple[int, int]:
    m = OLD_RT_PREFIX.match(text)
    start = m.end() if m else 0
    end = OLD_TRAILING_LINKS.search(text, start)
    return start, end.start() if end else len(text)


@settings(max_examples=2_000, deadline=None)
@given(text=TEXTS, start=st.integers(0, 30))
def test_the_tail_scan_finds_what_the_regex_found(text: str, start: int) -> None:
    """The right-to-left scan ends the core where the backtracking pattern did, from any start."""
    start = min(start, len(text))
    m = OLD_TRAILING_LINKS.search(text, start)
    assert m is not None
    assert tail_start(text, start) == m.start()


@settings(max_examples=1_000, deadline=None)
@given(text=st.lists(st.sampled_from(["RT @a: ", "RT  @b_2 :", " ", "\n", "RT", "@", "x", ":", "RT @é:"]), max_size=12)
       .map("".join) | TEXTS)  # fmt: skip
def test_the_core_span_is_the_one_the_regexes_gave(text: str) -> None:
    """``RT @user:`` prefixes matched one at a time end where the repeated group ended; the tail as before."""
    assert core_span(text) == old_core_span(text)


HOSTILE = {
    "95,000 spaces, then a link": (" " * 95_000 + "http://t.co/x", (0, 0)),
    "a word, 200,000 spaces, a word": ("flood" + " " * 200_000 + "Houston", (0, 200_012)),
    "100,000 mixed whitespace, then text": ("\t \u3000\n" * 25_000 + "x", (0, 100_001)),
    "20,000 links back to back, then text": ("https://a" * 20_000 + " end", (0, 180_004)),
    "a 100,000-character non-link word": ("http:/" + "h" * 100_000, (0, 100_006)),
}


def test_hostile_tails_take_a_bounded_time() -> None:
    """Posts that took the old pattern seconds to hours give their core within a generous bound (60 s, all five).

    The old pattern alone, on a loaded 2-core machine: 64,000 spaces between two words 35 s (quadratic: 32,000
    took 9 s), 2,000 links back to back before a word over 4 minutes. Nothing here is timed tightly.
    """
    code = (
        "import json, sys; from lmr.model.text_cache import core_span; "
        "print(json.dumps([core_span(t) for t in json.load(sys.stdin)]))"
    )
    texts = [t for t, _ in HOSTILE.values()]
    out = subprocess.run(
        [sys.executable, "-c", code], input=json.dumps(texts), capture_output=True, text=True, timeout=60, check=True
    )
    assert [tuple(x) for x in json.loads(out.stdout)] == [want for _, want in HOSTILE.values()]


class Everywhere(CapitalisedWords):
    """Every word is a mention: the most a window can cost in the cache."""

    def predict_words(
        self,
        words_list: Sequence[Sequence[Word]],
        texts: Sequence[str],
        *,
        threshold: float | None = None,
        batch_size: int = 16,
    ) -> list[list[Mention]]:
        self.read += len(words_list)
        return [[Mention(w.text, w.start, w.end, 0.5) for w in ws] for ws in words_list]


@settings(max_examples=30, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 100_000), min_size=1, max_size=8),
    bound=st.integers(1_000, 300_000),
    fill=st.sampled_from([" ", "x", "é", "Houston ", "🌀", "https://t.co/a "]),
)
def test_long_texts_keep_the_cache_under_its_byte_bound(lengths: list[int], bound: int, fill: str) -> None:
    """Hostile posts (up to 100,000 characters, as many mentions as words) never push the cache past its bound."""
    model, cache = Everywhere(), TextCache(bound)
    for i, n in enumerate(lengths):
        text = (fill * n)[:n] + f" #{i}"
        words = split_words(text)
        windows = [words[k : k + 384] for k in range(0, len(words), 352)][:16]  # the worker's windows
        got = cache.predict_words(model, windows, [text] * len(windows))
        assert got == Everywhere().predict_words([[w for w in ws if w.end <= tail_start(text)] for ws in windows],
                                                 [text] * len(windows))  # fmt: skip
        assert cache.stats()["bytes"] <= bound


def test_an_entry_costs_its_mentions_not_its_text() -> None:
    """Keys are digests: a 100,000-character post with one mention costs what a short one does."""
    short, long = TextCache(), TextCache()
    short.predict(CapitalisedWords(), ["flood in Houston"])
    long.predict(CapitalisedWords(), ["flood " * 16_000 + "in Houston"])
    assert short.stats()["size"] == long.stats()["size"] == 1
    assert long.stats()["bytes"] == short.stats()["bytes"] < 1_000
