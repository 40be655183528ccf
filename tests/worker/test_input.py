"""What the outside world can send, without a model or broker: poison messages, nulls, windows, secrets in logs."""

from __future__ import annotations

import io
import itertools
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lmr import logs
from lmr.config import redact_url
from lmr.words import split_words
from worker.events import H_NULL_HEADERS, H_NULL_KEY, H_REASON, build_event, dlq_record, event_record, kafka_fields
from worker.extract import make_chunks
from worker.parse import MAX_DEPTH, NOT_JSON, REASONS, TOMBSTONE, TOO_DEEP, Message, Post, Rejected, parse_message
from worker.settings import WorkerSettings
from worker.sinks import FileSink


def msg(value: bytes | None, headers: tuple[tuple[str, bytes | None], ...] = (), key: bytes | None = b"k") -> Message:
    return Message(value, "t", 0, 7, key, headers)


def strict(raw: bytes) -> Any:
    def no_constant(name: str) -> Any:
        raise AssertionError(name)

    return json.loads(raw.decode("utf-8"), parse_constant=no_constant)


@pytest.mark.parametrize(
    ("value", "reason", "says"),
    [
        (b"[" * 3000 + b"]" * 3000, TOO_DEEP, "deeper than"),  # RecursionError in json
        (b'{"text": "Houston", "a": ' + b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1) + b"}", TOO_DEEP, "deeper"),
        (b'{"text": "Houston", "n": ' + b"7" * 5000 + b"}", NOT_JSON, "5000 digits"),  # ValueError in int()
        (b'{"text": "Houston", "n": -' + b"7" * 5000 + b"}", NOT_JSON, "send it as a string"),
        (b'{"text": "Houston", "n": NaN}', NOT_JSON, "NaN is not valid JSON"),
        (b'{"text": "Houston", "n": -Infinity}', NOT_JSON, "-Infinity"),
        (b'{"text": "Houston", "n": 1e400}', NOT_JSON, "overflows"),
        (None, TOMBSTONE, "tombstone"),
    ],
)
def test_poison_json_is_dead_lettered_with_a_reason(value: bytes | None, reason: str, says: str) -> None:
    r = parse_message(msg(value))
    assert isinstance(r, Rejected) and r.reason == reason and says in r.error
    assert reason in REASONS


def test_lone_surrogates_become_replacement_characters_and_keep_offsets() -> None:
    raw = rb'{"id": "x\ud800", "text": "Help in Houston \ud800 now \ud83d\ude00", "\udfffk": ["\uDC00"], "n": 1}'
    p = parse_message(msg(raw, key=None))
    assert isinstance(p, Post)
    assert p.text == "Help in Houston \ufffd now \U0001f600"  # the lone one replaced, the pair decoded
    assert len(p.text) == len(json.loads(raw)["text"]), "one code point for one: offsets unchanged"
    assert p.id == "x\ufffd" and p.fields["\ufffdk"] == ["\ufffd"]
    rec = event_record(p, build_event(p, [], [], model_id="m@1"))
    ev = strict(rec.value or b"")
    assert ev["text"] == p.text and rec.key == "x\ufffd".encode()


def test_events_refuse_nan_instead_of_writing_non_standard_json() -> None:
    p = parse_message(msg(b'{"text": "Rain in Houston"}'))
    assert isinstance(p, Post)
    p.fields["bad"] = float("nan")  # cannot come from parse_message; build_event must not write it
    with pytest.raises(ValueError, match="JSON compliant"):
        event_record(p, build_event(p, [], [], model_id="m@1"))


def test_tombstones_and_null_headers_are_dead_lettered_as_they_were(tmp_path: Path) -> None:
    m = msg(None, headers=(("trace", None), ("h", b"1"), ("empty", b"")))
    r = dlq_record(Rejected(m, TOMBSTONE, "the message has no value"))
    assert r.value is None and r.key == b"k"
    assert r.headers[:3] == (("trace", None), ("h", b"1"), ("empty", b""))
    value, key, headers = kafka_fields(r)  # kafka-python cannot produce null header values
    assert value is None and key == b"k"
    assert headers[0] == ("trace", b"") and dict(headers)[H_NULL_HEADERS] == b"0"
    assert H_NULL_KEY not in dict(headers)
    _, key2, headers2 = kafka_fields(dlq_record(Rejected(msg(None, key=None), TOMBSTONE, "no value")))
    assert key2 == b"" and dict(headers2)[H_NULL_KEY] == b"1" and H_NULL_HEADERS not in dict(headers2)
    sink = FileSink(tmp_path / "o.jsonl", tmp_path / "d.jsonl")
    assert sink.deliver([], [r], give_up=lambda: False)
    sink.close()
    line = strict((tmp_path / "d.jsonl").read_bytes())
    assert line["value"] is None and line[H_REASON] == TOMBSTONE


