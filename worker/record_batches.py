"""Fetched record batches kafka-python cannot read: each record ends in the worker, never in a crash loop.

kafka-python (3.0.12) reads a fetched batch lazily inside ``consumer.poll``. A header
key that is not UTF-8 (Java, librdkafka, sarama and franz-go producers can write one),
a codec it lacks, a CRC mismatch, a corrupt compressed payload or a malformed record
raises out of ``poll``, and the failed iterator is spent: the next ``poll`` of that
partition spins forever. :func:`guard_fetches` wraps the record iterator of every
fetched partition; when kafka-python fails, the rest of the failing batch is read
here (:func:`rescue`, record format v2 as the Kafka protocol defines it):

- records that read well come back as kafka-python would have returned them;
- a record with a header key that is not UTF-8 comes back with ``error`` set, its key,
  value and headers kept (the key's bytes written with backslash escapes);
- a batch that cannot be read at all (CRC, codec, malformed framing) comes back as one
  record with ``error`` set spanning its offsets (``offset``..``last_offset``), the
  batch's raw bytes as its value.

The partition's fetch position then moves past the batch, as after any batch, so the
worker turns each ``error`` into an ``undecodable_record`` dead letter and goes on.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

LOG_OVERHEAD = 12  # base offset (int64) + batch length (int32) before every batch
MAGIC_AT = 16  # base offset, batch length, partition leader epoch
BATCH_HEADER = 61  # the record format v2 batch header; the records (maybe compressed) follow
LOG_APPEND_TIME = 1


@dataclass(frozen=True)
class FetchedRecord:
    """A record read here; ``error`` says why kafka-python could not read it (None: it reads well)."""

    topic: str
    partition: int
    offset: int
    timestamp: int | None
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]] = field(default_factory=list)
    error: str | None = None
    last_offset: int | None = None  # a whole batch that could not be read: its last offset


class _Malformed(ValueError):
    pass


def _codecs() -> dict[int, tuple[str, Callable[[], bool], Callable[[bytes], bytes] | None]]:
    from kafka import codec

    return {
        1: ("gzip", codec.has_gzip, codec.gzip_decode),
        2: ("snappy", codec.has_snappy, codec.snappy_decode),
        3: ("lz4", codec.has_lz4, codec.lz4_decode),
        4: ("zstd", codec.has_zstd, codec.zstd_decode),
    }


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    """A zigzag varint (Kafka's record fields) at ``pos``: (value, next position)."""
    shift = result = 0
    while True:
        if pos >= len(buf):
            raise _Malformed("a varint runs past the end of the batch")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return (result >> 1) ^ -(result & 1), pos
        shift += 7
        if shift > 63:
            raise _Malformed("a varint is longer than 10 bytes")


def _nullable(buf: bytes, pos: int, end: int) -> tuple[bytes | None, int]:
    n, pos = _varint(buf, pos)
    if n < 0:
        return None, pos
    if pos + n > end:
        raise _Malformed(f"a field of {n} bytes runs past its record")
    return buf[pos : pos + n], pos + n


@dataclass(frozen=True)
class _Raw:
    offset_delta: int
    timestamp_delta: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[bytes, bytes | None]]


def _read_record(buf: bytes, pos: int) -> tuple[_Raw, int]:
    """One record (length, attributes, timestamp delta, offset delta, key, value, headers) at ``pos``."""
    length, pos = _varint(buf, pos)
    end = pos + length
    if length < 1 or end > len(buf):
        raise _Malformed(f"a record length of {length} bytes runs past the batch")
    pos += 1  # attributes: unused in record format v2
    ts_delta, pos = _varint(buf, pos)
    offset_delta, pos = _varint(buf, pos)
    key, pos = _nullable(buf, pos, end)
    value, pos = _nullable(buf, pos, end)
    count, pos = _varint(buf, pos)
    if count < 0:
        raise _Malformed(f"a header count of {count}")
    headers = []
    for _ in range(count):
        hkey, pos = _nullable(buf, pos, end)
        if hkey is None:
            raise _Malformed("a null header key")
        hvalue, pos = _nullable(buf, pos, end)
        headers.append((hkey, hvalue))
    if pos != end:
        raise _Malformed(f"a record declares {length} bytes but holds {length - (end - pos)}")
    return _Raw(offset_delta, ts_delta, key, value, headers), end


