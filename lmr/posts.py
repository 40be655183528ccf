"""Which fields of a post hold its text and its id: one list, used by the worker, the readers and evaluation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

TEXT_FIELDS = ("text", "full_text")
DEFAULT_ID_FIELD = "id"  # the field a post's id is read from unless --id-field names another
ID_FIELDS = (DEFAULT_ID_FIELD, "tweet_id", "id_str")


def pick_field(obj: Mapping[str, Any], first: str, fallbacks: tuple[str, ...]) -> tuple[str | None, Any]:
    """The first of ``first`` then ``fallbacks`` present in ``obj``: ``(name, value)``, or ``(None, None)``."""
    for name in (first, *fallbacks):
        if name in obj:
            return name, obj[name]
    return None, None


def post_id(obj: Mapping[str, Any], id_field: str = DEFAULT_ID_FIELD) -> str | None:
    """The post's id as a string (``id_field`` first, then :data:`ID_FIELDS`); ``None`` when it has none."""
    for name in (id_field, *ID_FIELDS):
        v = obj.get(name)
        if isinstance(v, str | int) and not isinstance(v, bool):
            return str(v)
    return None
