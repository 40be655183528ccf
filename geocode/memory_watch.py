"""A place memory file that a running resolver re-reads when it changes.

Analysts pin places while an event unfolds (``lmr-geocode learn`` again, or an entry added by hand);
workers pick the new file up without a restart. :class:`WatchedMemory` checks the file's modification
time and size at most every ``check_s`` seconds, on a lookup; a changed file is loaded whole and
replaces the memory at once. A file that cannot be read or is not a memory keeps the old memory and
logs a warning once per change, so a half-written file never empties the memory.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from geocode.memory import PlaceMemory
from geocode.results import Candidate
from lmr.errors import ConfigError

log = logging.getLogger(__name__)

CHECK_S = 10.0  # as often as the worker looks for a new model (reload_check_s)


class WatchedMemory:
    """The memory of ``path``, reloaded when the file changes; the first load's errors are raised."""

    def __init__(self, path: str | Path, *, check_s: float = CHECK_S, clock: Callable[[], float] = time.monotonic):
        self.path = Path(path)
        self.check_s = check_s
        self._clock = clock
        self._lock = threading.Lock()
        self._stamp = self._stat()
        self.memory = PlaceMemory.load(self.path)
        self._checked = clock()
        self._bad_stamp: tuple[int, int] | None = None
        self.reloads = 0

    def __len__(self) -> int:
        return len(self.memory)

    def lookup(self, text: str) -> Candidate | None:
        """The remembered place of ``text`` in the newest good version of the file."""
        self._check()
        return self.memory.lookup(text)

    def _stat(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    def _check(self) -> None:
        now = self._clock()
        if now - self._checked < self.check_s:
            return
        with self._lock:
            self._checked = now
            stamp = self._stat()
            if stamp is None or stamp == self._stamp or stamp == self._bad_stamp:
                return
            try:
                fresh = PlaceMemory.load(self.path)
            except ConfigError as exc:
                self._bad_stamp = stamp
                log.warning("place memory %s changed but cannot be used, keeping the old one: %s", self.path, exc)
                return
            self.memory, self._stamp, self._bad_stamp = fresh, stamp, None
            self.reloads += 1
            log.info("place memory %s reloaded: %d names", self.path, len(fresh))
