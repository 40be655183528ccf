"""A request rate shared by every process on a host, and the public Nominatim policy.

geopy's ``RateLimiter`` (inside :class:`~geocode.guard.Guard`) spaces the calls of
*one* process: N workers with ``--geocoder-min-delay 1`` send N requests per
second. :class:`SharedRateLimit` spaces the calls of every process that names the
same file: each call takes an exclusive ``flock`` on it, waits until
``min_delay_seconds`` after the time stored there, stores its own time and
releases the lock, so the host as a whole keeps the rate. Under a deadline
(:mod:`geocode.deadline`) a call whose turn comes after it is not made. Processes on several
hosts cannot share a file: give each ``N x`` the delay, or self-host the service
(no limit).

:func:`check_public_nominatim` refuses settings that break the public server's
usage policy (at most one request per second, an identifying user agent).
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from geocode.deadline import current, passed
from lmr.errors import ConfigError

PUBLIC_NOMINATIM_HOSTS = frozenset({"nominatim.openstreetmap.org"})
PUBLIC_MIN_DELAY_S = 1.0


class SharedRateLimit:
    """Calls ``func`` at most once per ``min_delay_seconds`` across every process using ``path``."""

    def __init__(
        self,
        func: Callable[..., Any],
        path: str | Path,
        *,
        min_delay_seconds: float,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if min_delay_seconds < 0:
            raise ConfigError("The shared minimum delay is negative.", "pass --geocoder-min-delay 0 or more.")
        self.func = func
        self.path = Path(path)
        self.min_delay_seconds = min_delay_seconds
        self._clock = clock
        self._sleep = sleep
        self.waited = 0.0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.touch(exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"Cannot use {self.path} as a shared rate-limit file: {exc}.",
                "pass a writable --geocoder-rate-file on a local disk shared by the workers of this host.",
            ) from exc

    def _wait_turn(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            raw = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
            try:
                last = float(raw) if raw else 0.0
            except ValueError:
                last = 0.0
            wait = last + self.min_delay_seconds - self._clock()
            deadline = current()
            if wait > 0 and deadline is not None and wait >= deadline.left():
                raise passed("the shared rate limit's next request slot")  # the turn stays free for others
            if wait > 0:
                self.waited += wait
                self._sleep(min(wait, self.min_delay_seconds))
            stamp = f"{self._clock():.6f}".encode().ljust(32)
            os.pwrite(fd, stamp, 0)
        finally:
            os.close(fd)  # closing releases the lock

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self._wait_turn()
        return self.func(*args, **kwargs)


def is_public_nominatim(service: str, url: str | None) -> bool:
    if service != "nominatim":
        return False
    if not url:
        return True
    host = urlsplit(url if "://" in url else f"https://{url}").hostname or ""
    return host.lower() in PUBLIC_NOMINATIM_HOSTS


def check_public_nominatim(service: str, url: str | None, min_delay_seconds: float) -> None:
    """Refuse a faster rate than the public server's policy allows."""
    if is_public_nominatim(service, url) and min_delay_seconds < PUBLIC_MIN_DELAY_S:
        raise ConfigError(
            f"The public Nominatim server allows at most one request per second; --geocoder-min-delay "
            f"{min_delay_seconds:g} asks for more.",
            "keep the delay at 1 s or more (N workers on one host: also share --geocoder-rate-file; on N hosts: "
            "a delay of N s each), or run your own Nominatim and pass --geocoder-url.",
        )
