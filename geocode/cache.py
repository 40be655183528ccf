"""Two-level candidate cache: an in-process LRU in front of a persistent SQLite file.

Keys are ``(backend, normalised query, context key)``. The in-process LRU is bounded in bytes
(:class:`lmr.lru.ByteLRU`: a query is as long as the mention it came from). A found answer lives
``ttl`` seconds, an empty one (negative caching) ``negative_ttl`` seconds.
Errors are never cached. The SQLite file survives restarts and can be shared
by processes (WAL mode); writes are small single-row upserts.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lmr.errors import ConfigError
from lmr.lru import ByteLRU

Payload = list[dict[str, Any]]

DEFAULT_BYTES = 32 * 2**20  # the in-process LRU's bound (~1 KB per cached query)


class GeoCache:
    """LRU + optional SQLite cache of candidate lists."""

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        max_bytes: int = DEFAULT_BYTES,
        ttl: float = 30 * 86400,
        negative_ttl: float = 86400,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_bytes < 0 or ttl <= 0 or negative_ttl < 0:
            raise ConfigError("Cache sizes and TTLs must be positive.", "pass a cache size >= 0 and TTLs > 0.")
        self.max_bytes = max_bytes
        self.ttl = ttl
        self.negative_ttl = negative_ttl
        self._clock = clock
        self._lru: ByteLRU[tuple[str, str, str], tuple[float, Payload]] = ByteLRU("geocode", max_bytes)
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.disk_hits = 0
        self.path = Path(path) if path else None
        self._con: sqlite3.Connection | None = None
        if self.path is not None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                con = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
                con.execute("PRAGMA journal_mode=WAL")
                con.execute(
                    "CREATE TABLE IF NOT EXISTS geocache(backend TEXT, query TEXT, ctx TEXT, expires REAL,"
                    " payload TEXT, PRIMARY KEY(backend, query, ctx))"
                )
                con.commit()
            except (sqlite3.Error, OSError) as exc:
                raise ConfigError(
                    f"Cannot open the geocoder cache {self.path}: {exc}.", "pass a writable --cache-path."
                ) from exc
            self._con = con

    def get(self, backend: str, query: str, ctx: str) -> Payload | None:
        """The cached candidates, or ``None`` on a miss (an empty list is a cached negative)."""
        key = (backend, query, ctx)
        now = self._clock()
        with self._lock:
            item = self._lru.get(key)
            if item is not None and item[0] > now:
                self.hits += 1
                return item[1]
            if self._con is not None:
                row = self._con.execute(
                    "SELECT expires, payload FROM geocache WHERE backend=? AND query=? AND ctx=?", key
                ).fetchone()
                if row is not None and row[0] > now:
                    payload: Payload = json.loads(row[1])
                    self._remember(key, row[0], payload)
                    self.hits += 1
                    self.disk_hits += 1
                    return payload
            self.misses += 1
            return None

    def put(self, backend: str, query: str, ctx: str, payload: Payload) -> None:
        key = (backend, query, ctx)
        expires = self._clock() + (self.ttl if payload else self.negative_ttl)
        if not payload and self.negative_ttl == 0:
            return
        with self._lock:
            self._remember(key, expires, payload)
            if self._con is not None:
                self._con.execute(
                    "INSERT OR REPLACE INTO geocache VALUES (?,?,?,?,?)",
                    (*key, expires, json.dumps(payload, ensure_ascii=False)),
                )
                self._con.commit()

    def _remember(self, key: tuple[str, str, str], expires: float, payload: Payload) -> None:
        self._lru.put(key, (expires, payload))  # an expired entry is replaced here or pushed out by newer ones

    def purge_expired(self) -> int:
        """Delete expired rows from the SQLite file; returns how many."""
        if self._con is None:
            return 0
        with self._lock:
            cur = self._con.execute("DELETE FROM geocache WHERE expires <= ?", (self._clock(),))
            self._con.commit()
            return cur.rowcount

    def stats(self) -> dict[str, Any]:
        return {
            "cache_hits": self.hits,
            "cache_misses": self.misses,
            "cache_disk_hits": self.disk_hits,
            "cache_entries": len(self._lru),
            "cache_bytes": self._lru.bytes,
            "cache_max_bytes": self.max_bytes,
        }

    def close(self) -> None:
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None
