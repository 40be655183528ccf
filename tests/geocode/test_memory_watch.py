"""A place memory file re-read by a running resolver when it changes (geocode.memory_watch)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from geocode.memory import learn
from geocode.memory_watch import WatchedMemory
from geocode.resolver import build_resolver
from geocode.results import Candidate, Resolution
from lmr.errors import ConfigError


def _place(name: str, lat: float, lon: float) -> Candidate:
    return Candidate(name=name, lat=lat, lon=lon, kind="poi", feature_type="hospital", country_code="EG")


def _write(path: Path, name: str, lat: float, lon: float, *, stamp: int) -> None:
    learn([(name, _place(name, lat, lon))] * 2).save(path)
    os.utime(path, ns=(stamp, stamp))  # a distinct modification time, as a later write has


@dataclass(frozen=True)
class Mention:
    text: str
    start: int
    end: int


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_changed_file_is_read_once_the_check_interval_has_passed(tmp_path: Path) -> None:
    path, clock = tmp_path / "places.json", Clock()
    _write(path, "Field Hospital", 30.0, 31.0, stamp=1_000_000_000)
    watched = WatchedMemory(path, check_s=10, clock=clock)
    _write(path, "Field Hospital", 28.1, 30.7, stamp=2_000_000_000)
    first = watched.lookup("field hospital")
    assert first is not None and first.lat == 30.0, "not checked again before check_s"
    clock.now = 10.0
    moved = watched.lookup("Field Hospital")
    assert moved is not None and (moved.lat, moved.lon) == (28.1, 30.7)
    assert watched.reloads == 1


def test_a_broken_file_keeps_the_old_memory_and_warns_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path, clock = tmp_path / "places.json", Clock()
    _write(path, "Camp 4", 15.0, 32.0, stamp=1_000_000_000)
    watched = WatchedMemory(path, check_s=1, clock=clock)
    path.write_text('{"format": "lmr-place-memory/1", "places": [', encoding="utf-8")  # half written
    os.utime(path, ns=(2_000_000_000, 2_000_000_000))
    with caplog.at_level(logging.WARNING, logger="geocode.memory_watch"):
        for t in (1.0, 2.0, 3.0):
            clock.now = t
            kept = watched.lookup("Camp 4")
            assert kept is not None and kept.lat == 15.0
    warnings = [r for r in caplog.records if "keeping the old one" in r.getMessage()]
    assert len(warnings) == 1 and str(path) in warnings[0].getMessage()
    _write(path, "Camp 4", 16.0, 33.0, stamp=3_000_000_000)
    clock.now = 4.0
    fixed = watched.lookup("Camp 4")
    assert fixed is not None and fixed.lat == 16.0


def test_a_file_that_disappears_keeps_the_memory(tmp_path: Path) -> None:
    path, clock = tmp_path / "places.json", Clock()
    _write(path, "Camp 4", 15.0, 32.0, stamp=1_000_000_000)
    watched = WatchedMemory(path, check_s=1, clock=clock)
    path.unlink()
    clock.now = 5.0
    assert watched.lookup("Camp 4") is not None and len(watched) == 1


def test_the_first_load_fails_loudly(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="lmr-geocode learn"):
        WatchedMemory(tmp_path / "missing.json")


def test_a_resolver_answers_from_the_newest_file(tmp_path: Path) -> None:
    path, clock = tmp_path / "places.json", Clock()
    _write(path, "Paris", 33.66, -95.56, stamp=1_000_000_000)  # Paris, Texas, as annotators placed it
    resolver = build_resolver("offline", memory=WatchedMemory(path, check_s=1, clock=clock))
    post = "Shelter open in Paris tonight"
    (first,) = resolver.resolve([Mention("Paris", 16, 21)], post)
    assert isinstance(first, Resolution) and first.backend == "memory" and round(first.lat, 2) == 33.66
    path.write_text('{"format": "lmr-place-memory/1", "min_support": 2, "places": []}\n', encoding="utf-8")
    os.utime(path, ns=(2_000_000_000, 2_000_000_000))
    clock.now = 2.0
    (after,) = resolver.resolve([Mention("Paris", 16, 21)], post)
    assert isinstance(after, Resolution) and after.backend == "offline" and after.country_code == "FR"
    assert resolver.stats()["memory_places"] == 0 and resolver.stats()["memory_answers"] == 1
