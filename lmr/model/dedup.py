"""Never run the model twice on the same text: a bounded cache of predictions keyed by normalised text.

Crisis streams repeat themselves: retweets (``RT @user: <text>``) and the same alert posted by many
accounts, often with a different short link at the end. The model reads each post's *core*: the
text after its ``RT @user:`` prefixes and before its trailing links. Two posts with the same core
(the same model version, runtime and threshold) get the same mentions, computed once; offsets are
kept relative to the core and mapped onto each post's own text, so a mention found in a retweet
points into the retweet.

Reading the core instead of the whole post changes little: of the 2,127 gold mentions in IDRISI's
retweets (train + dev), one lies inside an ``RT @user:`` prefix (a user name), none in a link.

    cache = TextCache(50_000)
    mentions = cache.predict(extractor, texts)          # in place of extractor.predict(texts)
    cache.stats()                                       # {"hits": ..., "lookups": ..., "size": ...}
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Protocol

from lmr.mentions import Mention
from lmr.words import Word, split_words

DEFAULT_SIZE = 50_000  # entries; an entry holds a post's core text and its few mentions (~1 KB)

_RT_PREFIX = re.compile(r"(?:\s*RT\s+@\w+\s*:\s*)+")
_TRAILING_LINKS = re.compile(r"(?:\s*https?://\S+)*\s*$")

Key = tuple[str, float, str, tuple[tuple[int, int], ...]]
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
    """Character span of ``text`` without its ``RT @user:`` prefixes and trailing links/whitespace."""
    m = _RT_PREFIX.match(text)
    start = m.end() if m else 0
    end = _TRAILING_LINKS.search(text, start)
    return start, end.start() if end else len(text)


def core_words(words: Sequence[Word], text: str) -> list[Word]:
    """The words of ``words`` (a post's words, or a window of them) that lie inside the post's core."""
    start, end = core_span(text)
    return [w for w in words if w.start >= start and w.end <= end]


class TextCache:
    """LRU cache of mentions by (model, runtime, threshold, core text); thread-safe; ``size=0`` disables it."""

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        if size < 0:
            raise ValueError(f"text cache size must be >= 0, not {size}")
        self.size = size
        self.hits = 0
        self.lookups = 0
        self._entries: OrderedDict[Key, Found] = OrderedDict()
        self._lock = threading.Lock()

    def stats(self) -> dict[str, Any]:
        """Hits, lookups (posts or windows looked up), entries held and hit rate so far."""
        with self._lock:
            rate = self.hits / self.lookups if self.lookups else 0.0
            return {"hits": self.hits, "lookups": self.lookups, "size": len(self._entries), "hit_rate": rate}

    def clear(self) -> None:
        with self._lock:
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
        if self.size == 0:
            return extractor.predict_words(words_list, texts, threshold=threshold, batch_size=batch_size)
        version = f"{extractor.model_id}|{getattr(extractor, 'runtime', '')}"
        thr = -1.0 if threshold is None else float(threshold)
        cores = [core_words(w, t) for w, t in zip(words_list, texts, strict=True)]
        keys = [_key(version, thr, c, t) for c, t in zip(cores, texts, strict=True)]
        found: dict[Key, Found] = {}
        todo: dict[Key, int] = {}  # first post of each distinct core not in the cache
        with self._lock:
            self.lookups += len(keys)
            for i, k in enumerate(keys):
                hit = self._entries.get(k)
                if hit is not None:
                    self._entries.move_to_end(k)
                    found[k] = hit
                elif k not in todo:
                    todo[k] = i
            self.hits += len(keys) - len(todo)
        if todo:
            idx = list(todo.values())
            preds = extractor.predict_words(
                [cores[i] for i in idx], [texts[i] for i in idx], threshold=threshold, batch_size=batch_size
            )
            fresh = {keys[i]: _relative(ms, cores[i]) for i, ms in zip(idx, preds, strict=True)}
            found.update(fresh)
            self._store(fresh)
        return [_absolute(found[k], c, t) for k, c, t in zip(keys, cores, texts, strict=True)]

    def _store(self, fresh: dict[Key, Found]) -> None:
        with self._lock:
            for k, v in fresh.items():
                self._entries[k] = v
                self._entries.move_to_end(k)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)


def _key(version: str, threshold: float, core: Sequence[Word], text: str) -> Key:
    if not core:
        return (version, threshold, "", ())
    s = core[0].start
    return (version, threshold, text[s : core[-1].end], tuple((w.start - s, w.end - s) for w in core))


def _relative(mentions: Sequence[Mention], core: Sequence[Word]) -> Found:
    s = core[0].start if core else 0
    return tuple((m.start - s, m.end - s, m.score, m.label) for m in mentions)


def _absolute(found: Found, core: Sequence[Word], text: str) -> list[Mention]:
    s = core[0].start if core else 0
    return [Mention(text[s + a : s + b], s + a, s + b, score, label) for a, b, score, label in found]
