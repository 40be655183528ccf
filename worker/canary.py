"""The canary: known-good posts a working model must read without failing.

It tells a broken model from bad posts (:mod:`worker.pipeline`: when posts fail, the model reads the
canary; if that fails too, the model is broken and the batch is held, not dead-lettered) and vets a hot
reload before it is swapped in (:mod:`worker.reload`). The posts are the model's own calibration set
(``calibration.json``, shipped with every published version: training posts, see
:mod:`lmr.model.calibration`), the longest :data:`CANARY_POSTS` of them, read in batches of the
worker's size, so a model that fails on long posts or full batches fails the canary and is rolled back
instead of dead-lettering every long post as ``model_error``. A model without a calibration set reads
:data:`CANARY_TEXT`.
"""

from __future__ import annotations

import functools
import logging

from lmr.model import calibration
from lmr.words import split_words
from worker.extract import ExtractorLike

log = logging.getLogger(__name__)

CANARY_TEXT = "Flooding reported in Houston, Texas tonight"  # the canary of a model without a calibration set
CANARY_POSTS = 16  # calibration posts the canary reads: the longest ones


@functools.lru_cache(maxsize=8)
def _calibration_texts(model_path: str) -> tuple[str, ...]:
    cal = calibration.load(model_path)
    if cal is None or not cal.texts:
        return ()
    return tuple(sorted(cal.texts, key=lambda t: (-len(t), t))[:CANARY_POSTS])


def canary_texts(extractor: ExtractorLike) -> list[str]:
    """The posts ``extractor`` must read: its calibration set's longest posts, else :data:`CANARY_TEXT`."""
    path = getattr(extractor, "path", None)
    texts = _calibration_texts(str(path)) if isinstance(path, str) and path else ()
    return list(texts) or [CANARY_TEXT]


def read_canary(extractor: ExtractorLike, batch_size: int = 16) -> None:
    """Run ``extractor`` over its canary posts; raises whatever the model raises."""
    texts = canary_texts(extractor)
    extractor.predict_words([split_words(t) for t in texts], texts, batch_size=max(1, batch_size))


def model_works(extractor: ExtractorLike, batch_size: int = 16) -> bool:
    """Whether ``extractor`` reads its canary posts without failing (the failure is logged)."""
    try:
        read_canary(extractor, batch_size)
    except Exception as exc:
        log.warning("model %s fails on its canary posts: %r", extractor.model_id, exc)
        return False
    return True
