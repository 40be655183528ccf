"""Creating Kafka clients with retries: a worker started before its brokers waits for them."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from lmr.errors import BrokerError
from worker.retry import Backoff

log = logging.getLogger(__name__)

T = TypeVar("T")


def connect(
    make: Callable[[], T],
    bootstrap: str,
    *,
    backoff: Backoff,
    errors: tuple[type[BaseException], ...] = (Exception,),
) -> T:
    """``make()`` until it succeeds, waiting per ``backoff``; :class:`BrokerError` once ``backoff.stop`` is set."""
    wait = Backoff(backoff.initial_s, backoff.max_s, backoff.stop)
    while True:
        try:
            return make()
        except errors as exc:
            if backoff.stop.is_set():
                raise BrokerError(
                    f"Cannot reach Kafka at {bootstrap}: {exc}.", "check --bootstrap-servers and the broker."
                ) from exc
            log.warning("Kafka at %s unreachable (%s); retrying in %.1fs", bootstrap, exc, wait.delay)
            wait.wait()
