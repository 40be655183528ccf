"""Training data: GLiNER records from labelled examples, alignment reports, train/eval splits.

The readers themselves (IDRISI, GLiNER JSON, CoNLL) live in :mod:`lmr.readers`: evaluation uses them too.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lmr.errors import DataError
from lmr.readers import Example, expand_paths
from lmr.words import Word, char_to_word_bounds, split_words


@dataclass
class AlignmentReport:
    """Spans whose character offsets do not fall on word boundaries."""

    total: int = 0
    unaligned: list[tuple[str, str, int, int]] = field(default_factory=list)  # (post id, span text, start, end)

    @property
    def count(self) -> int:
        return len(self.unaligned)

    def summary(self, limit: int = 5) -> str:
        head = "; ".join(f"{pid}: {t!r} [{s}:{e}]" for pid, t, s, e in self.unaligned[:limit])
        return f"{self.count} of {self.total} spans do not align with word boundaries" + (
            f" (e.g. {head})" if head else ""
        )


def files_digest(paths: Sequence[str | Path]) -> list[dict[str, Any]]:
    """Name, size and sha256 of each data file, for the model card."""
    out = []
    for f in expand_paths(paths):
        h = hashlib.sha256(f.read_bytes()).hexdigest()
        out.append({"path": str(f), "bytes": f.stat().st_size, "sha256": h})
    return out


def to_gliner(
    example: Example, words: list[Word] | None = None, report: AlignmentReport | None = None
) -> dict[str, Any]:
    """Convert to GLiNER's training record (word tokens, inclusive word spans, ``ner_labels``)."""
    words = words if words is not None else split_words(example.text)
    starts, ends = char_to_word_bounds(words)
    ner = []
    for sp in example.spans:
        if report is not None:
            report.total += 1
        ws, we = starts.get(sp.start), ends.get(sp.end)
        if ws is None or we is None or we < ws:
            if report is not None:
                report.unaligned.append((example.id, example.text[sp.start : sp.end], sp.start, sp.end))
            continue
        ner.append([ws, we, sp.label])
    return {"tokenized_text": [w.text for w in words], "ner": ner}


def split_train_eval(
    examples: list[Example], eval_fraction: float, seed: int, eval_events: Sequence[str] = ()
) -> tuple[list[Example], list[Example]]:
    """Hold out whole events (``eval_events``) or a seeded random fraction."""
    if eval_events:
        wanted = set(eval_events)
        known = {e.event for e in examples}
        missing = wanted - known
        if missing:
            raise DataError(
                f"--eval-events names events not in the data: {', '.join(sorted(missing))}.",
                f"choose from: {', '.join(sorted(known))}.",
            )
        return [e for e in examples if e.event not in wanted], [e for e in examples if e.event in wanted]
    if not 0 < eval_fraction < 1:
        return examples, []
    idx = list(range(len(examples)))
    random.Random(seed).shuffle(idx)
    k = max(1, round(len(examples) * eval_fraction))
    held = set(idx[:k])
    return [e for i, e in enumerate(examples) if i not in held], [e for i, e in enumerate(examples) if i in held]
