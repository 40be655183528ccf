"""Property test: any message, through parse -> extract (the real tiny model) -> events -> sink.

Hypothesis generates batches of messages the outside world can send (random bytes,
JSON with odd unicode and lone surrogates, deep nesting, huge numbers, NaN, wrong
types, huge texts, tombstones, null header values) and checks the worker's rule:
no exception leaves the pipeline, every message ends as exactly one event or one
dead letter with a known reason, every event and dead-letter line is strict JSON,
and ``text[start:end] == location.text`` for every location.

``LMR_FUZZ_EXAMPLES`` sets the number of batches (default 30 batches of 32-96
messages, about 2,000 messages; 2,008 messages took 261 s of pipeline time on a
2-core AMD EPYC at load average 23, so well under a minute on an idle CI
runner). For longer runs outside CI raise it, e.g.
``LMR_FUZZ_EXAMPLES=2000 pytest tests/worker/test_fuzz.py``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from worker.events import load_schema
from worker.extract import ExtractStage
from worker.parse import MAX_DEPTH, REASONS, Message
from worker.pipeline import Pipeline, PipelineOptions
from worker.reload import ModelManager
from worker.sinks import FileSink

pytestmark = pytest.mark.slow

EXAMPLES = int(os.environ.get("LMR_FUZZ_EXAMPLES", "30"))
MAX_TEXT_BYTES = 6_000

# every code point, lone surrogates included (json.dumps writes them as \udXXX escapes)
odd_char = st.characters(min_codepoint=0, max_codepoint=0x10FFFF, categories=None, exclude_categories=())
odd_text = st.text(odd_char, max_size=60)
words = st.sampled_from(["Flooding", "in", "Houston", "Texas", "#HoustonFlood", "NYC", "near", "ÉCOLE", "東京", "🇺🇸",
                         "\u200b", "\ufeff", "a\u0301", "Guadalupe", "River", "\ud83d", "\x00", "-", "'s"])  # fmt: skip
post_text = st.one_of(
    st.lists(words, max_size=40).map(" ".join),
    odd_text,
    st.lists(words, min_size=150, max_size=400).map(" ".join),  # several windows (--chunk-words 64), some cut off
    st.text(st.sampled_from("東京大阪地震洪水 "), min_size=100, max_size=700),  # few words, many pieces
    st.integers(1, 30).map(lambda n: "Houston" * n * 30),  # one word longer than the encoder's input
    st.integers(MAX_TEXT_BYTES, 5 * MAX_TEXT_BYTES).map(lambda n: "x " * n),  # over --max-text-bytes
)
scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    odd_text,
)
json_value = st.recursive(scalar, lambda kids: st.lists(kids, max_size=4) | st.dictionaries(odd_text, kids, max_size=4),
                          max_leaves=12)  # fmt: skip
post_id = st.one_of(st.none(), st.integers(), odd_text, odd_text, odd_text, st.booleans(), st.floats(allow_nan=False),
                    st.lists(scalar))  # fmt: skip


def weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One of ``choices`` with the given weights (``st.one_of`` favours the first alternatives)."""
    pool = [s for w, s in choices for _ in range(w)]
    return st.integers(0, len(pool) - 1).flatmap(lambda i: pool[i])


text_value = weighted((8, post_text), (1, scalar), (1, json_value))


def nested(depth: int, inner: str = '"x"') -> str:
    return "[" * depth + inner + "]" * depth


@st.composite
def post_bytes(draw: st.DrawFn) -> bytes:
    obj: dict[str, Any] = {}
    field = draw(st.sampled_from(["text", "text", "text", "full_text", "body"]))
    obj[field] = draw(text_value)
    if draw(st.booleans()):
        obj[draw(st.sampled_from(["id", "tweet_id", "id_str"]))] = draw(post_id)
    obj.update(draw(st.dictionaries(odd_text, json_value, max_size=3)))
    ascii_only = draw(st.booleans())
    try:
        s = json.dumps(obj, ensure_ascii=ascii_only)
    except ValueError:
        s = json.dumps(obj)
    return s.encode("utf-8", "surrogatepass")  # a lone surrogate, raw: invalid UTF-8 (CESU-8)