def _headers(raw: list[tuple[bytes, bytes | None]]) -> tuple[list[tuple[str, bytes | None]], str | None]:
    """Header keys as text (bytes that are not UTF-8 as backslash escapes), and what was wrong, if anything."""
    out, errors = [], []
    for i, (k, v) in enumerate(raw):
        try:
            out.append((k.decode("utf-8"), v))
        except UnicodeDecodeError as exc:
            out.append((k.decode("utf-8", "backslashreplace"), v))
            errors.append(f"header {i} key is not UTF-8 (invalid byte at {exc.start}: {k[:40]!r})")
    return out, "; ".join(errors) or None


@dataclass(frozen=True)
class BatchRead:
    """What :func:`read_batch` made of one batch: its records at or after the start, the offset after it,
    and whether any of it could not be read."""

    records: list[FetchedRecord]
    next_offset: int
    unreadable: bool


def read_batch(data: bytes, topic: str, partition: int, start: int) -> BatchRead:
    """The records of one batch (``data``: from its base offset to its end) at offsets ``>= start``."""
    base, _length = struct.unpack_from(">qi", data, 0)
    magic = data[MAGIC_AT] if len(data) > MAGIC_AT else -1
    if magic != 2 or len(data) < BATCH_HEADER:
        last = max(start, base)  # a legacy message set: its offset is its last record's
        return _whole(data, topic, partition, start, last, None, f"record format v{magic} cannot be read here")
    from kafka.record.default_records import DefaultRecordBatch

    batch = DefaultRecordBatch(data)
    last = batch.next_offset - 1
    ts = batch.first_timestamp
    if not batch.validate_crc():
        return _whole(data, topic, partition, start, last, ts, "the batch fails its CRC check")
    if batch.is_control_batch:
        return BatchRead([], batch.next_offset, False)
    body = bytes(data[BATCH_HEADER:])
    codec = batch.compression_type
    if codec:
        name, available, decode = _codecs().get(codec, (f"codec {codec}", lambda: False, None))
        if not available() or decode is None:
            return _whole(data, topic, partition, start, last, ts, f"no decoder for {name} compression")
        try:
            body = decode(body)
        except Exception as exc:
            return _whole(
                data, topic, partition, start, last, ts, f"the {name} payload cannot be decompressed: {exc!r}"
            )
    out: list[FetchedRecord] = []
    unreadable = False
    pos, offset = 0, batch.base_offset - 1
    for i in range(batch.records_count):
        try:
            raw, pos = _read_record(body, pos)
            if not offset < batch.base_offset + raw.offset_delta <= last:
                raise _Malformed(f"offset delta {raw.offset_delta} is out of order")
        except _Malformed as exc:
            rest = _whole(data, topic, partition, max(start, offset + 1), last, ts, f"record {i} is malformed: {exc}")
            return BatchRead(out + rest.records, batch.next_offset, True)
        offset = batch.base_offset + raw.offset_delta
        if offset < start:
            continue
        headers, error = _headers(raw.headers)
        unreadable = unreadable or error is not None
        stamp = batch.max_timestamp if batch.timestamp_type == LOG_APPEND_TIME else ts + raw.timestamp_delta
        out.append(FetchedRecord(topic, partition, offset, stamp, raw.key, raw.value, headers, error))
    return BatchRead(out, batch.next_offset, unreadable)


