"""Whole records through the real broker: codecs, header keys kafka-python cannot read, lmr's header namespace,
a megabyte of headers or key, a record the broker refuses, and a hypothesis fuzz of whole records.

One embedded broker serves the module; it runs with Tansu's schema registry (a directory of JSON schemas named
after topics), which is how a test gets the broker itself to refuse a record for its content (INVALID_RECORD),
as a compacted topic refuses a null key on Apache Kafka (Tansu does not enforce compaction rules).
"""

from __future__ import annotations

import json
import os
import struct
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kafka import KafkaProducer

from tests.worker_support import TopicReader, WorkerThread, committed, post, topics
from tests.worker_support import settings as worker_settings
from worker.app import Worker
from worker.broker import EmbeddedBroker, free_port
from worker.events import OutRecord, produced_size
from worker.parse import REASONS, Message
from worker.reload import ModelManager

pytestmark = pytest.mark.slow

CODECS = [None, "gzip", "snappy", "lz4", "zstd"]
MAX_REQUEST = 1_048_576  # the worker's default --max-request-size


class RawKey(str):
    """A header key kafka-python's producer writes as the given bytes (it encodes str keys as UTF-8): how a
    Java, librdkafka or franz-go producer writes a key that is not UTF-8. Test-only."""

    raw: bytes

    def __new__(cls, raw: bytes) -> RawKey:
        key = super().__new__(cls, raw.decode("latin-1"))
        key.raw = raw
        return key

    def encode(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        return self.raw


class SchemaBroker(EmbeddedBroker):
    """The embedded broker with Tansu's schema registry at ``./schema`` of the directory it starts in."""

    def command(self) -> list[str]:
        return [*super().command(), "--schema-registry", "file://./schema"]


@pytest.fixture(scope="module")
def schemas(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("registry")
    (root / "schema").mkdir()
    return root / "schema"


@pytest.fixture(scope="module")
def broker(schemas: Path) -> Iterator[EmbeddedBroker]:
    b = SchemaBroker(log_file=schemas.parent / "tansu.log")
    here = os.getcwd()
    os.chdir(schemas.parent)  # Tansu reads a file:// registry relative to its working directory
    try:
        b.start()
    finally:
        os.chdir(here)
    with b:
        yield b


@pytest.fixture(scope="module")
def extractor(tiny_model: Path) -> Any:
    from lmr.model.extractor import load_extractor

    return load_extractor(str(tiny_model))


def worker(broker: EmbeddedBroker, model: Path, ex: Any, t: tuple[str, str, str, str], **kw: Any) -> WorkerThread:
    inp, out, dlq, group = t
    s = worker_settings(broker.bootstrap, model, input_topic=inp, output_topic=out, dlq_topic=dlq, group_id=group, **kw)
    return WorkerThread(Worker(s, models=ModelManager(str(model), extractor=ex)))


def send(bootstrap: str, topic: str, records: Sequence[dict[str, Any]], codec: str | None = None) -> list[int]:
    """Produce ``records`` (value, key, headers) in one batch compressed with ``codec``; their offsets."""
    p = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=50, compression_type=codec,
                      max_request_size=8 << 20)  # fmt: skip
    futures = [p.send(topic, value=r.get("value"), key=r.get("key"), headers=r.get("headers")) for r in records]
    p.flush(timeout=30)
    p.close()
    return [f.get(timeout=1).offset for f in futures]


def read(bootstrap: str, topic: str, n: int, settle_s: float = 0.0) -> list[Any]:
    """At least ``n`` records of ``topic`` (partition 0), then what arrives within ``settle_s``; the reader is
    closed (a reader left open outlives the broker and logs its reconnects into later tests)."""
    reader = TopicReader(bootstrap, topic, 1)
    try:
        return reader.read_until(n, settle_s=settle_s)
    finally:
        reader.close()


def headers_of(rec: Any) -> dict[str, bytes]:
    return {k: v for k, v in rec.headers}


def dead_by_offset(recs: list[Any]) -> dict[int, Any]:
    return {int(headers_of(r)["lmr.source.offset"]): r for r in recs}


def test_every_codec_is_read_and_a_header_key_that_is_not_utf8_becomes_a_dead_letter(
    broker: EmbeddedBroker, tiny_model: Path, extractor: Any
) -> None:
    """One batch per codec, each [post, post with a non-UTF-8 header key, post]: before, the bad key raised
    CorruptRecordError out of poll (and lz4/zstd/snappy UnsupportedCodecError), every worker of the group died."""
    t = topics(broker, 1)
    bad_key = b"trace-\xff\xfe"
    offsets: dict[str | None, list[int]] = {}
    for i, codec in enumerate(CODECS):
        batch = [
            {"value": post(3 * i), "key": f"k{3 * i}".encode(), "headers": [("ok", b"1")]},
            {"value": post(3 * i + 1), "key": b"bad", "headers": [("ok", b"2"), (RawKey(bad_key), b"v")]},
            {"value": post(3 * i + 2), "headers": [("lmr.error.reason", b"\xff")]},
        ]
        offsets[codec] = send(broker.bootstrap, t[0], batch, codec)
    n = 3 * len(CODECS)
    w = worker(broker, tiny_model, extractor, t).start()
    try:
        assert w.wait_for(lambda: w.worker.committed.get((t[0], 0)) == n, 180), "the partition reached its end"
        outs = read(broker.bootstrap, t[1], 2 * len(CODECS), settle_s=0.5)
        dead = read(broker.bootstrap, t[2], len(CODECS), settle_s=0.5)
    finally:
        assert w.stop() == 0 and w.error is None
    assert sorted(json.loads(r.value)["lmr"]["source"]["offset"] for r in outs) == sorted(
        o for codec in CODECS for j, o in enumerate(offsets[codec]) if j != 1
    )
    by_offset = dead_by_offset(dead)
    assert sorted(by_offset) == sorted(offsets[c][1] for c in CODECS) and len(dead) == len(CODECS)
    for codec in CODECS:
        d = by_offset[offsets[codec][1]]
        h = headers_of(d)
        assert h["lmr.error.reason"] == b"undecodable_record", codec
        assert b"header 1 key is not UTF-8" in h["lmr.error.message"]
        assert d.value == post(offsets[codec][1]) and d.key == b"bad", "the record itself, as read"
        assert h["ok"] == b"2" and h["trace-\\xff\\xfe"] == b"v", "the key's bytes as backslash escapes"
    forged = [r for r in outs if json.loads(r.value)["n"] % 3 == 2]
    assert all("lmr.error.reason" not in headers_of(r) for r in forged)
    assert all(headers_of(r)["input.lmr.error.reason"] == b"\xff" for r in forged), "renamed, kept"
    assert w.worker.metrics.dlq.labels("undecodable_record")._value.get() == len(CODECS)


def test_a_batch_without_its_codec_is_one_dead_letter_and_the_partition_moves_on(
    broker: EmbeddedBroker, tiny_model: Path, extractor: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A codec the worker lacks (here lz4, hidden from kafka-python after producing): the whole batch is one
    dead letter spanning its offsets, its raw bytes the value; the posts after it are processed."""
    import kafka.codec

    t = topics(broker, 1)
    first = send(broker.bootstrap, t[0], [{"value": post(i)} for i in range(3)], "lz4")
    after = send(broker.bootstrap, t[0], [{"value": post(3)}])
    monkeypatch.setattr(kafka.codec, "has_lz4", lambda: False)
    w = worker(broker, tiny_model, extractor, t).start()
    try:
        assert w.wait_for(lambda: w.worker.committed.get((t[0], 0)) == 4, 180)
        outs = read(broker.bootstrap, t[1], 1, settle_s=0.5)
        dead = read(broker.bootstrap, t[2], 1, settle_s=0.5)
    finally:
        assert w.stop() == 0
    assert [json.loads(r.value)["lmr"]["source"]["offset"] for r in outs] == after
    assert len(dead) == 1
    h = headers_of(dead[0])
    assert h["lmr.error.reason"] == b"undecodable_record" and b"no decoder for lz4" in h["lmr.error.message"]
    assert (int(h["lmr.source.offset"]), int(h["lmr.source.last_offset"])) == (first[0], first[-1])
    base, length = struct.unpack_from(">qi", dead[0].value)
    assert (base, length + 12) == (first[0], len(dead[0].value)), "the raw record batch"
    assert struct.unpack_from(">h", dead[0].value, 21)[0] & 0x07 == 3, "lz4 (the batch attributes' codec bits)"


def test_input_headers_cannot_forge_lmr_headers(broker: EmbeddedBroker, tiny_model: Path, extractor: Any) -> None:
    """Before: ``lmr.error.reason: \\xff`` on an input whose event was too large sent the event itself to the
    DLQ, then the sink decoded the header strictly and the worker exited on every restart; a UTF-8 value picked
    the metric label. Now input ``lmr.*`` headers are renamed ``input.lmr.*`` and never read."""
    t = topics(broker, 1)
    forged = [("lmr.error.reason", b"\xff"), ("lmr.source.offset", b"999"), ("lmr.error.message", b"x")]
    big = b'{"id": "big", "text": "Flooding in Houston", "v": [' + b",".join([b"1e15"] * 1000) + b"]}"  # 5 KB
    records = [
        {"value": big, "headers": forged},  # its event (floats written out: 19 KB) is over 8,000 bytes
        {"value": post(1), "headers": [("lmr.error.reason", b"any-label")]},
        {"value": b"not json", "headers": [("lmr.error.reason", b"tombstone"), ("lmr.source.topic", b"t")]},
    ]
    offsets = send(broker.bootstrap, t[0], records)
    w = worker(broker, tiny_model, extractor, t, max_request_size=8_000).start()
    try:
        assert w.wait_for(lambda: w.worker.committed.get((t[0], 0)) == 3, 180)
        outs = read(broker.bootstrap, t[1], 1, settle_s=0.5)
        dead = dead_by_offset(read(broker.bootstrap, t[2], 2, settle_s=0.5))
    finally:
        assert w.stop() == 0 and w.error is None
    assert [json.loads(r.value)["id"] for r in outs] == ["p1"]
    assert headers_of(outs[0]) == {"input.lmr.error.reason": b"any-label"}
    assert sorted(dead) == [offsets[0], offsets[2]], "provenance from the worker, not from the input's 999"
    too_large, junk = (headers_of(dead[o]) for o in (offsets[0], offsets[2]))
    assert too_large["lmr.error.reason"] == b"event_too_large" and dead[offsets[0]].value == big
    assert too_large["input.lmr.error.reason"] == b"\xff" and too_large["input.lmr.source.offset"] == b"999"
    assert junk["lmr.error.reason"] == b"not_json" and junk["lmr.source.topic"] == t[0].encode()
    labels = {s.labels["reason"] for m in w.worker.metrics.dlq.collect() for s in m.samples if "reason" in s.labels}
    assert labels <= set(REASONS) and labels >= {"event_too_large", "not_json"}


def test_a_megabyte_of_headers_or_key_ends_as_a_dead_letter_that_says_what_was_dropped(
    broker: EmbeddedBroker, tiny_model: Path, extractor: Any
) -> None:
    """Before: event too large -> dead letter too large -> empty dead letter too large -> dropped. Now what
    does not fit (the input headers, then the key) is dropped and described in ``lmr.dropped``."""
    t = topics(broker, 1)
    headers = [(f"h{i}", bytes([65 + i % 26]) * 10_000) for i in range(105)]
    records = [
        {"value": post(0), "headers": headers},
        {"value": post(1), "key": b"k" * 1_100_000},
        {"value": post(2), "key": b"small", "headers": [("trace", b"1")]},
    ]
    offsets = send(broker.bootstrap, t[0], records)
    w = worker(broker, tiny_model, extractor, t).start()
    try:
        assert w.wait_for(lambda: w.worker.committed.get((t[0], 0)) == 3, 180)
        outs = read(broker.bootstrap, t[1], 1, settle_s=0.5)
        dead = dead_by_offset(read(broker.bootstrap, t[2], 2, settle_s=0.5))
    finally:
        assert w.stop() == 0
    assert [json.loads(r.value)["id"] for r in outs] == ["p2"] and headers_of(outs[0]) == {"trace": b"1"}
    assert sorted(dead) == offsets[:2]
    h0, h1 = headers_of(dead[offsets[0]]), headers_of(dead[offsets[1]])
    assert h0["lmr.error.reason"] == h1["lmr.error.reason"] == b"event_too_large"
    assert h0["lmr.dropped"] == f"headers=105/{sum(len(k) + len(v) for k, v in headers)}".encode()
    assert dead[offsets[0]].value == post(0), "the value fits once the headers are gone"
    assert h1["lmr.dropped"] == b"key=1100000" and dead[offsets[1]].key is None
    assert not any(k.startswith("h") for k in h0)


def test_a_record_the_broker_refuses_becomes_a_dead_letter_and_the_rest_flows(
    broker: EmbeddedBroker, schemas: Path, tiny_model: Path, extractor: Any
) -> None:
    """The output topic's schema requires an ``id``: the event of a post without one is refused by the broker
    (INVALID_RECORD, for the whole produce batch; kafka-python's idempotent producer then fails everything
    after it). Before, the sink retried it forever with /readyz 503. Now the refused records are resent alone
    on a fresh producer; refused alone twice, the event becomes an ``event_refused`` dead letter."""
    t = topics(broker, 1)
    (schemas / f"{t[1]}.json").write_text(
        json.dumps({"type": "object", "properties": {"value": {"type": "object", "required": ["id"]}}})
    )
    values = [post(0), json.dumps({"text": "Flooding in Houston, no id"}).encode(), post(2), post(3)]
    send(broker.bootstrap, t[0], [{"value": v} for v in values])
    port = free_port()
    w = worker(broker, tiny_model, extractor, t, metrics_port=port, batch_size=4, max_wait_ms=500).start()
    try:
        assert w.wait_for(lambda: w.worker.committed.get((t[0], 0)) == 4, 180), "the batch went through"
        outs = read(broker.bootstrap, t[1], 3, settle_s=0.5)
        dead = read(broker.bootstrap, t[2], 1, settle_s=0.5)
        assert w.wait_for(lambda: _ready(port), 20), "/readyz recovers"
    finally:
        assert w.stop() == 0
    assert sorted(json.loads(r.value)["id"] for r in outs) == ["p0", "p2", "p3"]
    assert len(dead) == 1
    h = headers_of(dead[0])
    assert h["lmr.error.reason"] == b"event_refused" and b"InvalidRecordError" in h["lmr.error.message"]
    assert h["lmr.source.offset"] == b"1" and dead[0].value == values[1]
    assert w.worker.metrics.dlq.labels("event_refused")._value.get() == 1


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
            return bool(r.status == 200)
    except (urllib.error.URLError, OSError):
        return False


# -- fuzz: whole records into the real broker ------------------------------------------------------------------

FUZZ_EXAMPLES = int(os.environ.get("LMR_RECORD_FUZZ_EXAMPLES", "8"))
EXAMPLE_BOUND_S = 60.0  # every example's records are committed (events or dead letters) within this


header_key = st.one_of(
    st.binary(max_size=12).map(RawKey),
    st.text(max_size=12),
    st.sampled_from(["lmr.error.reason", "lmr.source.offset", "lmr.original.bytes", "lmr.source.null_key"]),
)
record_value = st.one_of(
    st.none(),
    st.binary(max_size=80),
    st.integers(0, 10**6).map(post),
    st.builds(lambda t: json.dumps({"text": t}).encode("utf-8", "surrogatepass"), st.text(max_size=60)),
)
whole_record = st.fixed_dictionaries(
    {
        "key": st.one_of(st.none(), st.binary(max_size=24)),
        "value": record_value,
        "headers": st.lists(st.tuples(header_key, st.binary(max_size=24)), max_size=4),
    }
)


@pytest.fixture(scope="module")
def fuzz_worker(broker: EmbeddedBroker, tiny_model: Path, extractor: Any) -> Iterator[tuple[WorkerThread, Any]]:
    t = topics(broker, 1)
    w = worker(broker, tiny_model, extractor, t, batch_size=16).start()
    readers = (TopicReader(broker.bootstrap, t[1], 1), TopicReader(broker.bootstrap, t[2], 1))
    try:
        yield w, (t, readers)
    finally:
        for r in readers:
            r.close()
        assert w.stop() == 0


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(records=st.lists(whole_record, min_size=1, max_size=6), codec=st.sampled_from(CODECS))
def test_whole_records_fuzzed_into_the_broker_each_end_as_one_event_or_one_dead_letter(
    fuzz_worker: tuple[WorkerThread, Any], broker: EmbeddedBroker, records: list[dict[str, Any]], codec: str | None
) -> None:
    """Keys, header keys of any bytes (lmr's own names included), values of any bytes or posts, every codec:
    no crash, the committed offset reaches the end within ``EXAMPLE_BOUND_S``, and every offset is exactly one
    event or one dead letter (with a known reason, fitting the producer's limit)."""
    w, (t, (out_reader, dlq_reader)) = fuzz_worker
    for r in records:
        if r["key"] is None and r["value"] is None:
            r["key"] = b""  # kafka-python cannot produce a record with neither
    offsets = send(broker.bootstrap, t[0], records, codec)
    end = offsets[-1] + 1
    started = time.monotonic()
    assert w.wait_for(lambda: w.worker.committed.get((t[0], 0), 0) >= end, EXAMPLE_BOUND_S), (
        f"offsets committed up to {w.worker.committed.get((t[0], 0))}, not {end}, in {EXAMPLE_BOUND_S:.0f}s"
    )
    assert w.thread.is_alive() and w.error is None, "the worker keeps running"
    assert time.monotonic() - started < EXAMPLE_BOUND_S
    assert committed(broker.bootstrap, t[3], t[0], 1)[0] == w.worker.committed[(t[0], 0)]
    seen: dict[int, int] = {}
    outs = out_reader.read_until(0, timeout_s=0, settle_s=1.0)
    dead = dlq_reader.read_until(0, timeout_s=0, settle_s=0.5)
    for r in outs:
        off = json.loads(r.value)["lmr"]["source"]["offset"]
        seen[off] = seen.get(off, 0) + 1
        assert not any(k.startswith("lmr.") for k, _ in r.headers), "input headers never in lmr's namespace"
    for r in dead:
        h = headers_of(r)
        assert h["lmr.error.reason"].decode() in REASONS and produced_size_of(r) <= MAX_REQUEST
        first = int(h["lmr.source.offset"])
        for off in range(first, int(h.get("lmr.source.last_offset", first)) + 1):
            seen[off] = seen.get(off, 0) + 1
    assert {o: seen.get(o, 0) for o in offsets} == dict.fromkeys(offsets, 1), "one event or one dead letter each"


def produced_size_of(rec: Any) -> int:
    """The size a consumed dead letter had when produced (same key, value and headers)."""
    return produced_size(OutRecord(rec.value, rec.key, tuple(rec.headers), Message(None, "t", 0, 0)))


# -- the lenient reader itself (no broker): any bytes of a fetched batch end as records, never an exception -----


def _batch(records: Sequence[tuple[bytes | None, bytes | None, list[tuple[Any, bytes]]]], codec: int = 0) -> bytes:
    """A record batch (format v2) as a broker returns it, built by kafka-python's own builder."""
    from kafka.record.default_records import DefaultRecordBatchBuilder

    b = DefaultRecordBatchBuilder(2, codec, False, -1, -1, -1, 1 << 20)
    for i, (key, value, headers) in enumerate(records):
        b.append(i, timestamp=1_700_000_000_000 + i, key=key, value=value, headers=headers)
    return bytes(b.build())


def _recrc(data: bytearray) -> bytes:
    from kafka.record.util import calc_crc32c

    struct.pack_into(">I", data, 17, calc_crc32c(bytes(data[21:])))
    return bytes(data)


def test_the_lenient_reader_reads_what_kafka_python_refuses_and_spans_what_nobody_can() -> None:
    from worker.record_batches import rescue

    recs = [(b"k0", b"v0", [("a", b"1")]), (None, b"v1", [(RawKey(b"\xff"), b"2")]), (b"k2", None, [])]
    for codec in (0, 1, 2, 3, 4):
        got, end = rescue(_batch(recs, codec), "t", 0, 0, ValueError("x"))
        assert end == 3 and [(r.offset, r.key, r.value, r.error is None) for r in got] == [
            (0, b"k0", b"v0", True),
            (1, None, b"v1", False),
            (2, b"k2", None, True),
        ], codec
        assert got[1].headers == [("\\xff", b"2")] and got[0].timestamp == 1_700_000_000_000
        got, end = rescue(_batch(recs, codec), "t", 0, 2, ValueError("x"))  # the position is mid-batch
        assert end == 3 and [r.offset for r in got] == [2]
    bad_crc = bytearray(_batch(recs))
    bad_crc[-1] ^= 0xFF
    got, end = rescue(bytes(bad_crc), "t", 0, 1, ValueError("x"))
    assert end == 3 and len(got) == 1 and (got[0].offset, got[0].last_offset) == (1, 2) and "CRC" in str(got[0].error)
    malformed = bytearray(_batch(recs))
    malformed[61] = 0x01  # the first record's length: -1
    got, end = rescue(_recrc(malformed), "t", 0, 0, ValueError("x"))
    assert end == 3 and len(got) == 1 and (got[0].offset, got[0].last_offset) == (0, 2)
    assert "record 0 is malformed" in str(got[0].error) and got[0].value == bytes(malformed)


@settings(max_examples=300, deadline=None)
@given(flips=st.lists(st.tuples(st.integers(21, 400), st.integers(0, 255)), min_size=1, max_size=6),
       codec=st.sampled_from([0, 1, 2, 3, 4]), start=st.integers(0, 3))  # fmt: skip
def test_the_lenient_reader_never_raises_and_never_goes_backwards(
    flips: list[tuple[int, int]], codec: int, start: int
) -> None:
    """Any bytes after the batch length (CRC recomputed, so the records themselves are read): records in offset
    order, none before ``start``, the position past every record returned."""
    from worker.record_batches import rescue

    data = bytearray(_batch([(b"k", b"value %d" % i, [("h", b"x" * i)]) for i in range(4)], codec))
    for at, byte in flips:
        if at < len(data):
            data[at] = byte
    got, end = rescue(_recrc(data), "t", 0, start, ValueError("x"))
    offsets = [r.offset for r in got]
    assert offsets == sorted(offsets) and all(o >= start for o in offsets)
    assert end >= start and all((r.last_offset or r.offset) < end for r in got)
