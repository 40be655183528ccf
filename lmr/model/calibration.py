"""The calibration set shipped with a model: a few hundred posts and the exact runtime's spans on them.

``auto`` (:mod:`lmr.model.autotune`) runs each candidate runtime on these posts and keeps only the
runtimes whose spans agree with the exact ones. The set is written at publish time
(``calibration.json`` in the version directory, from training posts, never evaluation ones); for a
model published before, ``lmr-trainer calibrate MODEL POSTS`` writes one into lmr's cache directory.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lmr.errors import DataError

log = logging.getLogger(__name__)

FILE = "calibration.json"
DEFAULT_POSTS = 200
FORMAT = 1


@dataclass(frozen=True)
class Calibration:
    """Posts and the spans the exact runtime (``runtime``) found in them at ``threshold``."""

    texts: list[str]
    spans: list[list[tuple[int, int]]]
    runtime: str = "torch"
    threshold: float = 0.5

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "runtime": self.runtime,
            "threshold": self.threshold,
            "texts": self.texts,
            "spans": [[list(s) for s in ss] for ss in self.spans],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str) -> Calibration:
        fix = "delete it and rewrite it: lmr-trainer calibrate MODEL POSTS."
        try:
            texts = [str(t) for t in d["texts"]]
            spans = [[(int(a), int(b)) for a, b in ss] for ss in d["spans"]]
            threshold = float(d.get("threshold", 0.5))
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"{where} is not a calibration set ({exc}).", fix) from exc
        if len(texts) != len(spans) or d.get("format") != FORMAT:
            raise DataError(f"{where}: texts and spans differ in length, or unknown format.", fix)
        return cls(texts, spans, str(d.get("runtime", "torch")), threshold)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".calibration-", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(self.to_dict(), f, ensure_ascii=False)
        os.replace(tmp, path)


def sample_texts(texts: Sequence[str], n: int = DEFAULT_POSTS, seed: int = 13) -> list[str]:
    """Up to ``n`` distinct non-empty posts, a seeded random sample (the same posts every time)."""
    uniq = sorted({t for t in texts if t.strip()})
    random.Random(seed).shuffle(uniq)
    return uniq[:n]


def build(extractor: Any, texts: Sequence[str], n: int = DEFAULT_POSTS) -> Calibration:
    """The calibration set of ``extractor``'s model: ``n`` of ``texts`` and its exact spans on them.

    ``extractor`` must run an exact runtime (``torch`` or ``fused``); its own threshold is used.
    """
    chosen = sample_texts(texts, n)
    preds = extractor.predict(chosen, batch_size=16)
    spans = [[(m.start, m.end) for m in ms] for ms in preds]
    return Calibration(chosen, spans, extractor.runtime, float(extractor.spec.threshold))


def model_key(model_path: str) -> str:
    """A short identity of a model's weights: the manifest's hash for a published version, else the weights'."""
    p = Path(model_path)
    for name in ("manifest.json", "model.safetensors", "pytorch_model.bin"):
        f = p / name
        if f.is_file():
            st = f.stat()
            return hashlib.sha256(f"{f.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:16]
    return hashlib.sha256(str(p.resolve()).encode()).hexdigest()[:16]


def cache_dir() -> Path:
    """lmr's cache directory: ``$LMR_CACHE_DIR``, else ``$XDG_CACHE_HOME/lmr``, else ``~/.cache/lmr``."""
    env = os.environ.get("LMR_CACHE_DIR")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "lmr"


def cached_path(model_path: str) -> Path:
    """Where ``lmr-trainer calibrate`` puts the calibration set of a model published without one."""
    return cache_dir() / "calibration" / f"{model_key(model_path)}.json"


def load(model_path: str) -> Calibration | None:
    """The model's calibration set (shipped, else from the cache), or None."""
    for f in (Path(model_path) / FILE, cached_path(model_path)):
        if f.is_file():
            try:
                return Calibration.from_dict(json.loads(f.read_text(encoding="utf-8")), str(f))
            except (OSError, json.JSONDecodeError, DataError) as exc:
                log.warning("ignoring unreadable calibration set %s (%s)", f, exc)
    return None
