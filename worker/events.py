"""Output records: enriched events and dead-letter records."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lmr.language import script_of
from lmr.mentions import Mention
from worker.parse import EVENT_TOO_LARGE, Message, Post, Rejected
from worker.resolve import Geo, location

SCHEMA_VERSION = 1
SCHEMA_FILE = Path(__file__).parent / "schema" / "enriched-event.v1.json"

H_REASON = "lmr.error.reason"
H_MESSAGE = "lmr.error.message"
H_TOPIC = "lmr.source.topic"
H_PARTITION = "lmr.source.partition"
H_OFFSET = "lmr.source.offset"
H_NULL_HEADERS = "lmr.source.null_headers"
H_NULL_KEY = "lmr.source.null_key"
H_LAST_OFFSET = "lmr.source.last_offset"  # a record batch that could not be read at all: its last offset
H_ORIGINAL_BYTES = "lmr.original.bytes"  # set when a dead letter's value was cut to fit: the original size
H_DROPPED = "lmr.dropped"  # set when a dead letter's key or input headers were dropped to fit: what they were

Headers = tuple[tuple[str, bytes | None], ...]
LMR = "lmr."  # lmr's own header namespace
INPUT = "input."  # an input header under lmr's namespace is renamed: lmr.x -> input.lmr.x
BATCH_HEADER = 61  # record format v2: the batch header before the records
RECORD_FRAMING = 21  # a record's length, attributes, timestamp and offset deltas at their widest (5+1+10+5)


def load_schema() -> dict[str, Any]:
    """The published JSON schema of enriched events."""
    data: dict[str, Any] = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    return data


@dataclass(frozen=True)
class OutRecord:
    """A record to produce (to the output topic or the DLQ)."""

    value: bytes | None  # None only for the dead letter of a tombstone
    key: bytes | None
    headers: Headers
    source: Message
    timestamp_ms: int | None = None
    reason: str | None = None  # a dead letter's reason (one of worker.parse.REASONS); None for an event


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def build_event(
    post: Post,
    mentions: list[Mention],
    geo: list[Geo],
    *,
    model_id: str,
    runtime: str | None = None,
    truncated: bool = False,
    chunks: int = 1,
    processed_at: str | None = None,
) -> dict[str, Any]:
    """The enriched event: original fields + ``locations`` + ``lmr`` metadata.

    ``lmr.script`` is the script most of the post's letters are in (:func:`lmr.language.script_of`: ``arabic``,
    ``latin``, ``other`` or ``none``), which for IDRISI's two languages is the post's language.
    """
    m = post.message
    locations = [location(mention, g) for mention, g in zip(mentions, geo, strict=True)]
    meta: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "model": model_id,
        "processed_at": processed_at or now_iso(),
        "text_field": post.text_field,
        "truncated": truncated,
        "chunks": chunks,
        "script": script_of(post.text),
        "source": {"topic": m.topic, "partition": m.partition, "offset": m.offset},
    }
    if runtime:
        meta["runtime"] = runtime
    return {**post.fields, "locations": locations, "lmr": meta}


def input_headers(headers: Headers) -> Headers:
    """The input's headers as lmr writes them out: ``lmr.*`` is lmr's own namespace, so an input header
    under it is renamed ``input.lmr.*`` (kept, in place, never read by lmr); the rest are unchanged."""
    return tuple((INPUT + k if k.startswith(LMR) else k, v) for k, v in headers)


def event_record(post: Post, event: dict[str, Any]) -> OutRecord:
    """Output key = input key, else the post id (so consumers can de-duplicate); input headers kept."""
    m = post.message
    key = m.key if m.key is not None else (post.id.encode("utf-8") if post.id is not None else None)
    value = json.dumps(event, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")
    return OutRecord(value, key, input_headers(m.headers), m, m.timestamp_ms)


def dlq_record(rej: Rejected) -> OutRecord:
    """The original record as it was (bytes, key, a null value, null header values), plus the reason and
    the source position in ``lmr.*`` headers (from the worker, never from the input's headers)."""
    m = rej.message
    err = rej.error[:2000]
    last = () if m.last_offset is None else ((H_LAST_OFFSET, str(m.last_offset).encode()),)
    headers = (
        *input_headers(m.headers),
        (H_REASON, rej.reason.encode()),
        (H_MESSAGE, err.encode("utf-8", "replace")),
        (H_TOPIC, m.topic.encode("utf-8")),
        (H_PARTITION, str(m.partition).encode()),
        (H_OFFSET, str(m.offset).encode()),
        *last,
    )
    return OutRecord(m.value, m.key, headers, m, m.timestamp_ms, rej.reason)


def kafka_fields(r: OutRecord) -> tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]:
    """``(value, key, headers)`` that kafka-python can produce for ``r``.

    kafka-python 3 refuses null header values and a record with neither key nor value,
    both valid in Kafka: such a null is written as empty bytes and named in a header,
    ``lmr.source.null_headers`` (comma-separated positions in the headers) or
    ``lmr.source.null_key: 1``, so the original record can be rebuilt exactly.
    """
    nulls = [str(i) for i, (_, v) in enumerate(r.headers) if v is None]
    headers = [(k, b"" if v is None else v) for k, v in r.headers]
    if nulls:
        headers.append((H_NULL_HEADERS, ",".join(nulls).encode()))
    key = r.key
    if key is None and r.value is None:
        key = b""
        headers.append((H_NULL_KEY, b"1"))
    return r.value, key, headers


