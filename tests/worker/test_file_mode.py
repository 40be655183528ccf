"""File mode (same pipeline, no Kafka), evaluation, long-post chunking and secrets in logs, with the tiny real model."""

from __future__ import annotations

import itertools
import json
import logging
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner

from lmr.words import split_words
from tests.conftest import tiny_idrisi_records
from worker.app import Worker
from worker.cli import main
from worker.events import load_schema
from worker.extract import ExtractStage
from worker.parse import Message, Post
from worker.pipeline import Pipeline, PipelineOptions
from worker.reload import ModelManager
from worker.settings import WorkerSettings


@pytest.fixture(scope="module")
def extractor(tiny_model: Path) -> Any:
    from lmr.model.extractor import load_extractor

    return load_extractor(str(tiny_model))


def test_file_mode_and_evaluate(tiny_model: Path, tiny_data: Path, tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    lines = [json.dumps(r) for r in tiny_idrisi_records()] + ["not json", json.dumps({"id": "x", "text": ""})]
    src.write_text("\n".join(lines) + "\n")
    out, dlq = tmp_path / "out.jsonl", tmp_path / "dlq.jsonl"
    runner = CliRunner()
    args = [
        "run",
        "--model",
        str(tiny_model),
        "--source",
        f"file:{src}",
        "--sink",
        f"file:{out}",
        "--dlq",
        f"file:{dlq}",
    ]
    res = runner.invoke(main, [*args, "--threshold", "0.05"])
    assert res.exit_code == 0, res.output
    events = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(events) == len(tiny_idrisi_records())
    schema = load_schema()
    for ev, rec in zip(events, tiny_idrisi_records(), strict=True):
        jsonschema.validate(ev, schema)
        assert ev["tweet_id"] == rec["tweet_id"] and ev["location_mentions"] == rec["location_mentions"]
        assert ev["lmr"]["source"]["topic"] == f"file:{src}"
        for loc in ev["locations"]:
            assert ev["text"][loc["start"] : loc["end"]] == loc["text"]
    dead = [json.loads(x) for x in dlq.read_text().splitlines()]
    assert [d["lmr.error.reason"] for d in dead] == ["not_json", "empty_text"]
    assert dead[0]["value"] == "not json" and dead[0]["lmr.source.offset"] == str(len(lines) - 2)

    res = runner.invoke(main, ["evaluate", str(out), str(tiny_data), "--json"])
    assert res.exit_code == 0, res.output
    score = json.loads(res.output)
    assert score["n_posts"] == len(tiny_idrisi_records()) and score["missing_posts"] == 0
    assert score["n_pred"] == sum(len(e["locations"]) for e in events)
    assert score["n_gold"] == sum(len(r["location_mentions"]) for r in tiny_idrisi_records())  # type: ignore[arg-type, misc]
    assert 0.0 <= score["f1"] <= 1.0 and score["models"] == ["tiny@v1"]
    res = runner.invoke(main, ["evaluate", str(out), str(tiny_data)])
    assert res.exit_code == 0 and "F1" in res.output and "WER" in res.output
    res = runner.invoke(main, ["evaluate", str(src), str(tiny_data)])
    assert res.exit_code != 0 and "not an enriched event" in res.output


def test_runtime_flag_picks_the_inference_path_with_identical_spans(tiny_model: Path, tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in tiny_idrisi_records()) + "\n")
    spans: dict[str, list[list[tuple[int, int]]]] = {}
    for runtime in ("torch", "fused", "onnx"):
        out = tmp_path / f"{runtime}.jsonl"
        args = ["run", "--model", str(tiny_model), "--source", f"file:{src}", "--sink", f"file:{out}"]
        res = CliRunner().invoke(main, [*args, "--threshold", "0.05", "--runtime", runtime])
        assert res.exit_code == 0, res.output
        events = [json.loads(x) for x in out.read_text().splitlines()]
        spans[runtime] = [[(loc["start"], loc["end"]) for loc in e["locations"]] for e in events]
        assert {e["lmr"]["runtime"] for e in events} == {runtime}
    assert any(spans["torch"]), "the tiny model should predict something at threshold 0.05"
    assert spans["fused"] == spans["torch"] and spans["onnx"] == spans["torch"]
    res = CliRunner().invoke(main, ["run", "--model", str(tiny_model), "--runtime", "tensorrt"])
    assert res.exit_code != 0 and "tensorrt" in res.output


