"""Creating Kafka clients with retries: a worker started before its brokers waits for them."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from lmr.errors import BrokerError

log = logging.getLogger(__name__)

T = TypeVar("T")


def connect(
    make: Callable[[], T],
    bootstrap: str,
    *,
    should_stop: Callable[[], bool] = lambda: False,
    backoff_s: float = 0.5,
    backoff_max_s: float = 30.0,
    errors: tuple[type[BaseException], ...] = (Exception,),
) -> T:
    """``make()`` until it succeeds, with exponential backoff; :class:`BrokerError` once stopping."""
    delay = backoff_s
    while True:
        try:
            return make()
        except errors as exc:
            if should_stop():
                raise BrokerError(
                    f"Cannot reach Kafka at {bootstrap}: {exc}.", "check --bootstrap-servers and the broker."
                ) from exc
            log.warning("Kafka at %s unreachable (%s); retrying in %.1fs", bootstrap, exc, delay)
            time.sleep(delay)
            delay = min(backoff_max_s, delay * 2)
