"""The model in use and its hot reload.

With ``--model REGISTRY/NAME`` the worker follows ``REGISTRY/NAME/LATEST``: at
most every ``check_s`` seconds (a small file read) it compares LATEST with the
version in use; a new version is loaded in a background thread while the old one
keeps serving, and swapped in between two batches. A version that fails to load
(corrupt, partial) is logged and skipped until LATEST changes again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from lmr.model import registry
from worker.extract import ExtractorLike

log = logging.getLogger(__name__)

Loader = Callable[[str], ExtractorLike]


def runtime_loader(runtime: str = "auto", device: str = "cpu", threads: int = 0) -> Loader:
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
        check_s: float = 10.0,
        extractor: ExtractorLike | None = None,
    ) -> None:
        self.ref = ref
        self.loader = loader or runtime_loader()
        self.check_s = check_s
        self.watch = follows_latest(ref) and check_s > 0
        self.current: ExtractorLike = extractor if extractor is not None else self.loader(ref)
        self.reloads = 0
        self.failed_version: str | None = None
        self._last_check = time.monotonic()
        self._loading: threading.Thread | None = None
        self._ready: ExtractorLike | None = None
        self._lock = threading.Lock()
        log.info("model %s loaded from %s%s", self.current.model_id, ref, " (following LATEST)" if self.watch else "")

    def _load(self, version: str) -> None:
        ref = str(Path(self.ref) / version)
        try:
            new = self.loader(ref)
        except Exception as exc:
            log.error("new model version %s could not be loaded, keeping %s: %s", version, self.current.model_id, exc)
            with self._lock:
                self.failed_version = version
            return
        with self._lock:
            self._ready = new

    def maybe_swap(self, *, wait: bool = False) -> bool:
        """Check LATEST (rate-limited) and swap in a loaded new version; True when the model changed."""
        if not self.watch:
            return False
        with self._lock:
            ready, self._ready = self._ready, None
        if ready is not None:
            old = self.current.model_id
            self.current = ready
            self.reloads += 1
            self._loading = None
            log.info("model hot-reloaded: %s -> %s", old, ready.model_id)
            return True
        if self._loading is not None and self._loading.is_alive():
            if wait:
                self._loading.join()
                return self.maybe_swap()
            return False
        now = time.monotonic()
        if now - self._last_check < self.check_s and not wait:
            return False
        self._last_check = now
        latest = registry.read_latest(self.ref)
        if latest is None or latest == self.current.version or latest == self.failed_version:
            return False
        log.info(
            "LATEST of %s is now %s (serving %s); loading it in the background", self.ref, latest, self.current.model_id
        )
        self._loading = threading.Thread(target=self._load, args=(latest,), name="lmr-model-reload", daemon=True)
        self._loading.start()
        if wait:
            self._loading.join()
            return self.maybe_swap()
        return False