def test_long_posts_are_chunked_with_exact_offsets(tiny_model: Path, extractor: Any) -> None:
    base = "Flooding reported in Houston, Texas tonight. Evacuations near Victoria and Beaumont. "
    text = base * 12  # ~150 words
    msgs = [Message(json.dumps({"id": "long", "text": text}).encode(), "t", 0, 0)]
    models = ModelManager(str(tiny_model), extractor=extractor)
    whole = Pipeline(models, extract=ExtractStage(threshold=0.05), options=PipelineOptions(keep_events=True))
    chunked = Pipeline(
        models,
        extract=ExtractStage(threshold=0.05, chunk_words=24, chunk_overlap=6),
        options=PipelineOptions(keep_events=True),
    )
    capped = Pipeline(
        models,
        extract=ExtractStage(threshold=0.05, chunk_words=24, chunk_overlap=6, max_chunks=2),
        options=PipelineOptions(keep_events=True),
    )
    ev_whole = whole.process(msgs).events[0]
    ev = chunked.process(msgs).events[0]
    ev_cap = capped.process(msgs).events[0]
    assert ev_whole["lmr"]["chunks"] == 1 and not ev_whole["lmr"]["truncated"]
    assert ev["lmr"]["chunks"] > 5 and not ev["lmr"]["truncated"]
    assert ev_cap["lmr"]["chunks"] == 2 and ev_cap["lmr"]["truncated"]
    locs = ev["locations"]
    assert locs, "threshold 0.05 should find mentions"
    spans = [(x["start"], x["end"]) for x in locs]
    assert spans == sorted(spans) and len(set(spans)) == len(spans)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans)), "merged mentions do not overlap"
    for x in locs:
        assert text[x["start"] : x["end"]] == x["text"]
    assert max(x["end"] for x in locs) > len(text) // 2, "mentions are found beyond the first window"
    assert max(x["end"] for x in ev_cap["locations"]) <= len(" ".join(text.split()[:60])) + 20


def test_pipeline_runs_in_process(tiny_model: Path, extractor: Any) -> None:
    lines = [json.dumps({"id": i, "text": f"Storm hits Miami, Florida, update {i}"}) for i in range(20)] + ["oops"]
    pipe = Pipeline(ModelManager(str(tiny_model), extractor=extractor))
    r = pipe.process([Message(line.encode(), "t", 0, i) for i, line in enumerate(lines)])
    assert r.messages == 21 and len(r.outputs) == 20 and r.dlq_reasons == ["not_json"]
    assert r.inference_s > 0 and r.model_id == "tiny@v1"


def test_on_processing_error_false_stops_without_commit(tiny_model: Path, extractor: Any, tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(
        json.dumps({"id": 1, "text": "Rain in Houston"}) + "\nnot json\n" + json.dumps({"id": 2, "text": "x"}) + "\n"
    )
    s = WorkerSettings(
        model=str(tiny_model), source=f"file:{src}", sink=f"file:{tmp_path / 'out.jsonl'}", batch_size=10
    )
    seen: list[tuple[str, int]] = []

    def strict(exc: BaseException, message: Message, logger: logging.Logger) -> bool:
        seen.append((type(exc).__name__, message.offset))
        return False

    w = Worker(s, models=ModelManager(str(tiny_model), extractor=extractor), on_processing_error=strict)
    assert w.run() == 1
    assert seen == [("DataError", 1)]
    assert w.committed == {} and not (tmp_path / "out.jsonl").read_text()


def test_worker_logs_never_show_the_sasl_password(
    tiny_model: Path, extractor: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "hunter2-very-secret-77"
    monkeypatch.setenv("LMR_SASL_PASSWORD", secret)
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"id": 1, "text": "Rain in Houston"}) + "\n")
    s = WorkerSettings.from_params(
        {
            "model": str(tiny_model),
            "source": f"file:{src}",
            "sink": f"file:{tmp_path / 'o.jsonl'}",
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": "PLAIN",
            "sasl_username": "lmr",
        }
    )
    with caplog.at_level(logging.DEBUG):
        assert Worker(s, models=ModelManager(str(tiny_model), extractor=extractor)).run() == 0
    assert "worker settings" in caplog.text and "sasl_username" in caplog.text
    assert secret not in caplog.text
    assert secret not in repr(s)


def test_post_ids_become_output_keys(tiny_model: Path, extractor: Any) -> None:
    pipe = Pipeline(ModelManager(str(tiny_model), extractor=extractor))
    r = pipe.process(
        [
            Message(b'{"id": 5, "text": "Rain in Houston"}', "t", 0, 0),
            Message(b'{"id": 6, "text": "Rain in Houston"}', "t", 0, 1, key=b"given"),
            Message(b'{"text": "Rain in Houston"}', "t", 0, 2),
        ]
    )
    assert [o.key for o in r.outputs] == [b"5", b"given", None]
    assert isinstance(Post, type)


