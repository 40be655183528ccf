"""A point in time by which work must end, handed down to whatever may wait (model, geocoder, network).

    deadline = Deadline.after(150.0)
    if deadline.expired: ...           # skip what is left
    timeout = deadline.cap(10.0)       # a request timeout that ends by the deadline

Times are ``time.monotonic()`` seconds unless a clock is given (tests pass a fake one).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Deadline:
    """Work must end by ``at`` (seconds on ``clock``)."""

    at: float
    clock: Callable[[], float] = field(default=time.monotonic, repr=False, compare=False)

    @classmethod
    def after(cls, seconds: float, clock: Callable[[], float] = time.monotonic) -> Deadline:
        """The deadline ``seconds`` from now."""
        return cls(clock() + seconds, clock)

    def left(self) -> float:
        """Seconds left (0 once passed)."""
        return max(0.0, self.at - self.clock())

    @property
    def expired(self) -> bool:
        return self.left() <= 0.0

    def cap(self, seconds: float | None) -> float:
        """``seconds`` (``None``: no limit of its own), shortened so that it ends by the deadline."""
        left = self.left()
        return left if seconds is None else min(seconds, left)
