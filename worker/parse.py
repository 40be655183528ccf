"""Input records, parsing and validation: raw message -> :class:`Post` or :class:`Rejected`.

Any bytes end as a :class:`Post` or a :class:`Rejected` with a reason; nothing here
raises for a message's content. Parsing is strict JSON (RFC 8259): ``NaN`` and
``Infinity``, numbers that overflow (``1e400``, integers over Python's 4,300-digit
limit) and nesting deeper than :data:`MAX_DEPTH` are rejected, so every event
written back is strict JSON too. Lone UTF-16 surrogates (``"\\ud800"`` escapes,
common where an emoji was cut in half) are valid JSON syntax but not text: each is
replaced by U+FFFD in every string and key, which keeps every character offset.
"""

from __future__ import annotations

import json
import math
import re
import sys
from dataclasses import dataclass, field
from typing import Any

from lmr.posts import ID_FIELDS, TEXT_FIELDS, pick_field
from worker.settings import default

# DLQ reason codes (the ``lmr.error.reason`` header); docs/worker.md explains each.
NOT_UTF8 = "not_utf8"
NOT_JSON = "not_json"
TOO_DEEP = "too_deep"
TOMBSTONE = "tombstone"
NOT_OBJECT = "not_object"
NO_TEXT = "no_text"
EMPTY_TEXT = "empty_text"
TEXT_TOO_LARGE = "text_too_large"
WRONG_TYPE = "wrong_type"
MODEL_ERROR = "model_error"
INTERNAL_ERROR = "internal_error"
EVENT_TOO_LARGE = "event_too_large"  # set by the Kafka sink: the event exceeds the producer's size limit
EVENT_REFUSED = "event_refused"  # set by the Kafka sink: the broker refused the event for its content
UNDECODABLE_RECORD = "undecodable_record"  # the Kafka client could not read the record (see record_batches)
REASONS = (
    NOT_UTF8,
    NOT_JSON,
    TOO_DEEP,
    TOMBSTONE,
    NOT_OBJECT,
    NO_TEXT,
    EMPTY_TEXT,
    TEXT_TOO_LARGE,
    WRONG_TYPE,
    MODEL_ERROR,
    INTERNAL_ERROR,
    EVENT_TOO_LARGE,
    EVENT_REFUSED,
    UNDECODABLE_RECORD,
)

MAX_DEPTH = 64  # nesting levels of arrays and objects in a post (a tweet with entities has under 10)
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")  # how a lone surrogate can enter a str from UTF-8 JSON
_SURROGATE = re.compile("[\ud800-\udfff]")


class _TooDeep(ValueError):
    pass


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON (RFC 8259 has no NaN or Infinity); send null or a string")


def _finite(literal: str) -> float:
    x = float(literal)
    if not math.isfinite(x):
        raise ValueError(f"number {literal[:40]} overflows a 64-bit float")
    return x


def _integer(literal: str) -> int:
    limit = sys.get_int_max_str_digits()
    if limit and len(literal.lstrip("-")) > limit:
        raise ValueError(f"an integer of {len(literal.lstrip('-'))} digits (over {limit}); send it as a string")
    return int(literal)


def _check(obj: Any, fix: bool, depth: int = 1) -> Any:
    """``obj`` with lone surrogates replaced (when ``fix``); :class:`_TooDeep` past :data:`MAX_DEPTH`."""
    if isinstance(obj, str):
        return _SURROGATE.sub("\ufffd", obj) if fix else obj
    if isinstance(obj, dict | list) and depth > MAX_DEPTH:
        raise _TooDeep(f"JSON nested deeper than {MAX_DEPTH} levels")
    if isinstance(obj, dict):
        return {_check(k, fix): _check(v, fix, depth + 1) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_check(v, fix, depth + 1) for v in obj]
    return obj


def decode_json(s: str) -> Any:
    """Strict JSON; raises ``ValueError`` (bad syntax, NaN, overflow) or ``_TooDeep``; never ``RecursionError``."""
    try:
        obj = json.loads(s, parse_constant=_no_constant, parse_float=_finite, parse_int=_integer)
    except RecursionError:
        raise _TooDeep(f"JSON nested deeper than {MAX_DEPTH} levels") from None
    return _check(obj, _SURROGATE_ESCAPE.search(s) is not None)


@dataclass(frozen=True)
class Message:
    """One input record, whatever the transport (Kafka or a file)."""

    value: bytes | None
    topic: str
    partition: int
    offset: int
    key: bytes | None = None
    headers: tuple[tuple[str, bytes | None], ...] = ()  # a header value may be null
    timestamp_ms: int | None = None
    undecodable: str | None = None  # why the Kafka client could not read this record (then a dead letter)
    last_offset: int | None = None  # a record batch that could not be read at all: its last offset

    @property
    def next_offset(self) -> int:
        """The offset to commit once this message is done (past a whole unreadable batch)."""
        return (self.offset if self.last_offset is None else max(self.offset, self.last_offset)) + 1


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
    if msg.undecodable is not None:
        return Rejected(msg, UNDECODABLE_RECORD, msg.undecodable)
    raw = msg.value
    if raw is None:
        return Rejected(msg, TOMBSTONE, "the message has no value (a tombstone)")
    if len(raw) > max(4 * max_text_bytes, max_text_bytes + 65_536):
        return Rejected(msg, TEXT_TOO_LARGE, f"message is {len(raw)} bytes, far over --max-text-bytes {max_text_bytes}")
    try:
        s = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Rejected(msg, NOT_UTF8, f"invalid UTF-8 at byte {exc.start}", exc)
    try:
        obj = decode_json(s)
    except _TooDeep as exc:
        return Rejected(msg, TOO_DEEP, str(exc), exc)
    except json.JSONDecodeError as exc:
        return Rejected(msg, NOT_JSON, f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}", exc)
    except ValueError as exc:  # NaN/Infinity, a float overflow, an integer over 4,300 digits
        return Rejected(msg, NOT_JSON, f"invalid JSON: {exc}", exc)
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
