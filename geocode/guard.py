"""Calling a remote geocoder politely: rate limit, retries with backoff, circuit breaker.

The chain, outermost first, is ``CircuitBreaker -> retries -> geopy RateLimiter ->
geocoder``; the cache sits in front of all of it, so cache hits never wait.
geopy's :class:`~geopy.extra.rate_limiter.RateLimiter` spaces the calls
(``min_delay_seconds``, 1 s for Nominatim's usage policy) and never swallows
errors here (``swallow_exceptions=False``, ``max_retries=0``): retries live in
:class:`Guard`, which backs off exponentially (honouring ``Retry-After``) on
timeouts, 429 and 5xx answers, and a breaker that opens after
``failure_threshold`` consecutive failures and fails fast until ``reset_after``
seconds have passed, then lets exactly one trial call through (half-open): the
calls that arrive while the trial runs fail fast too; the trial's success closes
the breaker, its failure opens it again for ``reset_after`` seconds.

Under a deadline (:mod:`geocode.deadline`) no wait of the chain ends after it: a
rate-limit wait or a backoff that would is not started (the call fails with
:class:`~geocode.deadline.GeocoderDeadline`, or with the error a retry was for), and
:class:`DeadlineTimeout`, the innermost link, shortens the request timeout to the time
left. A call cut by the deadline is not the service's failure: it neither counts
towards the breaker nor is retried.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from geopy import exc as gexc
from geopy.extra.rate_limiter import RateLimiter

from geocode.deadline import GeocoderDeadline, current, passed
from lmr.backoff import Backoff
from lmr.errors import (
    GeocoderError,
    GeocoderQueryError,
    GeocoderRateLimited,
    GeocoderTimeout,
    GeocoderUnavailable,
)

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class GuardConfig:
    """Limits for one remote geocoder."""

    min_delay_seconds: float = 1.0
    max_retries: int = 2
    backoff_seconds: float = 1.0
    max_backoff_seconds: float = 30.0
    failure_threshold: int = 5
    reset_after: float = 60.0


def translate(exc: BaseException, service: str) -> GeocoderError:
    """Map a geopy error onto lmr's hierarchy (messages never carry credentials)."""
    name = type(exc).__name__
    if isinstance(exc, GeocoderError):
        return exc
    if isinstance(exc, gexc.GeocoderRateLimited):
        err: GeocoderError = GeocoderRateLimited(
            f"{service} answered 429 (too many requests).", "lower the request rate or raise --geocoder-min-delay."
        )
        err.retry_after = getattr(exc, "retry_after", None)  # type: ignore[attr-defined]
        return err
    if isinstance(exc, gexc.GeocoderTimedOut):
        return GeocoderTimeout(f"{service} did not answer in time ({name}).", "raise --geocoder-timeout.")
    if isinstance(exc, (gexc.GeocoderAuthenticationFailure, gexc.GeocoderInsufficientPrivileges)):
        return GeocoderQueryError(
            f"{service} rejected the credentials ({name}).", "check LMR_GEOCODER_API_KEY and the user agent."
        )
    if isinstance(exc, gexc.GeocoderQueryError):
        return GeocoderQueryError(f"{service} rejected the query ({name}).", "check the geocoder options.")
    if isinstance(exc, (gexc.GeocoderUnavailable, gexc.GeocoderServiceError, OSError)):
        return GeocoderUnavailable(
            f"{service} is unavailable ({name}).", "check --geocoder-url and that the service is up."
        )
    return GeocoderUnavailable(f"{service} failed ({name}).", "check the geocoder service.")


class CountingRateLimiter(RateLimiter):  # type: ignore[misc]
    """geopy's RateLimiter, counting calls and time slept (for stats and tests)."""

    def __init__(self, func: Callable[..., Any], *, min_delay_seconds: float) -> None:
        super().__init__(func, min_delay_seconds=min_delay_seconds, max_retries=0, swallow_exceptions=False)
        self.calls = 0
        self.slept = 0.0

    def _sleep(self, seconds: float) -> None:
        deadline = current()
        if deadline is not None and seconds >= deadline.left():
            raise passed("the rate limit's next request slot")
        self.slept += seconds
        time.sleep(seconds)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return super().__call__(*args, **kwargs)


