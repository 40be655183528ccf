"""Worker pieces that need no model or broker: parsing, chunking, settings, secrets, replay order, CLI errors."""

from __future__ import annotations

import itertools
import json
import logging
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from lmr.errors import ConfigError
from lmr.mentions import Mention
from lmr.words import split_words
from worker.cli import main
from worker.events import H_OFFSET, H_REASON, dlq_record
from worker.extract import make_chunks, merge_mentions
from worker.metrics import Health, Metrics, MetricsServer
from worker.parse import Message, Post, Rejected, parse_message
from worker.replay import Pacer, ReplayRecord, parse_created_at, read_records
from worker.settings import KafkaSettings, WorkerSettings


def msg(value: bytes | None, offset: int = 0) -> Message:
    return Message(value, "t", 0, offset, b"key", (("h", b"1"),))


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"\xff\xfe", "not_utf8"),
        (b"{bad json", "not_json"),
        (None, "tombstone"),
        (b"42", "not_object"),
        (b'{"id": 1}', "no_text"),
        (b'{"text": "  \\t "}', "empty_text"),
        (b'{"text": 3}', "wrong_type"),
        (b'{"text": "Houston", "id": {"a": 1}}', "wrong_type"),
        (json.dumps({"text": "x" * 2000}).encode(), "text_too_large"),
        (json.dumps({"text": "é" * 600}).encode(), "text_too_large"),  # 1200 UTF-8 bytes
    ],
)
def test_parse_rejects_with_reason(value: bytes | None, reason: str) -> None:
    r = parse_message(msg(value), max_text_bytes=1000)
    assert isinstance(r, Rejected)
    assert r.reason == reason
    assert r.error


def test_parse_accepts_alternative_fields_and_keeps_everything() -> None:
    p = parse_message(msg(b'{"tweet_id": 17, "full_text": "Rain in Miami", "lang": "en"}'))
    assert isinstance(p, Post)
    assert (p.text, p.id, p.text_field) == ("Rain in Miami", "17", "full_text")
    assert p.fields["lang"] == "en"
    q = parse_message(msg(b'{"body": "Rain in Miami", "uid": "a"}'), text_field="body", id_field="uid")
    assert isinstance(q, Post) and (q.text, q.id, q.text_field) == ("Rain in Miami", "a", "body")


def test_dlq_record_keeps_bytes_and_adds_headers() -> None:
    raw = b"\xff\xfe not utf8"
    r = dlq_record(Rejected(Message(raw, "posts", 3, 41, b"k", (("trace", b"x"),)), "not_utf8", "invalid"))
    h = dict(r.headers)
    assert r.value == raw and r.key == b"k"
    assert h[H_REASON] == b"not_utf8" and h[H_OFFSET] == b"41" and h["lmr.source.partition"] == b"3"
    assert h["trace"] == b"x"


def test_chunks_cover_every_word_with_overlap() -> None:
    words = split_words(" ".join(["flood"] * 25))
    chunks, truncated = make_chunks(words, window=10, overlap=3, max_chunks=10)
    assert not truncated
    covered: set[int] = set()
    for c in chunks:
        assert len(c.words) <= 10
        covered.update(range(c.first, c.last))
    assert covered == set(range(25))
    assert all(a.last - b.first == 3 for a, b in itertools.pairwise(chunks) if a.last < 25)
    short, truncated = make_chunks(words, window=10, overlap=3, max_chunks=2)
    assert truncated and short[-1].last < 25


def test_merge_prefers_spans_away_from_window_edges() -> None:
    text = "a b New York c d"
    words = split_words(text)
    c1, _ = make_chunks(words[:3], 3, 0, 1)  # window ends after "New"
    left = c1[0].__class__(words[:3], 0, 3, len(words))
    right = c1[0].__class__(words[1:], 1, len(words), len(words))
    cut = Mention("New", 4, 7, 0.9)
    full = Mention("New York", 4, 12, 0.6)
    dup = Mention("New York", 4, 12, 0.7)
    merged = merge_mentions([(left, cut), (right, full), (right, dup)])
    assert merged == [Mention("New York", 4, 12, 0.7)]