@settings(max_examples=500, deadline=None, database=None)
@given(
    st.one_of(
        st.binary(max_size=200),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(st.characters(exclude_categories=())),
            lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=5), kids, max_size=3),
            max_leaves=10,
        ).map(lambda o: json.dumps({"text": o} if isinstance(o, str) else o).encode("utf-8", "surrogatepass")),
    )
)
def test_parse_never_raises_and_every_post_writes_back_as_strict_json(raw: bytes) -> None:
    r = parse_message(msg(raw), max_text_bytes=1000)
    if isinstance(r, Rejected):
        assert r.reason in REASONS and r.error
        return
    out = event_record(r, build_event(r, [], [], model_id="m@1"))
    assert strict(out.value or b"")["text"] == r.text


def test_windows_respect_the_piece_budget_and_flag_unread_text() -> None:
    words = split_words(" ".join(["flood"] * 40))
    pieces = [1 + (i % 5) for i in range(40)]  # 1..5 pieces a word
    chunks, unread = make_chunks(words, window=30, overlap=4, max_chunks=50, pieces=pieces, max_pieces=20)
    assert not unread
    covered: set[int] = set()
    for a, b in itertools.pairwise(chunks):
        assert a.first < b.first and b.first <= a.last, "windows advance and touch or overlap"
    for c in chunks:
        assert sum(pieces[c.first : c.last]) <= 20 and c.last - c.first <= 30
        covered.update(range(c.first, c.last))
    assert covered == set(range(40))
    # one word alone over the budget: it gets a window of its own, and the post is flagged
    pieces[10] = 50
    chunks, unread = make_chunks(words, window=30, overlap=4, max_chunks=50, pieces=pieces, max_pieces=20)
    assert unread and any((c.first, c.last) == (10, 11) for c in chunks)
    assert set().union(*(range(c.first, c.last) for c in chunks)) == set(range(40))
    _, cut = make_chunks(words, window=30, overlap=4, max_chunks=2, pieces=[1] * 40, max_pieces=10)
    assert cut, "more windows than --max-chunks: text left unread"


def test_a_password_in_the_geocoder_url_never_shows() -> None:
    url = "https://geo-user:Url%40Pass-77@geo.example:8443/nominatim/"
    assert redact_url(url) == "https://geo-user:***@geo.example:8443/nominatim/"
    assert redact_url("https://geo.example/x") == "https://geo.example/x"
    s = WorkerSettings(model="m", geocoder_url=url)
    assert "Url%40Pass-77" not in str(s.redacted()) and "geo-user:***@" in str(s.redacted())


@pytest.mark.parametrize("fmt", ["plain", "json"])
def test_masked_secrets_never_reach_a_log_line(fmt: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from lmr.config import secret_from_env

    secret = 'pa"ss\\wörd-Σ-42'  # quotes, a backslash and non-ASCII: escaped differently by repr and JSON
    monkeypatch.setenv("LMR_TEST_SECRET", secret)
    assert secret_from_env("LMR_TEST_SECRET") == secret
    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    handler.setFormatter(logs.Masking(logs.JsonFormatter() if fmt == "json" else logging.Formatter("%(message)s")))
    lg = logging.getLogger("kafka.admin.client.test")
    lg.addHandler(handler)
    lg.setLevel(logging.DEBUG)
    try:
        lg.debug("Starting KafkaAdminClient with configuration: %s", {"sasl_plain_password": secret})
        lg.debug("raw %s and in a list %r", secret, [secret])
        try:
            raise RuntimeError(f"auth failed for {secret}")
        except RuntimeError:
            lg.exception("boom")
    finally:
        lg.removeHandler(handler)
    text = buf.getvalue()
    assert text.count("***") >= 4 and "Starting KafkaAdminClient" in text
    for form in (secret, repr(secret)[1:-1], json.dumps(secret)[1:-1], json.dumps(repr(secret)[1:-1])[1:-1], "wörd"):
        assert form not in text, form