special = st.one_of(
    st.integers(MAX_DEPTH - 2, 5_000).map(lambda d: ('{"text": "Rain in Houston", "n": ' + nested(d) + "}").encode()),
    st.integers(1, 12_000).map(lambda d: nested(d).encode()),
    st.integers(4_000, 6_000).map(lambda n: b'{"text": "Rain in Houston", "n": ' + b"9" * n + b"}"),
    st.sampled_from([b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e999"]).map(
        lambda c: b'{"text": "Rain in Houston", "x": ' + c + b"}"
    ),
    st.sampled_from(['"\\ud800"', '"\\udfff"', '"\\ud83d\\ude00"', '"\\uDBFF"']).map(
        lambda e: ('{"id": ' + e + ', "text": "Help in Houston ' + e[1:-1] + ' now", ' + e + ": " + e + "}").encode()
    ),
    st.sampled_from([b"", b" ", b"null", b"[]", b'""', b"{}", b"\xef\xbb\xbf{}", b'{"text": null}', b"\x00"]),
)
value = weighted((7, post_bytes()), (1, st.binary(max_size=300)), (2, special), (1, st.none()))
headers = st.lists(st.tuples(st.text(max_size=12), st.one_of(st.none(), st.binary(max_size=8))), max_size=3)
batch = st.lists(st.tuples(value, st.one_of(st.none(), st.binary(max_size=8)), headers), min_size=32, max_size=96)


def strict_json(raw: bytes) -> Any:
    """Parse ``raw`` as RFC 8259 JSON in UTF-8: no NaN/Infinity, no lone surrogates."""

    def no_constant(name: str) -> Any:
        raise AssertionError(f"non-standard JSON constant {name}")

    text = raw.decode("utf-8")  # strict: raises on invalid UTF-8
    obj = json.loads(text, parse_constant=no_constant)
    json.dumps(obj, ensure_ascii=False, allow_nan=False).encode("utf-8")  # lone surrogates would raise here
    return obj


@pytest.fixture(scope="module")
def rig(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from lmr.model.extractor import load_extractor

    ex = load_extractor(str(tiny_model))
    pipe = Pipeline(
        ModelManager(str(tiny_model), extractor=ex),
        extract=ExtractStage(threshold=0.05, batch_size=32, chunk_words=64, chunk_overlap=8, max_chunks=4),
        options=PipelineOptions(max_text_bytes=MAX_TEXT_BYTES, keep_events=True),
    )
    d = tmp_path_factory.mktemp("fuzz")
    return {"pipe": pipe, "dir": d, "schema": load_schema(), "n": [0], "seen": {"events": 0, "dlq": 0}}


def test_any_message_ends_as_one_event_or_one_dead_letter(rig: dict[str, Any]) -> None:
    pipe: Pipeline = rig["pipe"]
    validator = jsonschema.Draft202012Validator(rig["schema"])

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(batch)
    def check(items: list[tuple[bytes | None, bytes | None, list[tuple[str, bytes | None]]]]) -> None:
        rig["n"][0] += 1
        out, dlq = rig["dir"] / f"out{rig['n'][0]}.jsonl", rig["dir"] / f"dlq{rig['n'][0]}.jsonl"
        msgs = [Message(v, "fuzz", 0, i, k, tuple(h)) for i, (v, k, h) in enumerate(items)]
        result = pipe.process(msgs)  # any exception here fails the test
        sink = FileSink(out, dlq)
        assert sink.deliver(result.outputs, result.dlq, give_up=lambda: False)
        sink.close()
        assert len(result.outputs) + len(result.dlq) == len(msgs)
        where: list[int] = []
        for line in out.read_bytes().splitlines():
            ev = strict_json(line)
            validator.validate(ev)
            where.append(ev["lmr"]["source"]["offset"])
            text = ev[ev["lmr"]["text_field"]]
            for loc in ev["locations"]:
                assert text[loc["start"] : loc["end"]] == loc["text"]
            assert ev["lmr"]["chunks"] >= 1
        for line in dlq.read_bytes().splitlines():
            dl = strict_json(line)
            assert dl["lmr.error.reason"] in REASONS and dl["lmr.error.message"]
            where.append(int(dl["lmr.source.offset"]))
            original = msgs[int(dl["lmr.source.offset"])].value
            if original is None:
                assert dl["value"] is None, "a tombstone is dead-lettered as a tombstone"
            elif "value" in dl:
                assert dl["value"].encode("utf-8") == original
        assert sorted(where) == list(range(len(msgs))), "each message exactly once"
        rig["seen"]["events"] += len(result.outputs)
        rig["seen"]["dlq"] += len(result.dlq)

    check()
    seen = rig["seen"]
    assert seen["events"] > 0 and seen["dlq"] > 0, seen