def _varint_size(n: int) -> int:
    """Bytes of ``n`` as a zigzag varint (Kafka's record fields)."""
    z = (n << 1) ^ (n >> 63)
    size = 1
    while z > 0x7F:
        z >>= 7
        size += 1
    return size


def _field_size(b: bytes | None) -> int:
    return 1 if b is None else _varint_size(len(b)) + len(b)


def record_size(value: bytes | None, key: bytes | None, headers: list[tuple[str, bytes]]) -> int:
    """Bytes the producer counts against ``--max-request-size`` for one record (record format v2, a batch of
    one): the batch header, the record's framing at its widest, then the key, the value and every header's
    key and value, each with its varint length prefix (kafka-python's own estimate, computed exactly)."""
    size = BATCH_HEADER + RECORD_FRAMING + _field_size(key) + _field_size(value) + _varint_size(len(headers))
    for k, v in headers:
        size += _field_size(k.encode("utf-8")) + _field_size(v)
    return size


def produced_size(r: OutRecord) -> int:
    """:func:`record_size` of ``r`` as the sink produces it (:func:`kafka_fields`)."""
    return record_size(*kafka_fields(r))


def _cut_to_fit(r: OutRecord, value: bytes | None, original: bytes, limit: int) -> OutRecord | None:
    """``r`` with ``value`` whole, or cut (then marked ``lmr.original.bytes``) to what fits in ``limit``
    bytes as produced; None when it does not fit even with an empty value."""
    whole = replace(r, value=value)
    if produced_size(whole) <= limit:
        return whole
    if value is None:
        return None
    marked = replace(r, value=b"", headers=(*r.headers, (H_ORIGINAL_BYTES, original)))
    empty = produced_size(marked)
    if empty > limit:
        return None
    n = min(len(value), limit - empty + 1)  # + 1: the empty value's length prefix is counted in `empty`
    while n > 0 and empty - 1 + _varint_size(n) + n > limit:
        n -= 1
    return replace(marked, value=value[:n])


def fit_dead_letter(rec: OutRecord, limit: int) -> OutRecord:
    """A dead letter for ``rec`` (refused as too large) that fits in ``limit`` bytes as produced.

    An event becomes an ``event_too_large`` dead letter of its input message; a dead letter keeps
    its reason. What does not fit goes, in this order: the value is cut (``lmr.original.bytes``
    keeps its size); then the input headers, then the key are dropped, described in ``lmr.dropped``
    (``headers=COUNT/BYTES``, ``key=BYTES``). lmr's own headers always stay. ``limit`` 0 (the
    broker refused a fitted dead letter: its limit is lower than the producer's) drops all three.
    The result may still exceed a limit below the size of lmr's own headers (about 300 bytes).
    """
    base = rec
    if rec.reason is None:
        error = (
            f"the enriched event is {len(rec.value or b'')} bytes, over the {limit}-byte producer limit "
            "(--max-request-size)"
        )
        base = dlq_record(Rejected(rec.source, EVENT_TOO_LARGE, error))
    if limit > 0 and produced_size(base) <= limit:
        return base
    value = base.value
    original = next((v for k, v in base.headers if k == H_ORIGINAL_BYTES and v), str(len(value or b"")).encode())
    own = tuple((k, v) for k, v in base.headers if k.startswith(LMR) and k not in (H_ORIGINAL_BYTES, H_DROPPED))
    others = tuple((k, v) for k, v in base.headers if not k.startswith(LMR))
    no_headers = [f"headers={len(others)}/{sum(len(k.encode()) + len(v or b'') for k, v in others)}"] if others else []
    no_key = [f"key={len(base.key)}"] if base.key is not None else []
    steps = [(base.key, others, []), (base.key, (), no_headers), (None, (), no_headers + no_key)]
    smallest = base
    for key, kept, dropped in steps if limit > 0 else steps[-1:]:
        described = ((H_DROPPED, ",".join(dropped).encode()),) if dropped else ()
        smallest = replace(base, key=key, headers=(*kept, *own, *described))
        if (fitted := _cut_to_fit(smallest, value, original, limit)) is not None:
            return fitted
    if value is None:
        return smallest
    return replace(smallest, value=b"", headers=(*smallest.headers, (H_ORIGINAL_BYTES, original)))