def test_settings_secrets_come_from_env_and_never_show(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "s3cr3t-Pa55w0rd-xyz"
    monkeypatch.setenv("LMR_SASL_PASSWORD", secret)
    s = WorkerSettings.from_params(
        {"model": "m", "security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512", "sasl_username": "lmr"}
    )
    assert s.kafka.sasl_password == secret
    assert s.kafka.consumer()["sasl_plain_password"] == secret
    assert secret not in repr(s) and secret not in str(s.redacted())
    assert s.redacted()["kafka"]["sasl_password"] == "***"
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("worker").info("settings: %s", s.redacted())
    assert secret not in caplog.text


def test_settings_errors_name_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LMR_SASL_PASSWORD", raising=False)
    with pytest.raises(ConfigError, match="LMR_SASL_PASSWORD"):
        KafkaSettings(security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN", sasl_username="u")
    with pytest.raises(ConfigError, match="--sasl-mechanism"):
        KafkaSettings(security_protocol="SASL_SSL", sasl_username="u", sasl_password="p")
    with pytest.raises(ConfigError, match="does not exist"):
        KafkaSettings(security_protocol="SSL", ssl_cafile="/nonexistent/ca.pem")
    with pytest.raises(ConfigError, match="No model"):
        WorkerSettings()
    with pytest.raises(ConfigError, match="go together"):
        WorkerSettings(model="m", source="file:x.jsonl")
    with pytest.raises(ConfigError, match="chunk-overlap"):
        WorkerSettings(model="m", chunk_words=10, chunk_overlap=10)
    with pytest.raises(ConfigError, match="--runtime"):
        WorkerSettings(model="m", runtime="tensorrt")
    with pytest.raises(ConfigError, match="--device"):
        WorkerSettings(model="m", device="tpu")
    with pytest.raises(ConfigError, match="--text-cache-bytes"):
        WorkerSettings(model="m", text_cache_bytes=-1)
    ssl = KafkaSettings(security_protocol="SSL", ssl_check_hostname=False).producer()
    assert ssl["security_protocol"] == "SSL" and ssl["ssl_check_hostname"] is False and "sasl_mechanism" not in ssl
    for wait in (0, 30_000):
        with pytest.raises(ConfigError, match="--fetch-max-wait-ms"):
            KafkaSettings(fetch_max_wait_ms=wait)
    assert KafkaSettings(fetch_max_wait_ms=100).consumer()["fetch_max_wait_ms"] == 100


def test_created_at_formats_and_replay_order(tmp_path: Path) -> None:
    tw = parse_created_at("Wed Aug 30 21:18:07 +0000 2017")
    iso = parse_created_at("2017-08-30T21:18:07Z")
    assert tw == iso == 1504127887000
    assert parse_created_at("2017-08-30T23:18:07+02:00") == tw
    assert parse_created_at("yesterday") is None and parse_created_at(None) is None
    f = tmp_path / "a.jsonl"
    rows = [
        {"tweet_id": "3", "text": "c", "created_at": "Wed Aug 30 21:18:09 +0000 2017"},
        {"tweet_id": "1", "text": "a", "created_at": "2017-08-30T21:18:07Z"},
        {"id": 2, "text": "b", "created_at": "Wed Aug 30 21:18:08 +0000 2017"},
        {"id_str": "4", "text": "no time"},
    ]
    f.write_text("\n".join(json.dumps(r) for r in rows) + "\n\nnot json\n")
    recs = read_records([f])
    assert [r.key for r in recs] == [b"1", b"2", b"3", b"4", None]
    assert recs[0].timestamp_ms == tw and recs[3].timestamp_ms is None
    assert recs[0].value == json.dumps(rows[1]).encode()  # original line bytes


def test_pacer_rate_and_speed() -> None:
    slept: list[float] = []
    p = Pacer(rate=10, sleep=slept.append)
    for i in range(3):
        p.wait(ReplayRecord(b"", None, None, i))
    assert slept and max(slept) <= 0.2 + 1e-6 and sum(slept) > 0.1
    slept.clear()
    q = Pacer(speed=100, sleep=slept.append)
    q.wait(ReplayRecord(b"", None, 0, 0))
    q.wait(ReplayRecord(b"", None, 10_000, 1))  # 10 s later at 100x -> ~0.1 s
    assert slept and 0.05 < slept[-1] <= 0.1


def test_metrics_server_serves_metrics_and_health() -> None:
    m, h = Metrics(), Health()
    m.dlq.labels("not_json").inc()
    srv = MetricsServer(m, h, "127.0.0.1", 0).start()
    try:
        base = f"http://127.0.0.1:{srv.port}"
        with urllib.request.urlopen(base + "/metrics", timeout=5) as r:
            assert 'lmr_worker_dlq_messages_total{reason="not_json"} 1.0' in r.read().decode()
        with urllib.request.urlopen(base + "/healthz", timeout=5) as r:
            assert r.status == 200
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(base + "/readyz", timeout=5)
        assert e.value.code == 503
        h.set_ready(True)
        with urllib.request.urlopen(base + "/readyz", timeout=5) as r:
            assert r.status == 200
    finally:
        srv.stop()


def test_cli_help_has_examples_and_errors_are_clear(tmp_path: Path) -> None:
    runner = CliRunner()
    for cmd in ([], ["run"], ["broker"], ["replay"], ["evaluate"]):
        res = runner.invoke(main, [*cmd, "--help"])
        assert res.exit_code == 0 and "Example" in res.output, cmd
    res = runner.invoke(main, ["run"])
    assert res.exit_code != 0 and "No model given" in res.output
    res = runner.invoke(main, ["run", "--model", "m", "--source", "file:/nonexistent.jsonl", "--sink", "file:o.jsonl"])
    assert res.exit_code != 0 and "does not exist" in res.output
    res = runner.invoke(main, ["run", "--model", "m", "--sasl-password", "x"])
    assert res.exit_code == 2 and "No such option" in res.output
    res = runner.invoke(main, ["replay", str(tmp_path / "x.jsonl"), "--topic", "t", "--rate", "5", "--speed", "2"])
    assert res.exit_code != 0 and "at most one" in res.output
    res = runner.invoke(main, ["broker", "--topic", "a:b"])
    assert res.exit_code != 0 and "NAME:PARTITIONS" in res.output
    res = runner.invoke(main, ["run", "--model", "m", "--batch-size", "0"], env={"LMR_BATCH_SIZE": "5"})
    assert "--batch-size must be at least 1" in res.output  # the flag wins over the environment
