"""Location extraction for a micro-batch: chunking of long posts, isolation of failing posts.

The encoder reads a bounded number of sub-word pieces (512 for BERT-like
encoders, less GLiNER's label prompt) and the model a bounded number of words
(``max_len``, 384), and both truncate silently. So posts are split on word
boundaries into windows that respect both limits, counting each word's pieces as
the encoder sees them (case markers included): a 384-word IDRISI window with
case markers is ~520 pieces, a 690-character Chinese post 61 words but 690
pieces. Consecutive windows overlap by ``overlap`` words (at most half a
window); mentions come back with offsets into the original text (words carry
their spans), duplicates from overlapping windows are merged, and where two
windows disagree the span that does not touch a window edge (then the higher
score) wins. A post is flagged ``truncated`` exactly when some of its text was
not read: more than ``max_chunks`` windows were needed, or one word alone is
longer than the encoder's input (the encoder reads its first pieces only).
"""

from __future__ import annotations

import bisect
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Protocol, runtime_checkable

from geocode.placed import extraction_threshold
from lmr.mentions import Mention
from lmr.model.text_cache import Predictor, TextCache
from lmr.words import Word, split_words
from worker.parse import Post

log = logging.getLogger(__name__)


class ExtractorLike(Predictor, Protocol):
    """What the worker needs from :class:`lmr.model.extractor.Extractor`: a predictor with a name and a window."""

    name: str
    version: str

    @property
    def max_words(self) -> int: ...


@runtime_checkable
class CountsPieces(Protocol):
    """An extractor that knows its encoder's limit in sub-word pieces (:class:`lmr.model.extractor.Extractor`).

    Extractors without it are windowed by words only (each word counted as one piece).
    """

    @property
    def max_pieces(self) -> int: ...

    def word_pieces(self, words_list: Sequence[Sequence[Word]]) -> list[list[int]]: ...


@dataclass(frozen=True)
class Chunk:
    """Words ``[first, last)`` of a post, read by the model in one pass."""

    words: list[Word]
    first: int
    last: int
    n_words: int

    def at_edge(self, m: Mention) -> bool:
        """Whether ``m`` touches an inner window edge (it may be cut off there)."""
        left = self.first > 0 and m.start <= self.words[0].start
        right = self.last < self.n_words and m.end >= self.words[-1].end
        return left or right


