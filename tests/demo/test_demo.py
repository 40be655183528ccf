"""The demo (``make demo``) without its broker and training: the mixed sample it replays, the data its model
trains on, and its per-script summary of real events (the tiny model through the worker's file mode)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from demo.__main__ import ARABIC_SHARE, by_script, demo_settings, learn_memory, report, sample_stream
from geocode.geo import haversine_km
from geocode.memory import PlaceMemory
from lmr.language import script_of
from lmr.readers import expand_paths
from lmr.streams import LABEL_FIELDS
from worker.cli import main as worker_main


def test_the_sample_mixes_one_arabic_post_in_five_evenly(idrisi_dir: Path) -> None:
    posts = sample_stream(100)
    scripts = [script_of(p["text"]) for p in posts]
    assert ARABIC_SHARE == 0.2
    assert [i for i, s in enumerate(scripts) if s == "arabic"] == list(range(4, 100, 5))
    assert set(scripts) - {"arabic"} <= {"latin", "none", "other"} and scripts.count("latin") >= 75
    assert len({p["tweet_id"] for p in posts}) == 100, "no post twice"
    assert not any(k in p for p in posts for k in LABEL_FIELDS), "the Arabic posts come without their labels"
    assert sample_stream(100) == posts, "same sample every run"


def test_an_arabic_share_of_0_replays_english_only(idrisi_dir: Path) -> None:
    assert "arabic" not in {script_of(p["text"]) for p in sample_stream(60, 0)}
    assert [script_of(p["text"]) for p in sample_stream(6, 0.5)][1::2] == ["arabic"] * 3


def test_the_demo_model_trains_on_english_and_arabic_posts(idrisi_dir: Path, tmp_path: Path) -> None:
    s = demo_settings(tmp_path / "registry", 10)
    assert s.max_steps == 10 and s.name == "lmr-location-demo"
    assert s.oversample == ["arabic=2"]  # the production recipe's Arabic share
    firsts = [f.read_text(encoding="utf-8").splitlines()[0] for f in expand_paths(s.train)]
    assert {script_of(json.loads(line)["text"]) for line in firsts} == {"latin", "arabic"}


def test_the_demo_worker_remembers_the_places_annotators_gave_in_both_languages(
    idrisi_dir: Path, tmp_path: Path
) -> None:
    memory = PlaceMemory.load(learn_memory(tmp_path / "places.json"))
    kuwait, harvey = memory.lookup("#الكويت"), memory.lookup("Houston")
    assert kuwait is not None and haversine_km(kuwait.lat, kuwait.lon, 29.3, 47.7) < 161
    assert harvey is not None and harvey.country_code == "US"
    assert {src.split("/")[-1] for src in memory.sources} == {"train.jsonl"}, "train files only"


@pytest.mark.slow
def test_the_summary_counts_posts_and_mentions_per_script(
    idrisi_dir: Path, tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in sample_stream(20)), encoding="utf-8")
    args = ["run", "--model", str(tiny_model), "--source", f"file:{src}", "--sink", f"file:{out}"]
    res = CliRunner().invoke(worker_main, [*args, "--threshold", "0.05"])
    assert res.exit_code == 0, res.output
    events = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    rows = by_script(events)
    assert rows["arabic"]["posts"] == 4 and sum(r["posts"] for r in rows.values()) == 20
    for script, row in rows.items():
        mine = [e for e in events if e["lmr"]["script"] == script]
        assert row["mentions"] == sum(len(e["locations"]) for e in mine)
        assert row["located"] == sum(1 for e in mine if e["locations"])
    capsys.readouterr()
    report(events, Counter({"invalid_json": 1}), out)
    printed = capsys.readouterr().out
    assert "one English event" in printed and "one Arabic event" in printed
    arabic = [e for e in events if e["lmr"]["script"] == "arabic"]
    shown = next((e for e in arabic if e["locations"]), arabic[0])
    assert json.dumps(shown, ensure_ascii=False, indent=2) in printed, "an Arabic event in full, its text unescaped"
    assert f"arabic: 4 posts, {rows['arabic']['located']} with places, {rows['arabic']['mentions']} mentions" in printed
    assert "DLQ 1 {'invalid_json': 1}" in printed
    assert "0 of them from the place memory" in printed, "no geocoder, so no place from the memory"


def test_a_share_outside_0_to_1_stops_the_demo_before_it_trains(
    idrisi_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from demo.__main__ import main

    assert main(["--arabic-share", "1.5", "--registry", str(tmp_path / "registry")]) == 2
    assert "share 1.5 is not between 0 and 1" in capsys.readouterr().err
    assert not (tmp_path / "registry").exists(), "nothing trained"
