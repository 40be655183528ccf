"""The deadline of the resolution in progress, seen by every wait of a remote call.

:meth:`geocode.resolver.Resolver.resolve` takes a ``deadline`` and runs its lookups
``within(deadline)``; the waits further down the chain (the shared rate limit, the
rate limiter, the request timeout, the backoff between retries in
:class:`~geocode.guard.Guard`) read it with :func:`current` and never wait past it:
a wait that would end after it raises :class:`GeocoderDeadline` instead, and a
request timeout is shortened to the time left. The chain stays a chain of plain
geopy-style callables (``func(query, **kwargs)``), so the deadline travels beside
the call, in a context variable, not through every signature.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from lmr.deadline import Deadline
from lmr.errors import GeocoderError

_CURRENT: ContextVar[Deadline | None] = ContextVar("lmr_geocode_deadline", default=None)


class GeocoderDeadline(GeocoderError, TimeoutError):
    """A lookup was cut short (or not started) because the caller's deadline passed."""


def current() -> Deadline | None:
    """The deadline of the resolution in progress on this thread, if any."""
    return _CURRENT.get()


@contextmanager
def within(deadline: Deadline | None) -> Iterator[None]:
    """Run the block with ``deadline`` as :func:`current` (``None``: no deadline)."""
    token = _CURRENT.set(deadline)
    try:
        yield
    finally:
        _CURRENT.reset(token)


def passed(what: str) -> GeocoderDeadline:
    """The error for a wait that ``deadline`` leaves no time for."""
    return GeocoderDeadline(
        f"the deadline passed before {what}.",
        "the mention is left unresolved (reason deadline); a later deadline gives the lookups more time.",
    )
