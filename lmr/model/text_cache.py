"""Never run the model twice on the same text: a bounded cache of predictions keyed by normalised text.

Crisis streams repeat themselves: retweets (``RT @user: <text>``) and the same alert posted by many
accounts, often with a different short link at the end. The model reads each post's *core*: the
text after its ``RT @user:`` prefixes and before its trailing links. Two posts with the same core
(the same model version, runtime and threshold) get the same mentions, computed once; offsets are
kept relative to the core and mapped onto each post's own text, so a mention found in a retweet
points into the retweet.

Reading the core instead of the whole post changes little: of the 2,127 gold mentions in IDRISI's
retweets (train + dev), one lies inside an ``RT @user:`` prefix (a user name), none in a link.

Memory is bounded in bytes (:class:`lmr.lru.ByteLRU`): an entry is keyed by a 16-byte digest of
(model, runtime, threshold, core text, word spans), not by the text, so it costs ~200 bytes plus
~200 per mention whatever the post's length. Finding the core is linear in the text's length
(:func:`core_span` scans the tail from the right; no regular expression backtracks over it).

    cache = TextCache(64 * 2**20)
    mentions = cache.predict(extractor, texts)          # in place of extractor.predict(texts)
    cache.stats()                                       # {"hits": ..., "lookups": ..., "size": ..., "bytes": ...}
"""

from __future__ import annotations

import hashlib
import re
import threading
from array import array
from collections.abc import Sequence
from typing import Any, Protocol

from lmr.lru import ByteLRU
from lmr.mentions import Mention
from lmr.words import Word, split_words

DEFAULT_BYTES = 64 * 2**20  # the text cache's bound: ~200 bytes per entry plus ~200 per mention

_ONE_RT = re.compile(r"\s*RT\s+@\w+\s*:\s*")  # one prefix, matched at a given position (never searched)
_SCHEMES = ("http://", "https://")

Key = bytes  # a digest of (model version, threshold, core text, word spans)
Found = tuple[tuple[int, int, float, str], ...]  # (start, end, score, label) relative to the core's first word


class Predictor(Protocol):
    """What the cache needs from :class:`lmr.model.extractor.Extractor` (its ``runtime`` is read if present)."""

    @property
    def model_id(self) -> str: ...

    def predict_words(
        self,
        words_list: Sequence[Sequence[Word]],
        texts: Sequence[str],
        *,
        threshold: float | None = None,
        batch_size: int = 16,
    ) -> list[list[Mention]]: ...


def core_span(text: str) -> tuple[int, int]:
    """Character span of ``text`` without its ``RT @user:`` prefixes and trailing links/whitespace.

    Linear in ``len(text)``: the prefixes are matched one at a time from the start, the tail is
    scanned once from the right (:func:`tail_start`).
    """
    start = 0
    while m := _ONE_RT.match(text, start):
        start = m.end()
    return start, tail_start(text, start)


def tail_start(text: str, start: int = 0) -> int:
    """Where the trailing links and whitespace of ``text[start:]`` begin.

    The earliest ``p >= start`` such that ``text[p:]`` is whitespace and links (``https?://`` and at
    least one more non-space character, written back to back or apart), what
    ``re.search(r"(?:\\s*https?://\\S+)*\\s*$", text[start:])`` finds, in one right-to-left pass
    instead of a backtracking scan from every position (quadratic in a run of whitespace).
    """
    p = len(text)
    while True:
        while p > start and text[p - 1].isspace():
            p -= 1
        end = p  # text[end:] is all whitespace; the run of non-space characters before it:
        while p > start and not text[p - 1].isspace():
            p -= 1
        if p == end:
            return end
        link = _first_link(text, p, end)
        if link is None:
            return end
        if link > p or p == start:
            return link


def _first_link(text: str, lo: int, hi: int) -> int | None:
    """The first ``i`` in ``[lo, hi)`` where ``text[i:hi]`` (no whitespace in it) is one link or several."""
    i = text.find("http", lo, hi)
    while i != -1:
        for scheme in _SCHEMES:
            if text.startswith(scheme, i, hi) and hi - i > len(scheme):
                return i
        i = text.find("http", i + 1, hi)
    return None


def core_words(words: Sequence[Word], text: str) -> list[Word]:
    """The words of ``words`` (a post's words, or a window of them) that lie inside the post's core."""
    return _inside(words, core_span(text))


