"""The mention type every stage passes along."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Mention:
    """A predicted location mention: exact character offsets ``[start, end)`` into the post."""

    text: str
    start: int
    end: int
    score: float
    label: str = "location"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
