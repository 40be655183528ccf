"""The model in use, its hot reload and its rollback.

With ``--model REGISTRY/NAME`` the worker follows ``REGISTRY/NAME/LATEST``: at
most every ``check_s`` seconds (a small file read) it compares LATEST with the
version in use; a new version is loaded (and verified file by file, see
:mod:`lmr.model.registry`) in a background thread while the old one keeps
serving, and swapped in between two batches.

Nothing here stops the worker: an unreadable LATEST (not UTF-8, a path instead of
a version, a permission error, a stale network mount) or a version that fails to
load (partial copy, checksum, unlisted file) is logged, the current model keeps
serving. LATEST is read again at the next check; a version that failed is tried
again with exponential backoff (from ``check_s`` up to ``RETRY_MAX_CHECKS``
checks), so a partial copy that becomes complete is picked up. LATEST is read on
a helper thread: a read that does not return within ``READ_TIMEOUT_S`` (a hung
network mount) is logged and the batch loop goes on; no new read starts while it
hangs. After a reload the previous model is kept for ``ROLLBACK_WINDOW_S``:
within it, :meth:`ModelManager.rollback` swaps it back when the new version
fails on posts and on its canary posts (:mod:`worker.canary`: the longest posts
of its calibration set; see :mod:`worker.pipeline`), and that version is
retried later with the same backoff. After it the previous model is released,
and a later failure is held and retried like any other (it is no longer blamed
on the reload).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from lmr.backoff import Backoff
from lmr.errors import LmrError
from lmr.model import registry
from worker.extract import ExtractorLike
from worker.settings import default

log = logging.getLogger(__name__)

Loader = Callable[[str], ExtractorLike]
RETRY_MAX_CHECKS = 30  # a failing version or LATEST is retried at least every 30 checks (5 min at 10 s)
ROLLBACK_WINDOW_S = 600.0  # after a reload, the previous model is kept this long for a rollback, then released
READ_TIMEOUT_S = 5.0  # longest wait for LATEST (a hung network mount); the read goes on in the background


def runtime_loader(runtime: str, device: str, threads: int) -> Loader:
    """A loader that loads every version (hot reloads included) with the same inference runtime."""
    from lmr.model.extractor import load_extractor

    def load(ref: str) -> ExtractorLike:
        return load_extractor(ref, runtime=runtime, map_location=device, threads=threads)

    return load


def follows_latest(ref: str) -> bool:
    """Whether ``ref`` is ``REGISTRY/NAME`` (a directory with LATEST), not a fixed version."""
    p = Path(ref)
    return p.is_dir() and not (p / registry.MANIFEST).is_file() and (p / registry.LATEST).is_file()


class ModelManager:
    """Holds the current extractor; ``maybe_swap()`` between batches picks up a new LATEST."""

    def __init__(
        self,
        ref: str,
        *,
        loader: Loader | None = None,
        check_s: float = default("reload_check_s"),
        extractor: ExtractorLike | None = None,
        rollback_window_s: float = ROLLBACK_WINDOW_S,
        read_timeout_s: float = READ_TIMEOUT_S,
    ) -> None:
        self.ref = ref
        self.rollback_window_s, self.read_timeout_s = rollback_window_s, read_timeout_s
        self.loader = loader or runtime_loader(default("runtime"), default("device"), default("threads"))
        self.check_s = check_s
        self.watch = follows_latest(ref) and check_s > 0
        self.current: ExtractorLike = extractor if extractor is not None else self.loader(ref)
        self.previous: ExtractorLike | None = None
        self._previous_until = 0.0  # when the previous model is released
        self._reader: threading.Thread | None = None  # the last LATEST read (may hang on a dead mount)
        self.reloads = 0
        self.rollbacks = 0
        self.failed_version: str | None = None  # the last version that failed to load or to serve
        self.last_error: str | None = None
        self._retry = Backoff(max(check_s, 0.01), max(check_s, 0.01) * RETRY_MAX_CHECKS)
        self._next_check = time.monotonic() + check_s
        self._retry_at = 0.0  # when failed_version may be tried again
        self._loading: threading.Thread | None = None
        self._ready: ExtractorLike | None = None
        self._lock = threading.Lock()
        log.info("model %s loaded from %s%s", self.current.model_id, ref, " (following LATEST)" if self.watch else "")

    def _failed(self, version: str | None, error: str) -> None:
        """Keep serving; try again after the next backoff delay."""
        delay = self._retry.next_delay()
        with self._lock:
            self.failed_version, self.last_error = version, error
            self._retry_at = time.monotonic() + delay
        log.error(
            "model reload from %s failed (%s); keeping %s, retrying in %.0fs",
            self.ref,
            error,
            self.current.model_id,
            delay,
        )

    def _load(self, version: str) -> None:
        try:
            new = self.loader(str(Path(self.ref) / version))
        except Exception as exc:  # any failure of a new version leaves the current one serving
            self._failed(version, f"version {version} could not be loaded: {exc}")
            return
        with self._lock:
            self._ready = new

    def _release_previous(self, now: float) -> None:
        """Past the rollback window, the previous model is released (and a failure no longer rolls back)."""
        if self.previous is not None and now >= self._previous_until:
            log.info(
                "releasing the previous model %s: %s has served for %.0fs (the rollback window)",
                self.previous.model_id,
                self.current.model_id,
                self.rollback_window_s,
            )
            self.previous = None

    def rollback(self, reason: str) -> bool:
        """Swap the previous model back in after the current one failed; False if there is none (no reload
        within the rollback window)."""
        self._release_previous(time.monotonic())
        if self.previous is None:
            return False
        bad, self.current, self.previous = self.current, self.previous, None
        self.rollbacks += 1
        self._failed(bad.version, f"version {bad.version} failed while serving ({reason}); rolled back")
        log.warning("model rolled back: %s -> %s", bad.model_id, self.current.model_id)
        return True

    def _swap_ready(self) -> bool:
        with self._lock:
            ready, self._ready = self._ready, None
        if ready is None:
            return False
        old = self.current
        self.current, self.previous = ready, old
        self._previous_until = time.monotonic() + self.rollback_window_s
        self.reloads += 1
        self._loading = None
        with self._lock:
            self.failed_version = self.last_error = None
        log.info("model hot-reloaded: %s -> %s", old.model_id, ready.model_id)
        return True

    def close(self, timeout_s: float) -> None:
        """Wait up to ``timeout_s`` for a reload still loading in the background (its result is dropped).

        A load thread that ends after the worker stopped would free what it holds (this manager, its
        models) while the interpreter exits, which can abort the process; this waits for it instead.
        """
        loading = self._loading
        if loading is not None and loading.is_alive():
            log.info("waiting up to %.0fs for the model reload in progress to end", timeout_s)
            loading.join(timeout_s)
            if loading.is_alive():
                log.warning("the model reload in progress did not end within %.0fs; exiting anyway", timeout_s)

    def _read_latest(self) -> str | None:
        """``registry.read_latest`` on a helper thread, waiting at most ``read_timeout_s`` (TimeoutError)."""
        if self._reader is not None and self._reader.is_alive():
            raise TimeoutError(f"the previous read of {registry.LATEST} has not returned yet (hung mount?)")
        ref = self.ref  # the thread holds no reference to this manager
        box: list[str | BaseException | None] = []

        def read() -> None:
            try:
                box.append(registry.read_latest(ref))
            except BaseException as exc:  # handed to the caller below
                box.append(exc)

        self._reader = threading.Thread(target=read, name="lmr-read-latest", daemon=True)
        self._reader.start()
        self._reader.join(self.read_timeout_s)
        if not box:
            raise TimeoutError(f"reading {registry.LATEST} took over {self.read_timeout_s:.0f}s (hung mount?)")
        if isinstance(box[0], BaseException):
            raise box[0]
        return box[0]

    def maybe_swap(self, *, wait: bool = False) -> bool:
        """Check LATEST (rate-limited) and swap in a loaded new version; True when the model changed."""
        if not self.watch:
            return False
        self._release_previous(time.monotonic())
        if self._swap_ready():
            return True
        if self._loading is not None and self._loading.is_alive():
            if wait:
                self._loading.join()
                return self._swap_ready()
            return False
        now = time.monotonic()
        if now < self._next_check and not wait:
            return False
        self._next_check = now + self.check_s
        try:
            latest = self._read_latest()
        except (LmrError, OSError) as exc:
            log.error("cannot read %s/%s (%s); keeping %s", self.ref, registry.LATEST, exc, self.current.model_id)
            self.last_error = str(exc)
            return False
        if latest is None or latest == self.current.version:
            return False
        if latest == self.failed_version and now < self._retry_at:
            return False
        if latest != self.failed_version:
            self._retry.reset()  # a new version: no backoff inherited from an older failure
        log.info(
            "LATEST of %s is now %s (serving %s); loading it in the background", self.ref, latest, self.current.model_id
        )
        self._loading = threading.Thread(target=self._load, args=(latest,), name="lmr-model-reload", daemon=True)
        self._loading.start()
        if wait:
            self._loading.join()
            return self._swap_ready()
        return False
