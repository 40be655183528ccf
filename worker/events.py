"""Output records: enriched events and dead-letter records."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lmr.mentions import Mention
from worker.parse import EVENT_TOO_LARGE, Message, Post, Rejected

SCHEMA_VERSION = 1
SCHEMA_FILE = Path(__file__).parent / "schema" / "enriched-event.v1.json"

H_REASON = "lmr.error.reason"
H_MESSAGE = "lmr.error.message"
H_TOPIC = "lmr.source.topic"
H_PARTITION = "lmr.source.partition"
H_OFFSET = "lmr.source.offset"
H_NULL_HEADERS = "lmr.source.null_headers"
H_NULL_KEY = "lmr.source.null_key"

Headers = tuple[tuple[str, bytes | None], ...]
H_ORIGINAL_BYTES = "lmr.original.bytes"  # set when a dead letter's value was cut to fit: the original size
RECORD_OVERHEAD = 128  # bytes left for Kafka's record and batch framing (about 80) when a value is cut to fit


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


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def build_event(
    post: Post,
    mentions: list[Mention],
    geo: list[dict[str, Any] | None],
    *,
    model_id: str,
    runtime: str | None = None,
    truncated: bool = False,
    chunks: int = 1,
    processed_at: str | None = None,
) -> dict[str, Any]:
    """The enriched event: original fields + ``locations`` + ``lmr`` metadata."""
    m = post.message
    locations = [{**mention.to_dict(), "geo": g} for mention, g in zip(mentions, geo, strict=True)]
    meta: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "model": model_id,
        "processed_at": processed_at or now_iso(),
        "text_field": post.text_field,
        "truncated": truncated,
        "chunks": chunks,
        "source": {"topic": m.topic, "partition": m.partition, "offset": m.offset},
    }
    if runtime:
        meta["runtime"] = runtime
    return {**post.fields, "locations": locations, "lmr": meta}


def event_record(post: Post, event: dict[str, Any]) -> OutRecord:
    """Output key = input key, else the post id (so consumers can de-duplicate); input headers kept."""
    m = post.message
    key = m.key if m.key is not None else (post.id.encode("utf-8") if post.id is not None else None)
    value = json.dumps(event, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")
    return OutRecord(value, key, m.headers, m, m.timestamp_ms)


def dlq_record(rej: Rejected) -> OutRecord:
    """The original record as it was (bytes, key, a null value, null header values), plus the reason and
    the source position in ``lmr.*`` headers."""
    m = rej.message
    err = rej.error[:2000]
    headers = (
        *[(k, v) for k, v in m.headers if not k.startswith("lmr.error.") and not k.startswith("lmr.source.")],
        (H_REASON, rej.reason.encode()),
        (H_MESSAGE, err.encode("utf-8", "replace")),
        (H_TOPIC, m.topic.encode("utf-8")),
        (H_PARTITION, str(m.partition).encode()),
        (H_OFFSET, str(m.offset).encode()),
    )
    return OutRecord(m.value, m.key, headers, m, m.timestamp_ms)


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


def fit_dead_letter(rec: OutRecord, limit: int) -> OutRecord:
    """A dead letter for ``rec`` (refused as too large) that fits in ``limit`` bytes.

    An event becomes an ``event_too_large`` dead letter of its input message; a dead letter keeps
    its reason. Headers and key are kept; the value (the original bytes) is cut to what fits, and
    ``lmr.original.bytes`` then says how long it was. ``limit`` 0 keeps no value bytes at all.
    """
    base = rec
    if not any(k == H_REASON for k, _ in rec.headers):
        error = (
            f"the enriched event is {len(rec.value or b'')} bytes, over the {limit}-byte producer limit "
            "(--max-request-size)"
        )
        base = dlq_record(Rejected(rec.source, EVENT_TOO_LARGE, error))
    value = base.value or b""
    original = next((v for k, v in base.headers if k == H_ORIGINAL_BYTES and v), str(len(value)).encode())
    headers = tuple((k, v) for k, v in base.headers if k != H_ORIGINAL_BYTES)
    used = sum(len(k.encode("utf-8")) + len(v or b"") for k, v in headers) + len(base.key or b"")
    room = limit - RECORD_OVERHEAD - used - len(H_ORIGINAL_BYTES) - len(original)
    if limit > 0 and len(value) <= room:
        return base
    kept = value[: max(0, room)] if limit > 0 else b""
    return replace(base, value=kept, headers=(*headers, (H_ORIGINAL_BYTES, original)))
