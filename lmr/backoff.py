"""One exponential-backoff policy for every retry loop of the worker (connect, deliver, commit, reload, model)."""

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

    def wait(self) -> bool:
        """Sleep the next delay; False if ``stop`` was set (before or during the wait)."""
        delay = self.delay
        self.attempt += 1
        return not self.stop.wait(delay)

    def reset(self) -> None:
        self.attempt = 0
