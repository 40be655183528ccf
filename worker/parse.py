"""Input records, parsing and validation: raw message -> :class:`Post` or :class:`Rejected`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from lmr.posts import ID_FIELDS, TEXT_FIELDS, pick_field
from worker.settings import default

# DLQ reason codes (the ``lmr.error.reason`` header).
NOT_UTF8 = "not_utf8"
NOT_JSON = "not_json"
NOT_OBJECT = "not_object"
NO_TEXT = "no_text"
EMPTY_TEXT = "empty_text"
TEXT_TOO_LARGE = "text_too_large"
WRONG_TYPE = "wrong_type"
MODEL_ERROR = "model_error"
EVENT_TOO_LARGE = "event_too_large"  # set by the Kafka sink: the event exceeds the producer's size limit


@dataclass(frozen=True)
class Message:
    """One input record, whatever the transport (Kafka or a file)."""

    value: bytes | None
    topic: str
    partition: int
    offset: int
    key: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = ()
    timestamp_ms: int | None = None


@dataclass
class Post:
    """A valid input post."""

    message: Message
    fields: dict[str, Any]
    text: str
    id: str | None
    text_field: str


@dataclass
class Rejected:
    """A message that goes to the dead-letter queue."""

    message: Message
    reason: str
    error: str
    exc: BaseException | None = field(default=None, repr=False)


def parse_message(
    msg: Message,
    *,
    text_field: str = default("text_field"),
    id_field: str = default("id_field"),
    max_text_bytes: int = default("max_text_bytes"),
) -> Post | Rejected:
    """Decode and validate one message; never raises for bad input."""
    raw = msg.value
    if raw is None:
        return Rejected(msg, NOT_JSON, "the message has no value (tombstone)")
    if len(raw) > max(4 * max_text_bytes, max_text_bytes + 65_536):
        return Rejected(msg, TEXT_TOO_LARGE, f"message is {len(raw)} bytes, far over --max-text-bytes {max_text_bytes}")
    try:
        s = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Rejected(msg, NOT_UTF8, f"invalid UTF-8 at byte {exc.start}", exc)
    try:
        obj = json.loads(s)
    except json.JSONDecodeError as exc:
        return Rejected(msg, NOT_JSON, f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}", exc)
    if not isinstance(obj, dict):
        return Rejected(msg, NOT_OBJECT, f"expected a JSON object, got {type(obj).__name__}")
    tname, text = pick_field(obj, text_field, TEXT_FIELDS)
    if tname is None:
        keys = ", ".join(sorted(obj)[:10])
        tried = "/".join(dict.fromkeys((text_field, *TEXT_FIELDS)))
        return Rejected(msg, NO_TEXT, f"no text field (tried {tried}); keys: {keys}")
    if not isinstance(text, str):
        return Rejected(msg, WRONG_TYPE, f"field {tname!r} is {type(text).__name__}, expected a string")
    if not text.strip():
        return Rejected(msg, EMPTY_TEXT, f"field {tname!r} is empty or only whitespace")
    size = len(text.encode("utf-8"))
    if size > max_text_bytes:
        return Rejected(msg, TEXT_TOO_LARGE, f"field {tname!r} is {size} bytes, over --max-text-bytes {max_text_bytes}")
    iname, pid = pick_field(obj, id_field, ID_FIELDS)
    if pid is not None and (isinstance(pid, bool) or not isinstance(pid, str | int)):
        return Rejected(msg, WRONG_TYPE, f"field {iname!r} is {type(pid).__name__}, expected a string or integer id")
    return Post(msg, obj, text, None if pid is None else str(pid), tname)
