"""One exponential-backoff policy for every retry loop: the worker's (connect, deliver, commit, reload, model)
and the remote geocoders' (:class:`geocode.guard.Guard`)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """Delays ``initial_s, 2*initial_s, ...`` capped at ``max_s``; ``wait()`` sleeps the next one.

    ``stop`` (an event) cuts a wait short, so a stopping worker never sleeps out a long delay.
    """

    initial_s: float
    max_s: float
    stop: threading.Event = field(default_factory=threading.Event)
    attempt: int = 0

    @property
    def delay(self) -> float:
        """The delay the next :meth:`wait` sleeps."""
        return float(min(self.max_s, self.initial_s * (2 ** min(self.attempt, 30))))

    def next_delay(self) -> float:
        """The delay to sleep now, counting the attempt (the caller sleeps it)."""
        delay = self.delay
        self.attempt += 1
        return delay

    def wait(self) -> bool:
        """Sleep the next delay; False if ``stop`` was set (before or during the wait)."""
        return not self.stop.wait(self.next_delay())

    def reset(self) -> None:
        self.attempt = 0