def test_windows_count_sub_word_pieces_so_nothing_is_cut_silently(tiny_model: Path, extractor: Any) -> None:
    """Windows by the encoder's pieces (case markers included), not words; ``truncated`` only when text was unread."""
    proc = extractor.model.data_processor
    limit = proc.transformer_tokenizer.model_max_length
    seen: list[int] = []
    inner = extractor.predict_words

    def counting(words_list: Any, texts: Any, **kw: Any) -> Any:
        for ws in words_list:  # what the encoder gets before truncation: label prompt, window, special tokens
            prompted, _ = proc.prepare_inputs([_marked(extractor, ws)], list(extractor.spec.labels))
            seen.append(
                len(proc.transformer_tokenizer(prompted[0], is_split_into_words=True, verbose=False)["input_ids"])
            )
        return inner(words_list, texts, **kw)

    capitals = [
        "Flooding",
        "In",
        "Houston",
        "Texas",
        "Near",
        "Victoria",
        "And",
        "Beaumont",
        "Tonight",
        "NYC",
        "Reports",
    ]
    english = " ".join((capitals * 40)[:384])  # 384 words (the model's word limit), ~800 pieces with case markers
    chinese = " ".join("東京大阪地震洪水救援中心"[: 1 + i % 11] for i in range(110))  # 110 words, ~650 pieces
    one_word = "地" * (extractor.max_pieces + 20)  # a single word longer than the encoder's input
    texts = [english, chinese, one_word]
    msgs = [Message(json.dumps({"id": i, "text": t}).encode(), "t", 0, i) for i, t in enumerate(texts)]
    extractor.predict_words = counting
    try:
        pipe = Pipeline(ModelManager(str(tiny_model), extractor=extractor), options=PipelineOptions(keep_events=True))
        events = pipe.process(msgs).events
    finally:
        del extractor.predict_words
    assert len(split_words(english)) == extractor.max_words < sum(extractor.word_pieces([split_words(english)])[0])
    assert len([n for n in seen if n > limit]) == 1, "only the over-long single word exceeds the encoder's input"
    en, zh, big = events
    assert en["lmr"]["chunks"] >= 2 and not en["lmr"]["truncated"]
    assert zh["lmr"]["chunks"] >= 2 and not zh["lmr"]["truncated"]
    assert big["lmr"]["chunks"] == 1 and big["lmr"]["truncated"], "a word past the encoder's limit is not fully read"


def _marked(extractor: Any, words: Any) -> list[str]:
    from lmr.model.extractor import model_tokens

    return model_tokens(words, extractor.spec.case_markers)


def test_a_failure_building_one_event_dead_letters_only_that_message(tiny_model: Path, extractor: Any) -> None:
    """A stage failing on one post (here a geocoder raising on a marker) is isolated: reason internal_error."""

    class Geo:
        def resolve(self, mentions: Any, post: dict[str, Any], text: str, deadline: Any = None) -> list[Any]:
            if "BOOM" in text:
                raise KeyError("simulated bug")
            return [None] * len(mentions)

        def stats(self) -> dict[str, Any]:
            return {}

    pipe = Pipeline(ModelManager(str(tiny_model), extractor=extractor), geo=Geo())
    values = [
        b'{"id": 1, "text": "Rain in Houston"}',
        b'{"id": 2, "text": "BOOM in Houston"}',
        b'{"id": 3, "text": "x"}',
    ]
    r = pipe.process([Message(v, "t", 0, i) for i, v in enumerate(values)])
    assert [json.loads(o.value or b"")["id"] for o in r.outputs] == [1, 3]
    assert r.dlq_reasons == ["internal_error"] and r.dlq[0].value == values[1]
    assert b"simulated bug" in (dict(r.dlq[0].headers)["lmr.error.message"] or b"")


def test_geocoder_flags_reach_the_resolver(tiny_model: Path, tmp_path: Path) -> None:
    """--no-geocoder-prior, --geocoder-offline-fallback and --geocoder-rate-file are the resolver's, not ignored."""
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in tiny_idrisi_records()) + "\n")
    for flags, said in (([], "stream prior on"), (["--no-geocoder-prior"], "stream prior off")):
        out = tmp_path / f"out-{len(flags)}.jsonl"
        args = ["run", "--model", str(tiny_model), "--source", f"file:{src}", "--sink", f"file:{out}"]
        res = CliRunner().invoke(main, [*args, "--geocoder", "offline", "--threshold", "0.05", *flags])
        assert res.exit_code == 0, res.output
        assert said in res.output
        events = [json.loads(x) for x in out.read_text().splitlines()]
        assert len(events) == len(tiny_idrisi_records())
        assert all("geo" in loc for ev in events for loc in ev["locations"])
    settings = WorkerSettings.from_params(
        {
            "model": str(tiny_model),
            "geocoder": "offline",
            "geocoder_offline_fallback": True,
            "geocoder_rate_file": str(tmp_path / "rate"),
        }
    )
    assert settings.geocoder_prior and settings.geocoder_offline_fallback
    assert settings.geocoder_rate_file == str(tmp_path / "rate")
