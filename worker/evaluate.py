"""Score the worker's output events against gold posts (IDRISI and the other trainer formats)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lmr.errors import DataError
from trainer.data import read_examples
from trainer.metrics import SpanScorer
from worker.parse import ID_FALLBACKS, TEXT_FALLBACKS


class _Pred:
    def __init__(self, start: int, end: int) -> None:
        self.start, self.end = start, end


def _event_id(ev: dict[str, Any], id_field: str) -> str | None:
    for name in (id_field, *ID_FALLBACKS):
        v = ev.get(name)
        if isinstance(v, str | int) and not isinstance(v, bool):
            return str(v)
    return None


def read_events(paths: Sequence[str | Path], id_field: str = "id") -> dict[str, dict[str, Any]]:
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
            pid = _event_id(ev, id_field)
            if pid is None:
                raise DataError(
                    f"{p}:{i}: the event has no post id.", f"give posts an id ({'/'.join((id_field, *ID_FALLBACKS))})."
                )
            out[pid] = ev
    return out


def evaluate(outputs: Sequence[str | Path], gold: Sequence[str | Path], *, id_field: str = "id") -> dict[str, Any]:
    """Exact/overlap P/R/F1 and WER of the events' locations against gold spans, matched by post id."""
    events = read_events(outputs, id_field)
    examples = read_examples(list(gold))
    scorer = SpanScorer()
    missing = 0
    text_mismatch = 0
    for ex in examples:
        ev = events.get(ex.id)
        if ev is None:
            missing += 1
            preds: list[_Pred] = []
        else:
            field = ev.get("lmr", {}).get("text_field") or next((f for f in TEXT_FALLBACKS if f in ev), "text")
            if ev.get(field) != ex.text:
                text_mismatch += 1
            preds = [_Pred(int(loc["start"]), int(loc["end"])) for loc in ev["locations"]]
        scorer.add(ex.text, ex.spans, preds, ex.event)
    res = scorer.result()
    res["missing_posts"] = missing
    res["text_mismatch"] = text_mismatch
    res["events"] = len(events)
    res["models"] = sorted({str(ev.get("lmr", {}).get("model", "")) for ev in events.values()})
    return res
