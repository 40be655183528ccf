"""Creating Kafka clients with retries: a worker started before its brokers waits for them.

A client's constructor blocks while it bootstraps (kafka-python waits up to 30 s for a broker), so each
attempt runs on a helper thread and a stop (SIGTERM) ends the wait at once: the worker then stops
cleanly, having consumed nothing. A client that an abandoned attempt still creates is closed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from lmr.backoff import Backoff
from lmr.errors import BrokerError

log = logging.getLogger(__name__)

T = TypeVar("T")
STOP_CHECK_S = 0.1  # how often a blocked attempt checks whether the worker is stopping


class ConnectStopped(BrokerError):
    """The worker was told to stop before its Kafka client could connect: nothing was consumed."""


def _attempt(make: Callable[[], T], stop: threading.Event) -> T:
    """``make()`` on a helper thread; :class:`ConnectStopped` as soon as ``stop`` is set."""
    done: list[tuple[bool, Any]] = []
    abandoned = threading.Event()
    lock = threading.Lock()

    def target() -> None:
        try:
            result: tuple[bool, Any] = (True, make())
        except BaseException as exc:  # re-raised on the caller's thread
            result = (False, exc)
        with lock:
            if not abandoned.is_set():
                done.append(result)
                return
        close = getattr(result[1], "close", None) if result[0] else None
        if close is not None:  # nobody waits for this client any more
            close()

    t = threading.Thread(target=target, name="lmr-connect", daemon=True)
    t.start()
    while t.is_alive() and not stop.is_set():
        t.join(STOP_CHECK_S)
    with lock:
        if not done:
            abandoned.set()
            raise ConnectStopped("stopped while connecting to Kafka.", None)
    t.join()  # it has its answer: let it end here, not during interpreter exit
    ok, value = done[0]
    if not ok:
        raise value
    return value


def connect(
    make: Callable[[], T],
    bootstrap: str,
    *,
    backoff: Backoff,
    errors: tuple[type[BaseException], ...] = (Exception,),
) -> T:
    """``make()`` until it succeeds, waiting per ``backoff``; :class:`ConnectStopped` once ``backoff.stop`` is set."""
    wait = Backoff(backoff.initial_s, backoff.max_s, backoff.stop)
    while True:
        try:
            return _attempt(make, backoff.stop)
        except ConnectStopped:
            raise
        except errors as exc:
            if backoff.stop.is_set():
                raise ConnectStopped(
                    f"Cannot reach Kafka at {bootstrap}: {exc}.", "check --bootstrap-servers and the broker."
                ) from exc
            log.warning("Kafka at %s unreachable (%s); retrying in %.1fs", bootstrap, exc, wait.delay)
            wait.wait()