class TextCache:
    """LRU cache of mentions by (model, runtime, threshold, core text), bounded in bytes; thread-safe.

    ``max_bytes=0`` disables it. An entry's bytes are its digest key and its mentions (never the text).
    """

    def __init__(self, max_bytes: int = DEFAULT_BYTES) -> None:
        if max_bytes < 0:
            raise ValueError(f"text cache bytes must be >= 0, not {max_bytes}")
        self.max_bytes = max_bytes
        self.hits = 0
        self.lookups = 0
        self._entries: ByteLRU[Key, Found] = ByteLRU("text", max_bytes)
        self._lock = threading.Lock()

    def stats(self) -> dict[str, Any]:
        """Hits, lookups (posts or windows looked up), entries and bytes held, and hit rate so far."""
        with self._lock:
            rate = self.hits / self.lookups if self.lookups else 0.0
            return {
                "hits": self.hits,
                "lookups": self.lookups,
                "size": len(self._entries),
                "bytes": self._entries.bytes,
                "max_bytes": self.max_bytes,
                "hit_rate": rate,
            }

    def clear(self) -> None:
        self._entries.clear()

    def predict(
        self, extractor: Predictor, texts: Sequence[str], *, threshold: float | None = None, batch_size: int = 16
    ) -> list[list[Mention]]:
        """:meth:`Extractor.predict` through the cache."""
        words = [split_words(t) for t in texts]
        return self.predict_words(extractor, words, texts, threshold=threshold, batch_size=batch_size)

    def predict_words(
        self,
        extractor: Predictor,
        words_list: Sequence[Sequence[Word]],
        texts: Sequence[str],
        *,
        threshold: float | None = None,
        batch_size: int = 16,
    ) -> list[list[Mention]]:
        """:meth:`Extractor.predict_words` through the cache: each distinct core is read by the model once."""
        if self.max_bytes == 0:
            return extractor.predict_words(words_list, texts, threshold=threshold, batch_size=batch_size)
        version = f"{extractor.model_id}|{getattr(extractor, 'runtime', '')}"
        thr = -1.0 if threshold is None else float(threshold)
        spans: dict[str, tuple[int, int]] = {}  # the windows of one post share its text: its core is found once
        cores = [
            _inside(w, spans.get(t) or spans.setdefault(t, core_span(t)))
            for w, t in zip(words_list, texts, strict=True)
        ]
        keys = [_key(version, thr, c, t) for c, t in zip(cores, texts, strict=True)]
        found: dict[Key, Found] = {}
        todo: dict[Key, int] = {}  # first post of each distinct core not in the cache
        for i, k in enumerate(keys):
            hit = self._entries.get(k)
            if hit is not None:
                found[k] = hit
            elif k not in todo:
                todo[k] = i
        with self._lock:
            self.lookups += len(keys)
            self.hits += len(keys) - len(todo)
        if todo:
            idx = list(todo.values())
            preds = extractor.predict_words(
                [cores[i] for i in idx], [texts[i] for i in idx], threshold=threshold, batch_size=batch_size
            )
            for i, ms in zip(idx, preds, strict=True):
                found[keys[i]] = _relative(ms, cores[i])
                self._entries.put(keys[i], found[keys[i]])
        return [_absolute(found[k], c, t) for k, c, t in zip(keys, cores, texts, strict=True)]


def _inside(words: Sequence[Word], span: tuple[int, int]) -> list[Word]:
    return [w for w in words if w.start >= span[0] and w.end <= span[1]]


def _key(version: str, threshold: float, core: Sequence[Word], text: str) -> Key:
    """A 16-byte BLAKE2b digest of the core and what it was read with (a collision is 1 in 2**64 at 2**32 keys)."""
    s = core[0].start if core else 0
    e = core[-1].end if core else 0
    spans = array("q", (x for w in core for x in (w.start - s, w.end - s)))
    h = hashlib.blake2b(digest_size=16)
    for part in (version.encode("utf-8", "surrogatepass"), repr(threshold).encode(), spans.tobytes()):
        h.update(len(part).to_bytes(8, "little"))
        h.update(part)
    h.update(text[s:e].encode("utf-8", "surrogatepass"))
    return h.digest()


def _relative(mentions: Sequence[Mention], core: Sequence[Word]) -> Found:
    s = core[0].start if core else 0
    return tuple((m.start - s, m.end - s, m.score, m.label) for m in mentions)


def _absolute(found: Found, core: Sequence[Word], text: str) -> list[Mention]:
    s = core[0].start if core else 0
    return [Mention(text[s + a : s + b], s + a, s + b, score, label) for a, b, score, label in found]