class Guard:
    """Retries with backoff and a circuit breaker around a rate-limited call."""

    def __init__(
        self,
        func: Callable[..., Any],
        config: GuardConfig | None = None,
        *,
        service: str = "geocoder",
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config or GuardConfig()
        self.service = service
        self.limiter = CountingRateLimiter(func, min_delay_seconds=self.config.min_delay_seconds)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._trial = False  # half-open: one call is trying the service
        self.retries = 0
        self.failures_total = 0
        self.short_circuited = 0

    @property
    def state(self) -> str:
        with self._lock:
            if self._opened_at is None:
                return "closed"
            return "half-open" if self._clock() - self._opened_at >= self.config.reset_after else "open"

    def _before(self) -> bool:
        """Raise while the breaker is open; returns whether this call is the half-open trial."""
        with self._lock:
            if self._opened_at is None:
                return False
            if self._clock() - self._opened_at >= self.config.reset_after and not self._trial:
                self._trial = True
                return True
            self.short_circuited += 1
            raise GeocoderUnavailable(
                f"{self.service} circuit is open after {self._failures} consecutive failures.",
                f"wait {self.config.reset_after:.0f} s or fix the service; resolution resumes by itself.",
            )

    def _end_trial(self) -> None:
        with self._lock:
            self._trial = False

    def _success(self) -> None:
        with self._lock:
            self._failures = 0
            self._opened_at = None
            self._trial = False

    def _failure(self) -> None:
        with self._lock:
            self._trial = False
            self._failures += 1
            self.failures_total += 1
            if self._failures >= self.config.failure_threshold or self._opened_at is not None:
                self._opened_at = self._clock()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        backoff = Backoff(self.config.backoff_seconds, self.config.max_backoff_seconds)
        while True:
            trial = self._before()
            try:
                result = self.limiter(*args, **kwargs)
            except Exception as raw:
                err = translate(raw, self.service)
                if isinstance(err, (GeocoderQueryError, GeocoderDeadline)):
                    if trial:
                        self._end_trial()
                    raise err from raw  # the query or key is wrong, or the caller's time is up: not the service
                self._failure()
                if backoff.attempt >= self.config.max_retries or trial or self.state == "open":
                    raise err from raw
                delay = backoff.next_delay()
                retry_after = getattr(err, "retry_after", None)
                if isinstance(retry_after, (int, float)) and retry_after > 0:
                    delay = min(max(delay, float(retry_after)), self.config.max_backoff_seconds)
                deadline = current()
                if deadline is not None and delay >= deadline.left():
                    raise err from raw  # no time left to retry before the deadline
                log.warning(
                    "%s: %s; retry %d/%d in %.1f s",
                    self.service,
                    err.problem,
                    backoff.attempt,
                    self.config.max_retries,
                    delay,
                )
                self.retries += 1
                self._sleep(delay)
                continue
            self._success()
            return result

    def stats(self) -> dict[str, Any]:
        return {
            "requests": self.limiter.calls,
            "rate_limit_wait_s": round(self.limiter.slept, 3),
            "retries": self.retries,
            "failures": self.failures_total,
            "short_circuited": self.short_circuited,
            "circuit": self.state,
        }


class DeadlineTimeout:
    """The innermost link of the chain: calls ``func`` with its request ``timeout`` shortened to the deadline.

    Without a deadline it calls ``func`` unchanged. Under one, a call with no time left is not made,
    and a request that times out at the deadline because its timeout was shortened raises
    :class:`~geocode.deadline.GeocoderDeadline` (the deadline's doing, not the service's).
    """

    def __init__(self, func: Callable[..., Any], timeout: float | None) -> None:
        self.func = func
        self.timeout = timeout

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        deadline = current()
        if deadline is None:
            return self.func(*args, **kwargs)
        if deadline.expired:
            raise passed("the request was sent")
        own = kwargs.get("timeout", self.timeout)
        timeout = deadline.cap(own)
        try:
            return self.func(*args, **{**kwargs, "timeout": timeout})
        except gexc.GeocoderTimedOut as exc:  # also geopy's reading of a 503 or 504 answer
            if (own is None or timeout < own) and deadline.expired:
                raise passed("the answer came") from exc
            raise
