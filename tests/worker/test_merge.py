"""merge_mentions (overlapping windows -> one list of mentions) is sub-quadratic and merges as it did
(issue 32, item 4: a post of 16 windows full of mentions took seconds)."""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from lmr.mentions import Mention
from lmr.words import Word, split_words
from worker.extract import Chunk, merge_mentions


def _merge_quadratic(found: Sequence[tuple[Chunk, Mention]]) -> list[Mention]:
    """merge_mentions as it was (every new mention compared with every kept one): the oracle."""
    best: dict[tuple[int, int], tuple[bool, Mention]] = {}
    for chunk, m in found:
        edge = chunk.at_edge(m)
        key = (m.start, m.end)
        old = best.get(key)
        if old is None or (old[0], -old[1].score) > (edge, -m.score):
            best[key] = (edge, m)
    ranked = sorted(best.values(), key=lambda em: (em[0], -em[1].score, em[1].start))
    kept: list[Mention] = []
    for _edge, m in ranked:
        if all(m.end <= k.start or k.end <= m.start for k in kept):
            kept.append(m)
    return sorted(kept, key=lambda m: m.start)


WORDS: list[Word] = split_words(" ".join(f"w{i}" for i in range(40)))


@st.composite
def _found(draw: st.DrawFn) -> list[tuple[Chunk, Mention]]:
    n = len(WORDS)
    out = []
    for _ in range(draw(st.integers(0, 40))):
        first = draw(st.integers(0, n - 1))
        last = draw(st.integers(first + 1, min(n, first + 12)))
        a = draw(st.integers(first, last - 1))
        b = draw(st.integers(a, min(last - 1, a + 3)))
        start, end = WORDS[a].start, WORDS[b].end
        score = draw(st.sampled_from([0.3, 0.5, 0.5, 0.7, 0.9]))  # ties included
        text = " ".join(w.text for w in WORDS[a : b + 1])
        out.append((Chunk(WORDS[first:last], first, last, n), Mention(text, start, end, score)))
    return out


@settings(max_examples=400, deadline=None)
@given(found=_found())
def test_merge_mentions_equals_the_quadratic_merge(found: list[tuple[Chunk, Mention]]) -> None:
    merged = merge_mentions(found)
    assert merged == _merge_quadratic(found)
    assert all(a.end <= b.start for a, b in itertools.pairwise(merged))


def test_merge_mentions_of_many_windows_is_not_quadratic() -> None:
    """16 windows of 384 one-word mentions (6,144, of which 5,664 are kept): the old merge compared each with
    every one kept before it (16 million comparisons, seconds); sorted and searched, it takes milliseconds."""
    words = split_words(" ".join(["word"] * (16 * 352 + 32)))
    found = []
    for c in range(16):
        first = c * 352
        chunk = Chunk(words[first : first + 384], first, first + 384, len(words))
        found.extend((chunk, Mention(w.text, w.start, w.end, 0.5 + (i % 7) / 20)) for i, w in enumerate(chunk.words))
    t0 = time.perf_counter()
    merged = merge_mentions(found)
    took = time.perf_counter() - t0
    assert [(m.start, m.end) for m in merged] == [(w.start, w.end) for w in words]
    assert took < 1.0, took  # generous for a loaded machine (the old merge: 2.4 s on a loaded 2-core machine)
