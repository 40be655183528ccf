"""Self-training (``--unlabeled`` + ``--teacher``): repeats of selection/held-out posts dropped, labels from a
real teacher, a teacher that saw a held-out event refused, the card's record."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from lmr.errors import ConfigError
from lmr.readers import Example
from tests.conftest import tiny_idrisi_records
from trainer import selftrain
from trainer.cli import main
from trainer.settings import TrainSettings

UNLABELED = [
    "Roads closed in Beaumont and Victoria after the storm",
    "Thinking of everyone tonight",
    "Shelters open across Texas",
]

words = st.sampled_from(["flood", "in", "Houston", "RT", "@bob:", "help", "Texas", "http://t.co/x", "now", "!"])
texts = st.lists(words, min_size=0, max_size=8).map(" ".join)


@settings(max_examples=200, deadline=None)
@given(st.lists(texts, max_size=12), st.lists(texts, max_size=6))
def test_distinct_posts_never_keeps_a_core_text_twice_or_one_to_avoid(posts: list[str], avoid: list[str]) -> None:
    given_posts = [Example(t, []) for t in posts]
    got, dropped = selftrain.distinct_posts(given_posts, [Example(t, []) for t in avoid])
    cores = [selftrain._core(e.text) for e in got]
    avoided = {selftrain._core(t) for t in avoid}
    assert len(cores) == len(set(cores)) and all(cores) and not set(cores) & avoided
    assert {selftrain._core(t) for t in posts} - avoided - {""} == set(cores)  # every new text is kept once
    positions = [next(i for i, p in enumerate(given_posts) if p is e) for e in got]
    assert positions == sorted(positions) and dropped == len(posts) - len(got)  # in order


def test_a_retweet_of_a_held_out_post_is_dropped() -> None:
    held = Example("Flooding in Galle tonight https://t.co/a", [])
    got, dropped = selftrain.distinct_posts(
        [Example("RT @news: Flooding in  galle tonight https://t.co/b", []), Example("Rain in Galle", [])], [held]
    )
    assert [e.text for e in got] == ["Rain in Galle"] and dropped == 1


def test_teacher_labels_map_onto_the_student_labels() -> None:
    assert selftrain.label_map(["location"], ["location"]) == {"location": "location"}
    assert selftrain.label_map(["city", "country"], ["location"]) == {"city": "location", "country": "location"}
    assert selftrain.label_map(["city"], ["city", "country"]) == {"city": "city"}
    with pytest.raises(ConfigError, match="do not fit"):
        selftrain.label_map(["location"], ["city", "country"])


def _card(tmp_path: Path, train_events: list[str], heldout: list[str]) -> Path:
    d = tmp_path / "teacher"
    d.mkdir(exist_ok=True)
    files = [{"path": f"/data/{e}/train.jsonl"} for e in train_events]
    (d / "card.json").write_text(json.dumps({"data": {"train_files": files, "heldout_events": heldout}}))
    return d


def test_a_teacher_that_trained_on_a_held_out_event_is_refused(tmp_path: Path) -> None:
    seen = _card(tmp_path, ["storm_a", "storm_b"], [])
    with pytest.raises(ConfigError, match="storm_b"):
        selftrain.check_blind(str(seen), ["storm_b"])
    selftrain.check_blind(str(seen), [])  # nothing held out: any teacher
    blind = _card(tmp_path, ["storm_a", "storm_b"], ["storm_b"])  # read storm_b's file but held it out
    selftrain.check_blind(str(blind), ["storm_b"])
    selftrain.check_blind(str(tmp_path / "no-card"), ["storm_b"])  # cannot tell: a warning, not an error


def test_self_training_settings_need_both_parts() -> None:
    with pytest.raises(ConfigError, match="both --unlabeled"):
        TrainSettings(train=["x"], unlabeled=["u.jsonl"]).validate()
    with pytest.raises(ConfigError, match="both --unlabeled"):
        TrainSettings(train=["x"], teacher="REG/m").validate()
    with pytest.raises(ConfigError, match="--pseudo-threshold"):
        TrainSettings(train=["x"], unlabeled=["u"], teacher="REG/m", pseudo_threshold=1.5).validate()


def test_pseudo_labels_are_the_teachers_mentions(tiny_model: Path) -> None:
    from lmr.model.extractor import load_extractor

    teacher = load_extractor(str(tiny_model))
    posts = [Example(t, [], id=str(i), event="live") for i, t in enumerate(UNLABELED)]
    got, report = selftrain.pseudo_label(teacher, posts, ["location"], threshold=0.01)
    expected = teacher.predict(UNLABELED, threshold=0.01)
    assert [[(s.start, s.end) for s in e.spans] for e in got] == [[(m.start, m.end) for m in ms] for ms in expected]
    assert report.mentions == sum(map(len, expected)) > 0 and report.posts == 3
    for e in got:
        assert e.meta["pseudo"] and all(e.text[s.start : s.end] == s.text and s.label == "location" for s in e.spans)


@pytest.mark.slow
def test_run_self_trains_on_unlabeled_posts_and_records_it(tiny_model: Path, tmp_path: Path) -> None:
    for event in ("storm_a", "storm_b"):
        (tmp_path / event).mkdir()
        lines = [json.dumps({**r, "tweet_id": f"{event}-{r['tweet_id']}"}) for r in tiny_idrisi_records()]
        (tmp_path / event / "train.jsonl").write_text("\n".join(lines) + "\n")
    held_text = str(tiny_idrisi_records()[0]["text"])
    unlabeled = tmp_path / "stream" / "test_unlabeled.jsonl"
    unlabeled.parent.mkdir()
    rows = [{"text": t} for t in [*UNLABELED, f"RT @wx: {held_text}"]]
    unlabeled.write_text("".join(json.dumps(r) + "\n" for r in rows))
    reg = tmp_path / "registry"
    args = ["run", "--train", str(tmp_path / "storm_*" / "train.jsonl"), "--encoder", "offline"]
    args += ["--heldout-events", "storm_b", "--unlabeled", str(unlabeled), "--teacher", str(tiny_model)]
    args += ["--max-steps", "2", "--eval-fraction", "0.25", "--batch-size", "4", "--no-average-checkpoints"]
    args += ["--registry", str(reg), "--output-dir", str(tmp_path / "runs"), "--name", "student"]
    res = CliRunner().invoke(main, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    card = json.loads((reg / "student" / "v1" / "card.json").read_text())
    st_ = card["data"]["self_training"]
    assert st_["posts"] == 3 and st_["dropped_duplicates"] == 1  # the retweet of a held-out post is not trained on
    assert st_["teacher"] == "tiny@v1" and st_["unlabeled_files"][0]["path"] == str(unlabeled)
    assert card["data"]["n_train_posts"] == 8 - card["data"]["n_eval_posts"] + 3  # storm_a's, less selection, + 3
    readme = (reg / "student" / "v1" / "README.md").read_text()
    assert "self-training: 3 unlabeled posts labelled by `tiny@v1`" in readme

    no_heldout = [a for a in args[1:] if a not in ("--heldout-events", "storm_b")]
    refused = CliRunner().invoke(main, ["crossval", "--folds", "2", "--", *no_heldout])
    assert refused.exit_code != 0 and "cannot self-train" in refused.output