def _whole(data: bytes, topic: str, partition: int, first: int, last: int, ts: int | None, why: str) -> BatchRead:
    """Offsets ``first``..``last`` of a batch that cannot be read: one record, the batch's raw bytes as value."""
    if last < first:
        return BatchRead([], last + 1, True)
    span = f"offsets {first}-{last}" if last > first else f"offset {first}"
    error = f"{why} ({span}; the value is the raw record batch, {len(data)} bytes)"
    return BatchRead([FetchedRecord(topic, partition, first, ts, None, bytes(data), [], error, last)], last + 1, True)


def rescue(
    raw: bytes, topic: str, partition: int, start: int, failure: BaseException
) -> tuple[list[FetchedRecord], int]:
    """Read the fetched ``raw`` batches from offset ``start`` up to and including the first batch with
    something unreadable; returns the records and the offset after the last batch read (``start`` when
    no batch holds it: nothing is skipped)."""
    out: list[FetchedRecord] = []
    end, pos = start, 0
    while pos + LOG_OVERHEAD <= len(raw):
        base, length = struct.unpack_from(">qi", raw, pos)
        if length < 0 or pos + LOG_OVERHEAD + length > len(raw):
            break  # a batch cut short by the fetch size: fetched again from its start
        data = raw[pos : pos + LOG_OVERHEAD + length]
        pos += LOG_OVERHEAD + length
        try:
            got = read_batch(data, topic, partition, start)
        except Exception as exc:  # anything unforeseen in a batch: the batch as a whole
            got = _whole(data, topic, partition, max(start, base), max(start, base), None, f"unreadable: {exc!r}")
        if got.next_offset <= start:
            continue
        out += got.records
        end = got.next_offset
        if got.unreadable:
            return out, end
    if not out and end == start:  # no batch here holds the offset: fetch it again rather than skip unseen offsets
        log.error(
            "no fetched batch holds offset %d of %s/%d, where kafka-python failed: %r", start, topic, partition, failure
        )
    return out, end


def _guarded(part: Any, inner: Iterator[Any], raw: Any) -> Iterator[Any]:
    """``part``'s records as kafka-python reads them (``inner``), then :func:`rescue` once it fails."""
    while True:
        try:
            rec = next(inner)
        except StopIteration:
            return
        except Exception as exc:
            failure = exc
            break
        yield rec
    tp = part.topic_partition
    start = part.next_fetch_offset
    records, end = rescue(bytes(raw or b""), tp.topic, tp.partition, start, failure)
    log.warning(
        "kafka-python cannot read %s/%d from offset %d (%r); read here instead: %d records, %d undecodable, "
        "resuming at offset %d",
        tp.topic,
        tp.partition,
        start,
        failure,
        len(records),
        sum(r.error is not None for r in records),
        end,
    )
    for i, rec in enumerate(records):
        # kafka-python moves the partition's position to next_fetch_offset after each take()
        part.next_fetch_offset = end if i == len(records) - 1 else (rec.last_offset or rec.offset) + 1
        yield rec
    part.next_fetch_offset = end
    part.drain()


def guard_fetches(consumer: Any) -> None:
    """Make every fetched partition of ``consumer`` readable to the end (see the module docstring).

    Relies on kafka-python 3.0.12's fetcher (``_parse_fetched_data`` returning a ``PartitionRecords``
    with ``record_iterator``, ``next_fetch_offset`` and ``drain``); the version is pinned in
    pyproject.toml and tests/worker/test_kafka_records.py reads undecodable records through it.
    """
    fetcher: Any = getattr(consumer, "_fetcher", None)
    parse = getattr(fetcher, "_parse_fetched_data", None)
    if parse is None:
        from lmr.errors import ConfigError

        raise ConfigError(
            "This kafka-python has no fetcher hook for undecodable records.", "install kafka-python==3.0.12."
        )

    def parse_guarded(completed: Any) -> Any:
        part = parse(completed)
        if part is not None and getattr(part, "record_iterator", None) is not None:
            part.record_iterator = _guarded(part, part.record_iterator, completed.partition_data.records)
        return part

    fetcher._parse_fetched_data = parse_guarded
