"""A decaying spatial prior of a stream: where the recent confident resolutions were.

A worker sees hundreds of posts about the same disaster. :class:`StreamPrior`
remembers, per stream key (an input topic, an event field), how much recent
evidence points at each country, each first-level division and each grid cell
(``cell_deg`` degrees), and gives a candidate an *affinity* in ``[0, 1]``:

* a country candidate: the share of the evidence in that country;
* any other candidate: half the country share plus half the larger of its
  division's share and the share of evidence within one cell of it.

The resolver adds ``weight x affinity`` to a candidate's score, next to the
post's own co-mentions and the ``--region`` hint, so it breaks ties between
namesakes (Georgia the state in a US hurricane stream) but does not outvote
a post that says where it is.

It must not lock onto a wrong early guess, so:

* only confident resolutions teach it (probability >= ``min_probability`` and an
  exact or alternate name, ``match >= 0.9``), taken before the prior's own bonus;
* its weight ramps up with the evidence (full after ``warmup`` observations);
* every post multiplies the old evidence by ``0.5 ** (1 / half_life)``, so a
  guess is forgotten after a few hundred posts unless the stream repeats it;
* memory is bounded: at most ``max_entries`` places per key (the weakest are
  dropped) and ``max_keys`` keys (least recently used dropped).

With two events on one key the evidence splits between their regions: both
still beat a namesake on another continent (measured in ``bench/geocode_stream.py``).
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from geocode.aliases import division_key
from geocode.results import Candidate

_SUB_COUNTRY = ("admin1", "admin2", "city")


@dataclass(frozen=True)
class PriorConfig:
    """Tunables of the stream prior (see the module docstring)."""

    weight: float = 0.5
    half_life: float = 150.0  # posts
    warmup: float = 5.0  # observations before full weight
    min_probability: float = 0.65
    min_match: float = 0.9
    cell_deg: float = 1.0
    max_entries: int = 512
    max_keys: int = 64


@dataclass
class _Memory:
    countries: dict[str, float] = field(default_factory=dict)
    admin1: dict[tuple[str, str], float] = field(default_factory=dict)
    cells: dict[tuple[int, int], float] = field(default_factory=dict)
    total: float = 0.0  # every observation
    local: float = 0.0  # observations below country level
    observations: int = 0
    example: dict[tuple[str, str], Candidate] = field(default_factory=dict)  # latest town seen per division

    def decay(self, factor: float) -> None:
        self.countries = {k: v * factor for k, v in self.countries.items()}
        self.admin1 = {k: v * factor for k, v in self.admin1.items()}
        self.cells = {k: v * factor for k, v in self.cells.items()}
        self.total *= factor
        self.local *= factor

    def trim(self, max_entries: int) -> None:
        self.countries = _strongest(self.countries, max_entries)
        self.admin1 = _strongest(self.admin1, max_entries)
        self.cells = _strongest(self.cells, max_entries)
        self.example = {k: v for k, v in self.example.items() if k in self.admin1}


K = TypeVar("K")


def _strongest(table: dict[K, float], n: int) -> dict[K, float]:
    if len(table) <= n:
        return table
    return dict(sorted(table.items(), key=lambda kv: kv[1], reverse=True)[:n])


class StreamPrior:
    """Per-key decaying evidence of where a stream's places are. Thread-safe."""

    def __init__(self, config: PriorConfig | None = None) -> None:
        self.config = config or PriorConfig()
        self._decay = 0.5 ** (1.0 / max(self.config.half_life, 1e-9))
        self._keys: OrderedDict[str, _Memory] = OrderedDict()
        self._lock = threading.Lock()
        self.observed = 0

    def _cell(self, lat: float, lon: float) -> tuple[int, int]:
        d = self.config.cell_deg
        return math.floor(lat / d), math.floor(lon / d)

    def affinity(self, key: str, c: Candidate) -> float:
        """How much the stream's recent evidence points at ``c`` (0..1, ramped by the evidence)."""
        with self._lock:
            mem = self._keys.get(key)
            if mem is None or mem.total <= 0 or c.kind not in ("country", *_SUB_COUNTRY):
                return 0.0
            ramp = min(1.0, mem.total / self.config.warmup)
            country = mem.countries.get(c.country_code or "", 0.0) / mem.total
            if c.kind == "country":
                return ramp * country
            local = 0.0
            if mem.local > 0:
                a1 = mem.admin1.get((c.country_code or "", division_key(c.admin1)), 0.0) if c.admin1 else 0.0
                i, j = self._cell(c.lat, c.lon)
                near = sum(mem.cells.get((i + di, j + dj), 0.0) for di in (-1, 0, 1) for dj in (-1, 0, 1))
                local = max(a1, near) / mem.local
            return ramp * (0.5 * country + 0.5 * min(local, 1.0))

    def observe(self, key: str, places: Iterable[Candidate]) -> None:
        """One post's confident places (already filtered by the caller); decays the older evidence first."""
        cfg = self.config
        with self._lock:
            mem = self._keys.get(key)
            if mem is None:
                mem = self._keys[key] = _Memory()
                while len(self._keys) > cfg.max_keys:
                    self._keys.popitem(last=False)
            else:
                self._keys.move_to_end(key)
            mem.decay(self._decay)
            for c in places:
                if not c.country_code or c.kind not in ("country", *_SUB_COUNTRY):
                    continue
                w = 0.5 if c.kind == "country" else 1.0
                mem.countries[c.country_code] = mem.countries.get(c.country_code, 0.0) + w
                mem.total += w
                mem.observations += 1
                self.observed += 1
                if c.kind == "country":
                    continue
                mem.local += w
                if c.admin1:
                    k1 = (c.country_code, division_key(c.admin1))
                    mem.admin1[k1] = mem.admin1.get(k1, 0.0) + w
                    if c.kind in ("city", "admin2") or k1 not in mem.example:
                        mem.example[k1] = c
                if c.kind != "admin1":
                    cell = self._cell(c.lat, c.lon)
                    mem.cells[cell] = mem.cells.get(cell, 0.0) + w
            mem.trim(cfg.max_entries)

    def settled(self, key: str, share: float = 0.5) -> bool:
        """Whether the stream has its full evidence and one country holds at least ``share`` of it."""
        with self._lock:
            mem = self._keys.get(key)
            if mem is None or mem.total < self.config.warmup:
                return False
            return max(mem.countries.values(), default=0.0) / mem.total >= share

    def focus(self, key: str) -> Candidate | None:
        """The latest town seen in the division with the most evidence (what a placeless mention inherits)."""
        with self._lock:
            mem = self._keys.get(key)
            if mem is None or mem.total < self.config.warmup or not mem.admin1:
                return None
            best = max(mem.admin1, key=lambda k: mem.admin1[k])
            return mem.example.get(best)

    def teaches(self, c: Candidate, probability: float) -> bool:
        """Whether a resolution is confident enough to teach the prior."""
        return probability >= self.config.min_probability and c.match >= self.config.min_match

    def reset(self, key: str | None = None) -> None:
        """Forget one key's evidence, or every key's."""
        with self._lock:
            if key is None:
                self._keys.clear()
            else:
                self._keys.pop(key, None)

    def top(self, key: str, n: int = 3) -> list[tuple[str, float]]:
        """The ``n`` countries with the most evidence and their shares (for logs and metrics)."""
        with self._lock:
            mem = self._keys.get(key)
            if mem is None or mem.total <= 0:
                return []
            best = sorted(mem.countries.items(), key=lambda kv: kv[1], reverse=True)[:n]
            return [(cc, round(v / mem.total, 3)) for cc, v in best]

    def stats(self) -> dict[str, Any]:
        with self._lock:
            entries = sum(len(m.countries) + len(m.admin1) + len(m.cells) for m in self._keys.values())
            return {"prior_keys": len(self._keys), "prior_entries": entries, "prior_observations": self.observed}
