"""One evaluation path: gold posts against predicted spans, from a model or from a worker's output file.

``evaluate_extractor`` runs a model over gold posts (choosing the threshold when none is given);
``evaluate_events`` reads the enriched events a worker wrote and matches them to gold posts by id.
Both end in :func:`score`, so a model and the worker running it report the same figures.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lmr.errors import DataError
from lmr.posts import DEFAULT_ID_FIELD, ID_FIELDS, TEXT_FIELDS, post_id
from lmr.readers import Example, read_examples
from lmr.scoring import HasSpan, SpanScorer, best_threshold
from lmr.words import split_words

if TYPE_CHECKING:
    from lmr.model.extractor import Extractor

LOW_THRESHOLD = 0.1  # predictions are made once at this threshold, then the best threshold is chosen


@dataclass(frozen=True)
class PredictedSpan:
    """A predicted mention's character offsets (all the scorer needs)."""

    start: int
    end: int


def score(examples: Sequence[Example], predictions: Sequence[Sequence[HasSpan]]) -> dict[str, Any]:
    """Exact/overlap P/R/F1, WER and per-event/per-type figures of ``predictions`` (one list per example)."""
    sc = SpanScorer()
    for ex, preds in zip(examples, predictions, strict=True):
        sc.add(ex.text, ex.spans, list(preds), ex.event or Path(ex.source).name)
    return sc.result()


ScoredPosts = list[tuple[Example, list[HasSpan]]]  # each gold post with its predictions (for reports)


def evaluate_extractor(
    extractor: Extractor,
    examples: list[Example],
    *,
    threshold: float | None = None,
    batch_size: int = 32,
    posts: ScoredPosts | None = None,
    candidates: ScoredPosts | None = None,
    low: float = LOW_THRESHOLD,
) -> tuple[dict[str, Any], float]:
    """Score ``extractor`` on ``examples``; with ``threshold=None`` choose the best one first.

    ``posts``, when given, receives each example with the predictions that were scored; ``candidates`` each
    example with every prediction scoring at least ``low`` (the lower of it and ``threshold``).
    """
    texts = [e.text for e in examples]
    words = [split_words(t) for t in texts]
    low = min(low, threshold) if threshold is not None else low
    preds = extractor.predict_words(words, texts, threshold=low, batch_size=batch_size)
    if threshold is None:
        threshold, _ = best_threshold(texts, [e.spans for e in examples], preds)
    kept: list[list[HasSpan]] = [[m for m in p if m.score >= threshold] for p in preds]
    res = score(examples, kept)
    res["threshold"] = threshold
    if posts is not None:
        posts.extend(zip(examples, kept, strict=True))
    if candidates is not None:
        candidates.extend((e, list[HasSpan](p)) for e, p in zip(examples, preds, strict=True))
    return res, threshold


def read_events(paths: Sequence[str | Path], id_field: str = DEFAULT_ID_FIELD) -> dict[str, dict[str, Any]]:
    """Output events by post id (the last one wins when a post was delivered twice)."""
    out: dict[str, dict[str, Any]] = {}
    for path in paths:
        p = Path(path)
        if not p.is_file():
            raise DataError(f"Output file {p} does not exist.", "pass the --sink file of `lmr-worker run`.")
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                ev = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{p}:{i}: not JSON: {exc.msg}.", "pass a JSONL file of enriched events.") from exc
            if not isinstance(ev, dict) or not isinstance(ev.get("locations"), list):
                raise DataError(
                    f"{p}:{i}: not an enriched event (no 'locations' list).", "pass worker output, not input posts."
                )
            pid = post_id(ev, id_field)
            if pid is None:
                raise DataError(
                    f"{p}:{i}: the event has no post id.",
                    f"give posts an id ({'/'.join(dict.fromkeys((id_field, *ID_FIELDS)))}).",
                )
            out[pid] = ev
    return out


def _event_text(ev: dict[str, Any]) -> Any:
    field = ev.get("lmr", {}).get("text_field") or next((f for f in TEXT_FIELDS if f in ev), "text")
    return ev.get(field)


def evaluate_events(
    outputs: Sequence[str | Path],
    gold: Sequence[str | Path],
    *,
    id_field: str = DEFAULT_ID_FIELD,
    posts: ScoredPosts | None = None,
) -> dict[str, Any]:
    """Score a worker's output events against gold posts, matched by post id (a missing post predicts nothing).

    ``posts``, when given, receives each gold post with the predictions read from the events.
    """
    events = read_events(outputs, id_field)
    examples = read_examples(list(gold))
    preds: list[list[HasSpan]] = []
    missing = text_mismatch = 0
    for ex in examples:
        ev = events.get(ex.id)
        if ev is None:
            missing += 1
            preds.append([])
            continue
        text_mismatch += _event_text(ev) != ex.text
        preds.append([PredictedSpan(int(loc["start"]), int(loc["end"])) for loc in ev["locations"]])
    res = score(examples, preds)
    res["missing_posts"] = missing
    res["text_mismatch"] = text_mismatch
    res["events"] = len(events)
    res["models"] = sorted({str(ev.get("lmr", {}).get("model", "")) for ev in events.values()})
    if posts is not None:
        posts.extend(zip(examples, preds, strict=True))
    return res
