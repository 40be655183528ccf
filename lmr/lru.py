"""Caches bounded by the bytes they hold, not by how many entries they hold.

A count bound says nothing about memory when keys and values come from the outside world: one post
of 100 KB or a 50 KB "word" costs as much as thousands of ordinary ones. :class:`ByteLRU` counts an
estimate of each entry's bytes (:func:`footprint` of its key and value plus :data:`ENTRY_OVERHEAD`),
drops the least recently used entries while the total is over its bound, and never stores an entry
that alone is over it. :class:`Memo` puts one in front of a function of one string.

Every cache is named from a closed list (:data:`NAMES`) and registers itself, so a process can report
what its caches hold (:func:`held`; the worker's ``lmr_worker_cache_bytes{cache}`` in ``/metrics``).

    cache = ByteLRU("text", 64 * 2**20)
    cache.put("key", (1, 2, 0.9, "location"))
    cache.get("key"); cache.bytes; cache.max_bytes
"""

from __future__ import annotations

import sys
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

#: The caches a process can hold (the ``cache`` label of ``lmr_worker_cache_bytes``): a closed list.
NAMES = ("text", "word_pieces", "geocode", "geocode_context", "division_keys")
#: Bytes an entry costs beyond its key and value: the ordered dict's slot and link, the entry's tuple.
ENTRY_OVERHEAD = 160

_live: weakref.WeakSet[ByteLRU[Any, Any]] = weakref.WeakSet()
_live_lock = threading.Lock()


def footprint(obj: object) -> int:
    """Bytes ``obj`` takes, counting the items of tuples, lists and dicts (an estimate that errs high:
    an object shared by two entries counts for both)."""
    size = sys.getsizeof(obj)
    if isinstance(obj, tuple | list | set | frozenset):
        return size + sum(footprint(x) for x in obj)
    if isinstance(obj, dict):
        return size + sum(footprint(k) + footprint(v) for k, v in obj.items())
    return size


class ByteLRU(Generic[K, V]):
    """A thread-safe LRU map holding at most ``max_bytes`` (estimated); ``max_bytes=0`` holds nothing."""

    def __init__(self, name: str, max_bytes: int, size: Callable[[K, V], int] | None = None) -> None:
        if name not in NAMES:
            raise ValueError(f"cache name {name!r} is not one of {', '.join(NAMES)}")
        if max_bytes < 0:
            raise ValueError(f"a cache's byte bound must be >= 0, not {max_bytes}")
        self.name = name
        self.max_bytes = max_bytes
        self._size = size or (lambda k, v: footprint(k) + footprint(v))
        self._entries: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        with _live_lock:
            _live.add(self)

    @property
    def bytes(self) -> int:
        """Bytes held now (estimated, entry overhead included)."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def get(self, key: K) -> V | None:
        """The value of ``key`` (now the most recently used), or ``None``.

        Lock-free: each step is one atomic operation of the C ordered dict; a key another thread
        pushes out meanwhile is still answered this once.
        """
        item = self._entries.get(key)
        if item is None:
            return None
        try:  # noqa: SIM105 (the hit path: contextlib.suppress would cost more than the lookup)
            self._entries.move_to_end(key)
        except KeyError:
            pass
        return item[0]

    def put(self, key: K, value: V) -> bool:
        """Store ``key`` (the least recently used entries leave to make room); ``False`` when it alone is too big."""
        cost = ENTRY_OVERHEAD + self._size(key, value)
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            if cost > self.max_bytes:
                return False
            self._entries[key] = (value, cost)
            self._bytes += cost
            while self._bytes > self.max_bytes:
                _, (_, freed) = self._entries.popitem(last=False)
                self._bytes -= freed
            return True

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0


class Memo(Generic[V]):
    """``fn`` of one string, its answers kept in a :class:`ByteLRU` (``Memo(fn, "division_keys", 2**20)``)."""

    def __init__(self, fn: Callable[[str], V], name: str, max_bytes: int) -> None:
        self.fn = fn
        self.cache: ByteLRU[str, V] = ByteLRU(name, max_bytes)
        self.__doc__ = fn.__doc__

    def __call__(self, key: str) -> V:
        hit = self.cache.get(key)
        if hit is None:
            hit = self.fn(key)
            self.cache.put(key, hit)
        return hit


def held() -> dict[str, tuple[int, int]]:
    """Bytes held and byte bound per cache name, summed over the live caches of this process."""
    with _live_lock:
        caches = list(_live)
    out: dict[str, tuple[int, int]] = {}
    for c in caches:
        b, m = out.get(c.name, (0, 0))
        out[c.name] = (b + c.bytes, m + c.max_bytes)
    return out
