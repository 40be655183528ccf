"""Stopping the worker within ``--shutdown-timeout-s``: the drain clock, the signal watcher and the watchdog.

:class:`Shutdown` is the stop flag with its clock: once stopped, the drain (finish the batch in
hand, deliver, commit) may use ``1 - CLOSE_SHARE`` of the timeout and closing the clients the rest.
:class:`SignalWatcher` turns SIGTERM/SIGINT into :meth:`Shutdown.stop` as soon as the signal
arrives, whatever the main thread is doing, and starts the watchdog that ends the process at
the timeout in every state (uncommitted work is redone); a second signal exits at once.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType, TracebackType

log = logging.getLogger(__name__)

EXIT_UNSENT = 3  # stopped while a batch was not acknowledged or committed; it will be redone
EXIT_SECOND_SIGNAL = 130  # a second signal: exit at once, uncommitted
CLOSE_SHARE = 0.2  # share of --shutdown-timeout-s kept for closing the clients after the drain
JOIN_S = 5.0  # longest wait for a thread of the worker's own (signal watcher) to end once told to


class Shutdown:
    """The stop flag (thread-safe) and the drain clock it starts."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._stop = threading.Event()
        self._stop_at: float | None = None

    def stop(self) -> None:
        """Ask the worker to drain and stop (thread-safe)."""
        if not self._stop.is_set():
            self._stop_at = time.monotonic()
            self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    @property
    def event(self) -> threading.Event:
        """The flag itself, for waits that end when the worker stops (backoff sleeps)."""
        return self._stop

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True if the worker is stopping."""
        return self._stop.wait(seconds)

    def start_drain(self) -> None:
        """The loop ended without a stop (limits, end of input): the drain clock starts now."""
        if self._stop_at is None:
            self._stop_at = time.monotonic()

    def drain_left(self) -> float | None:
        """Seconds left for the drain (None when not stopping); the rest of the timeout is for closing."""
        if self._stop_at is None:
            return None
        budget = self.timeout_s * (1 - CLOSE_SHARE)
        return self._stop_at + budget - time.monotonic()

    def give_up(self) -> bool:
        """Whether a stopping worker has used its drain time: what is not delivered and committed is redone."""
        left = self.drain_left()
        return left is not None and left <= 0

    def close_left(self) -> float:
        """Seconds for closing the clients: the timeout's close share, or what the clock leaves of it."""
        if self._stop_at is None:
            return self.timeout_s * CLOSE_SHARE
        return max(0.5, self._stop_at + self.timeout_s - time.monotonic() - 0.5)


class SignalWatcher:
    """``with SignalWatcher(shutdown):`` SIGTERM/SIGINT stop the worker (installed only on the main thread).

    Python's C-level handler writes the signal number to a wakeup pipe at once, even while the main
    thread is inside a long call; a thread of ours reads it, so the shutdown clock starts when the
    signal arrives. The first signal calls :meth:`Shutdown.stop` and starts the watchdog; a second one
    exits at once.
    """

    def __init__(self, shutdown: Shutdown) -> None:
        self.shutdown = shutdown
        self.count = 0
        self._old: dict[int, Callable[[int, FrameType | None], object] | int | None] = {}
        self._old_fd = -1
        self._pipe = (-1, -1)
        self._installed = False
        self._thread: threading.Thread | None = None

    @property
    def signalled(self) -> bool:
        return self.count > 0

    def __enter__(self) -> SignalWatcher:
        if threading.current_thread() is not threading.main_thread():
            return self
        self._installed = True
        self._pipe = os.pipe()
        os.set_blocking(self._pipe[1], False)
        self._old_fd = signal.set_wakeup_fd(self._pipe[1])
        self._thread = threading.Thread(target=self._watch, args=(self._pipe[0],), name="lmr-signals", daemon=True)
        self._thread.start()
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._old[sig] = signal.signal(sig, lambda _signum, _frame: None)  # handled by _watch
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for signum, h in self._old.items():
            signal.signal(signum, h)
        self._old = {}
        if self._installed:
            signal.set_wakeup_fd(self._old_fd)
            os.close(self._pipe[1])  # the watcher reads EOF and ends
            self._installed = False
        if self._thread is not None:
            # Wait for it: a thread ending after run() returned drops its reference to the worker (through
            # the shutdown it stops) and may free the model's tensors while the interpreter exits, which
            # aborts the process ("terminate called without an active exception", rc 134).
            self._thread.join(JOIN_S)
            self._thread = None

    def _watch(self, fd: int) -> None:
        while data := os.read(fd, 64):
            for signum in data:
                if signum in (signal.SIGTERM, signal.SIGINT):
                    self._on_signal(signum)
        os.close(fd)

    def _on_signal(self, signum: int) -> None:
        """Runs on the signal-watching thread as soon as a signal arrives, whatever the main thread is doing."""
        self.count += 1
        if self.count > 1:
            log.error("second signal %s: exiting now; uncommitted work will be redone by the next worker", signum)
            os._exit(EXIT_SECOND_SIGNAL)
        log.info(
            "signal %s: draining (finish the batch in hand, flush, commit, leave the group; at most %.0fs)",
            signal.Signals(signum).name,
            self.shutdown.timeout_s,
        )
        self.shutdown.stop()
        watchdog = threading.Timer(self.shutdown.timeout_s, _overdue)
        watchdog.daemon = True
        watchdog.start()


def _overdue() -> None:
    """The last resort of the shutdown bound: whatever blocks, the process ends (uncommitted work is redone)."""
    os.write(2, b"lmr-worker: shutdown reached --shutdown-timeout-s; exiting now, uncommitted work is redone\n")
    os._exit(EXIT_UNSENT)