def make_chunks(
    words: list[Word],
    window: int,
    overlap: int,
    max_chunks: int,
    *,
    pieces: Sequence[int] | None = None,
    max_pieces: int = 0,
) -> tuple[list[Chunk], bool]:
    """Windows over ``words`` and whether some text was left unread.

    Each window holds at most ``window`` words and ``max_pieces`` sub-word pieces (``pieces[i]``
    per word; ``max_pieces`` 0 = no piece limit); consecutive windows share ``overlap`` words, at
    most half of the earlier window.
    """
    n = len(words)
    cost = list(pieces) if pieces is not None else [1] * n
    budget = max_pieces if max_pieces > 0 else sum(cost) + 1
    chunks: list[Chunk] = []
    unread = False
    start = 0
    while start < n:
        if len(chunks) >= max_chunks:
            return chunks, True
        end, used = start, 0
        while end < n and end - start < window and used + cost[end] <= budget:
            used += cost[end]
            end += 1
        if end == start:  # one word alone is longer than the encoder's input: only its first pieces are read
            end, unread = start + 1, True
        chunks.append(Chunk(words[start:end], start, end, n))
        if end == n:
            break
        start = max(start + 1, end - min(overlap, (end - start) // 2))
    if not chunks:
        chunks.append(Chunk([], 0, 0, 0))
    return chunks, unread


def merge_mentions(found: Sequence[tuple[Chunk, Mention]]) -> list[Mention]:
    """Merge mentions from overlapping windows into one flat, non-overlapping, sorted list.

    Best first (away from a window edge, then the higher score, then the earlier), a mention is kept
    unless it overlaps one already kept. The kept spans never overlap, so in text order their ends
    rise too: one binary search finds the only kept span that can overlap a new one (the last that
    starts before it ends), O(n log n) in all (spans are non-empty, ``start < end``, as the model's are).
    """
    best: dict[tuple[int, int], tuple[bool, Mention]] = {}
    for chunk, m in found:
        edge = chunk.at_edge(m)
        key = (m.start, m.end)
        old = best.get(key)
        if old is None or (old[0], -old[1].score) > (edge, -m.score):
            best[key] = (edge, m)
    ranked = sorted(best.values(), key=lambda em: (em[0], -em[1].score, em[1].start))
    kept: list[Mention] = []  # in text order
    starts: list[int] = []
    for _edge, m in ranked:
        i = bisect.bisect_left(starts, m.end)  # kept[:i] start before m ends
        if i > 0 and kept[i - 1].end > m.start:
            continue
        kept.insert(i, m)
        starts.insert(i, m.start)
    return kept


@dataclass
class Extracted:
    """Mentions of one post."""

    mentions: list[Mention]
    truncated: bool
    chunks: int
    emit_threshold: float | None = None  # mentions scoring below it are emitted only when placed (geocode.placed)


@dataclass
class Extraction:
    """What :meth:`ExtractStage.run` returns: one result per post and the time spent in the model."""

    results: list[Extracted | BaseException]
    inference_s: float = 0.0

    @property
    def failed(self) -> int:
        return sum(isinstance(r, BaseException) for r in self.results)


class ExtractStage:
    """Runs the model over a batch of posts."""

    def __init__(
        self,
        *,
        threshold: float | None = None,
        placed_threshold: float | None = None,
        batch_size: int = 16,
        chunk_words: int = 0,
        chunk_overlap: int = 32,
        max_chunks: int = 16,
        text_cache: TextCache | None = None,
    ) -> None:
        self.threshold = threshold
        self.placed_threshold = placed_threshold  # with a geocoder: read down to it (geocode.placed)
        self.batch_size = batch_size
        self.chunk_words = chunk_words
        self.chunk_overlap = chunk_overlap
        self.max_chunks = max_chunks
        self.text_cache = text_cache  # repeated texts are read once (lmr.model.text_cache)

    def _window(self, extractor: ExtractorLike) -> tuple[int, int]:
        window = min(self.chunk_words, extractor.max_words) if self.chunk_words else extractor.max_words
        return max(1, window), max(0, self.chunk_overlap)

    def _thresholds(self, extractor: ExtractorLike) -> tuple[float | None, float | None]:
        """(the threshold to predict at, the threshold to emit at without a place); (threshold, None) when
        every predicted mention is emitted."""
        spec = getattr(extractor, "spec", None)
        emit = self.threshold if self.threshold is not None else getattr(spec, "threshold", None)
        if self.placed_threshold is None or emit is None or self.placed_threshold >= emit:
            return self.threshold, None
        return extraction_threshold(emit, self.placed_threshold), emit

    def _run(self, extractor: ExtractorLike, posts: Sequence[Post], clock: list[float]) -> list[Extracted]:
        window, overlap = self._window(extractor)
        threshold, emit = self._thresholds(extractor)
        split = [split_words(post.text) for post in posts]
        if isinstance(extractor, CountsPieces):
            pieces: list[list[int]] | list[None] = extractor.word_pieces(split)
            max_pieces = extractor.max_pieces
        else:
            pieces, max_pieces = [None] * len(posts), 0
        words_list: list[list[Word]] = []
        texts: list[str] = []
        owners: list[tuple[int, Chunk]] = []
        meta: list[tuple[bool, int]] = []
        for i, post in enumerate(posts):
            chunks, truncated = make_chunks(
                split[i], window, overlap, self.max_chunks, pieces=pieces[i], max_pieces=max_pieces
            )
            meta.append((truncated, len(chunks)))
            for c in chunks:
                words_list.append(c.words)
                texts.append(post.text)
                owners.append((i, c))
        t0 = time.perf_counter()
        predict = partial(self.text_cache.predict_words, extractor) if self.text_cache else extractor.predict_words
        preds = predict(words_list, texts, threshold=threshold, batch_size=self.batch_size)
        clock[0] += time.perf_counter() - t0
        found: list[list[tuple[Chunk, Mention]]] = [[] for _ in posts]
        for (i, c), ms in zip(owners, preds, strict=True):
            found[i].extend((c, m) for m in ms)
        out = []
        for i, (truncated, n) in enumerate(meta):
            ms = [m for _, m in found[i]] if n == 1 else merge_mentions(found[i])
            out.append(Extracted(ms, truncated, n, emit))
        return out

    def run(self, extractor: ExtractorLike, posts: Sequence[Post]) -> Extraction:
        """Mentions per post; when the batch fails, posts are retried one by one and failures returned as exceptions."""
        clock = [0.0]  # model seconds, summed over the passes below
        if not posts:
            return Extraction([])
        try:
            return Extraction(list(self._run(extractor, posts, clock)), clock[0])
        except Exception as exc:
            if len(posts) == 1:  # already isolated: reading it again alone would only repeat the failure
                return Extraction([exc], clock[0])
            log.warning(
                "model failed on a batch of %d posts (%s); retrying post by post to isolate the bad one",
                len(posts),
                exc,
            )
        out: list[Extracted | BaseException] = []
        for post in posts:
            try:
                out.append(self._run(extractor, [post], clock)[0])
            except Exception as exc:
                out.append(exc)
        return Extraction(out, clock[0])
