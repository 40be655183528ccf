"""The fast runtimes' collator builds exactly GLiNER's inference batch, key by key, for any words."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lmr.model.collate import FastCollator, make_collator

# Words as lmr's splitter yields them, plus what breaks tokenizers: emoji, zero-width and combining
# characters (no sub-word pieces at all), accents, special-token look-alikes, very long words.
WORDS = st.one_of(
    st.sampled_from(["Houston", "#Harvey", "TX", "ok", ",", "!", "@user", "http://t.co/x", "[PAD]", "[SEP]"]),
    st.sampled_from(["\u200b", "\u0301", "\ufe0f", "🌀", "🇪🇨", "São", "Ñuñoa", "Κινέτα", "⟨ENT⟩", "<<ENT>>"]),
    st.text(min_size=1, max_size=12).filter(lambda w: not any(c.isspace() for c in w)),
    st.just("Supercalifragilistic" * 30),
)
POSTS = st.lists(st.lists(WORDS, min_size=0, max_size=40), min_size=1, max_size=6)


def gliner_batch(model: Any, words_list: list[list[str]], labels: list[str]) -> dict[str, Any]:
    x = [{"tokenized_text": w, "ner": None} for w in words_list]
    return dict(model.collate_batch(x, labels, model.create_collator()))


def assert_same(mine: dict[str, Any], theirs: dict[str, Any]) -> None:
    assert set(mine) == set(theirs)
    for k, v in theirs.items():
        if isinstance(v, torch.Tensor):
            assert mine[k].dtype == v.dtype and mine[k].shape == v.shape and torch.equal(mine[k], v), k
        else:
            assert mine[k] == v, k


@pytest.fixture(scope="module")
def minilm(tiny_model: Path) -> Any:
    from lmr.model.extractor import load_extractor

    return load_extractor(str(tiny_model), runtime="fused").model


@pytest.fixture(scope="module")
def e5(e5_dir: Path) -> Any:
    from trainer.model import build_fresh

    return build_fresh(str(e5_dir), max_width=5)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(POSTS, st.sampled_from([["location"], ["country", "admin", "city"]]))
def test_fast_collator_equals_gliner_on_minilm(minilm: Any, words_list: list[list[str]], labels: list[str]) -> None:
    fast = make_collator(minilm)
    assert isinstance(fast, FastCollator)
    assert_same(fast.collate(words_list, labels), gliner_batch(minilm, words_list, labels))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(POSTS)
def test_fast_collator_equals_gliner_on_e5(e5: Any, words_list: list[list[str]]) -> None:
    """A sentencepiece (XLM-R) tokenizer with other special tokens and no token types."""
    fast = make_collator(e5)
    assert isinstance(fast, FastCollator)
    assert_same(fast.collate(words_list, ["location"]), gliner_batch(e5, words_list, ["location"]))


def test_long_posts_are_truncated_as_gliner_truncates(minilm: Any) -> None:
    long_words = [[f"w{i}" for i in range(900)], ["short", "post"]]  # beyond max_len words and 512 pieces
    batch = make_collator(minilm).collate(long_words, ["location"])  # type: ignore[union-attr]
    assert batch["input_ids"].shape[1] == 512 and batch["text_lengths"][0, 0] == minilm.config.max_len
    assert_same(batch, gliner_batch(minilm, long_words, ["location"]))


def test_the_word_cache_is_bounded_and_stays_exact(minilm: Any) -> None:
    fast = FastCollator(minilm, cache_bytes=2_000)
    posts = [[f"town{i}" for i in range(12)], ["Houston", "town3"]]
    assert_same(fast.collate(posts, ["location"]), gliner_batch(minilm, posts, ["location"]))
    assert 0 < len(fast._pieces) < 14 and fast._pieces.bytes <= 2_000


def test_long_words_keep_the_word_cache_under_its_byte_bound(minilm: Any) -> None:
    """Hostile words (50 KB each) are counted by their bytes: the cache stays under its bound, answers stay exact."""
    bound = 200_000
    fast = FastCollator(minilm, cache_bytes=bound)
    tok = minilm.data_processor.transformer_tokenizer
    for k in range(12):
        words = ["Houston", ("ab" if k % 2 else "ü") * 25_000 + str(k), f"Texas{k}"]
        direct = tok([[w] for w in words], is_split_into_words=True, add_special_tokens=False)["input_ids"]
        assert fast.pieces(words) == [list(ids) for ids in direct]
        assert 0 < fast._pieces.bytes <= bound
    assert "Houston" in fast._pieces  # the short words stay; each long one pushes out the long one before it


def test_threads_sharing_one_collator_get_the_batches_a_lone_caller_gets(minilm: Any) -> None:
    from concurrent.futures import ThreadPoolExecutor

    posts = [[[f"w{k}{i}" for i in range(30)], ["Houston", f"x{k}"]] for k in range(40)]
    fast = FastCollator(minilm, cache_bytes=10_000)  # small: evictions race with lookups
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda p: fast.collate(p, ["location"]), posts))
    for p, batch in zip(posts, got, strict=True):
        assert_same(batch, FastCollator(minilm).collate(p, ["location"]))


def test_models_it_cannot_mirror_keep_gliners_collator(minilm: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(minilm.config, "subtoken_pooling", "mean", raising=False)
    assert make_collator(minilm) is None


@pytest.fixture(scope="module")
def extractors(tiny_model: Path) -> tuple[Any, Any]:
    from lmr.model.extractor import load_extractor

    return load_extractor(str(tiny_model), runtime="torch"), load_extractor(str(tiny_model), runtime="fused")


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(WORDS, max_size=30).map(" ".join) | st.text(max_size=200), min_size=1, max_size=5))
def test_window_piece_counts_from_the_cache_equal_the_tokenizers(extractors: tuple[Any, Any], texts: list[str]) -> None:
    """The worker windows posts by each word's pieces; the fast runtimes count them from the collator's cache."""
    from lmr.words import split_words

    plain, fast = extractors
    assert plain._fast_collator is None and fast._fast_collator is not None
    words_list = [split_words(t) for t in texts]
    assert fast.word_pieces(words_list) == plain.word_pieces(words_list)
