"""The recognition recipe's parts: held-out events, coarse types, name-swap augmentation, the time budget."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lmr.errors import ConfigError, DataError
from lmr.readers import IDRISI_AR_TYPES, IDRISI_TYPES, Example, Span
from lmr.words import char_to_word_bounds, split_words
from trainer import augment, budget, crossval
from trainer import typed_labels as types
from trainer.settings import TrainSettings

POOL = augment.NamePool(
    {
        "country": ["Ecuador", "New Zealand", "Sri Lanka"],
        "admin1": ["Texas", "Khyber Pakhtunkhwa", "Western Cape"],
        "admin2": ["Harris County", "Galle", "Clutha District"],
        "city": ["Houston", "Port-au-Prince", "Kaikoura", "St. Louis"],
    },
    short=["Tx", "Fla", "Calif"],
    codes=["TX", "UK", "NYC"],
)


def _example(text: str, mentions: list[tuple[str, str]], event: str = "e") -> Example:
    spans = []
    for m, typ in mentions:
        s = text.index(m)
        spans.append(Span(s, s + len(m), "location", typ, m))
    return Example(text, spans, id=text[:10], event=event)


# --------------------------------------------------------------------------- held-out events


def test_standard_split_is_four_english_and_two_arabic_named_events() -> None:
    both = [*crossval.STANDARD_HELDOUT, *crossval.STANDARD_HELDOUT_AR]
    assert crossval.heldout_names(["standard"]) == both
    assert crossval.heldout_names(["standard", "ecuador_earthquake_2016", "x"]) == [*both, "x"]
    english = {"ecuador_earthquake_2016", "greece_wildfires_2018", "hurricane_florence_2018", "srilanka_floods_2017"}
    assert crossval.heldout_names(["standard"], known={*english, "kuwait_floods_2018"}) == list(
        crossval.STANDARD_HELDOUT
    )


def test_standard_split_holds_out_only_the_events_in_the_data() -> None:
    english = [_example("Flood in Galle", [("Galle", "City/town")], ev) for ev in ("srilanka_floods_2017", "a")]
    arabic = [_example("سيول في الكويت", [("الكويت", "CITY")], ev) for ev in ("cairo_bombing_2019", "covid_2019")]
    t, _, h = crossval.split_heldout([*english, *arabic], [], ["standard"])
    assert {e.event for e in h} == {"srilanka_floods_2017", "cairo_bombing_2019"}
    assert {e.event for e in t} == {"a", "covid_2019"}
    with pytest.raises(DataError, match="names no event"):
        crossval.split_heldout([english[1]], [], ["standard"])


def test_split_heldout_removes_events_from_training_and_selection() -> None:
    train = [_example("Flood in Galle", [("Galle", "City/town")], ev) for ev in ("a", "b", "c")]
    select = [_example("Rain in Quito", [("Quito", "City/town")], ev) for ev in ("a", "b")]
    t, s, h = crossval.split_heldout(train, select, ["b"])
    assert {e.event for e in t} == {"a", "c"} and {e.event for e in s} == {"a"}
    assert len(h) == 2 and {e.event for e in h} == {"b"}
    assert crossval.split_heldout(train, select, []) == (train, select, [])
    with pytest.raises(DataError, match="not in the data"):
        crossval.split_heldout(train, select, ["nope"])
    with pytest.raises(DataError, match="held-out event"):
        crossval.split_heldout(train, select, ["a", "b", "c"])


@given(st.lists(st.text("abcdefgh_", min_size=1, max_size=6), min_size=2, max_size=20, unique=True), st.data())
def test_event_folds_partition_every_event_once(events: list[str], data: st.DataObject) -> None:
    k = data.draw(st.integers(2, len(events)))
    seed = data.draw(st.integers(0, 5))
    folds = crossval.event_folds(events, k, seed)
    flat = [e for f in folds for e in f]
    assert sorted(flat) == sorted(events) and len(folds) == k
    assert max(map(len, folds)) - min(map(len, folds)) <= 1
    assert folds == crossval.event_folds(list(reversed(events)), k, seed)  # input order does not matter


def test_pool_micro_averages_counts() -> None:
    a = {"tp": 8, "n_pred": 10, "n_gold": 10, "by_group": {"x": {"f1": 0.8}}}
    b = {"tp": 0, "n_pred": 0, "n_gold": 10, "by_group": {"y": {"f1": 0.0}}}
    p = crossval.pool([a, b])
    assert p["precision"] == 0.8 and p["recall"] == 0.4 and set(p["by_event"]) == {"x", "y"}


# --------------------------------------------------------------------------- types


def test_every_idrisi_type_has_a_coarse_type() -> None:
    assert set(types.COARSE_OF) == set(IDRISI_TYPES) | set(IDRISI_AR_TYPES)  # English types, Arabic codes
    assert set(types.COARSE_OF.values()) == set(types.COARSE_TYPES)
    assert types.coarse_type("something new") == "other"


def test_relabel_and_typed_scores() -> None:
    ex = _example("Flooding in Houston, Texas", [("Houston", "City/town"), ("Texas", "State")])
    (coarse,) = types.relabel([ex], "coarse")
    assert [sp.label for sp in coarse.spans] == ["city", "admin"]
    assert [sp.label for sp in types.relabel([ex], "none")[0].spans] == ["location", "location"]
    with pytest.raises(ConfigError):
        types.relabel([ex], "medium")
    right, wrong = coarse.spans
    pred = [Span(right.start, right.end, "city"), Span(wrong.start, wrong.end, "country")]
    r = types.typed_scores([coarse], [pred])
    assert r["untyped_f1"] == 1.0 and r["typed_f1"] == 0.5
    assert r["by_label"]["city"]["f1"] == 1.0 and r["by_label"]["admin"]["recall"] == 0.0
    assert r["by_label"]["country"]["precision"] == 0.0


# --------------------------------------------------------------------------- augmentation

_WORDS = st.sampled_from(["flood", "in", "near", "the", "rescue", "RT", "@user", "!", "2018", "#help", "😢"])
_PLACES = st.sampled_from(
    [
        ("Houston", "City/town"),
        ("#Houston", "City/town"),
        ("#houston", "City/town"),
        ("TEXAS", "State"),
        ("texas", "State"),
        ("Tx", "State"),
        ("NYC", "City/town"),
        ("Sri Lanka", "Country"),
        ("Galle district", "District"),
        ("Molesworth St", "Road/street"),
    ]
)


@st.composite
def posts(draw: st.DrawFn) -> Example:
    parts: list[str] = []
    spans: list[Span] = []
    for _ in range(draw(st.integers(1, 8))):
        if draw(st.booleans()):
            name, typ = draw(_PLACES)
            start = sum(len(p) + 1 for p in parts)
            spans.append(Span(start, start + len(name), "location", typ, name))
            parts.append(name)
        else:
            parts.append(draw(_WORDS))
    return Example(" ".join(parts), spans, id="p", event="e")


@settings(max_examples=150, deadline=None)
@given(posts(), st.integers(0, 1000))
def test_name_swap_rewrites_offsets_and_keeps_style(ex: Example, seed: int) -> None:
    new = augment.swap_names(ex, POOL, random.Random(seed))
    assert new == augment.swap_names(ex, POOL, random.Random(seed))  # seeded
    assert len(new.spans) == len(ex.spans)
    starts, ends = char_to_word_bounds(split_words(new.text))
    pos_old = pos_new = 0
    for old, sp in zip(ex.spans, new.spans, strict=True):
        assert new.text[sp.start : sp.end] == sp.text and sp.type == old.type
        assert sp.start in starts and sp.end in ends  # still on word boundaries
        assert ex.text[pos_old : old.start] == new.text[pos_new : sp.start]  # context unchanged
        pos_old, pos_new = old.end, sp.end
        o = old.text
        if o.startswith("#"):
            assert sp.text.startswith("#")
        elif o.isupper() and len(o) > 3:
            assert sp.text.isupper()
        elif o.islower():
            assert sp.text.islower()
        if old.type == "Road/street":
            assert sp.text == o  # no gazetteer class: kept
    assert ex.text[pos_old:] == new.text[pos_new:]
    same: dict[str, set[str]] = {}
    for old, sp in zip(ex.spans, new.spans, strict=True):  # one place per mention text in a post
        if len(old.text.strip("#")) > 3:
            same.setdefault(old.text.lstrip("#").casefold(), set()).add("".join(filter(str.isalpha, sp.text.lower())))
    assert all(len(v) == 1 for v in same.values())


@settings(max_examples=100, deadline=None)
@given(posts(), st.integers(0, 1000))
def test_case_noise_keeps_offsets_and_mentions(ex: Example, seed: int) -> None:
    new = augment.add_case_noise(ex, random.Random(seed), share=0.5)
    assert len(new.text) == len(ex.text) and new.text.lower() == ex.text.lower()
    assert [new.text[s.start : s.end] for s in new.spans] == [ex.text[s.start : s.end] for s in ex.spans]


def test_augment_share_and_seed() -> None:
    exs = [_example(f"Storm hits Houston today {i}", [("Houston", "City/town")]) for i in range(200)]
    out, rep = augment.augment(exs, name_swap=0.5, case_noise=0.0, seed=3, pool=POOL)
    assert 60 < rep.swapped < 140 and rep.case_noised == 0
    assert out == augment.augment(exs, name_swap=0.5, case_noise=0.0, seed=3, pool=POOL)[0]
    assert sum(o.text != e.text for o, e in zip(out, exs, strict=True)) == rep.swapped


# --------------------------------------------------------------------------- budget


def test_budget_mode_trains_until_the_budget() -> None:
    s = TrainSettings.from_params({"train": ["x"], "encoder": "enc", "time_budget_min": 40.0}, {"time_budget_min"})
    assert s.epochs == budget.BUDGET_EPOCHS and s.early_stopping == budget.BUDGET_PATIENCE
    assert s.lr_scheduler == "time-linear" and budget.scheduler_for_trainer(s.lr_scheduler) == "constant"
    s2 = TrainSettings.from_params(
        {"train": ["x"], "encoder": "enc", "time_budget_min": 40.0, "epochs": 2.0, "early_stopping": 0},
        {"time_budget_min", "epochs", "early_stopping"},
    )
    assert s2.epochs == 2.0 and s2.early_stopping == 0
    s3 = TrainSettings.from_params({"train": ["x"], "encoder": "enc"}, set())
    assert s3.epochs == 1.0 and s3.lr_scheduler == "linear"  # no budget: the preset as before


@given(st.floats(0, 2000), st.floats(1, 1000), st.floats(0, 0.5))
def test_lr_factor_warms_up_then_reaches_zero_at_the_end(t: float, total: float, warm: float) -> None:
    f = budget.lr_factor(t, total, warm)
    assert 0 <= f <= 1
    if t >= total:
        assert f == 0
    assert budget.lr_factor(total * warm, total, warm) == pytest.approx(1.0) or warm == 0


# --------------------------------------------------------------------------- end to end


def _word_embeddings(directory: Path) -> Any:
    from safetensors.torch import load_file

    weights = load_file(str(next(directory.glob("*.safetensors"))))
    return next(v for k, v in weights.items() if k.endswith("word_embeddings.weight"))


@pytest.mark.slow
def test_crossval_trains_each_fold_without_its_events(tmp_path: Path) -> None:
    """Two tiny events, two folds: each model is scored on the event it never saw; typed model loads as usual."""
    from click.testing import CliRunner

    from lmr.model.extractor import load_extractor
    from tests.conftest import tiny_idrisi_records
    from trainer.cli import main
    from trainer.model import offline_encoder

    for event in ("storm_a", "storm_b"):
        (tmp_path / event).mkdir()
        lines = [json.dumps({**r, "tweet_id": f"{event}-{r['tweet_id']}"}) for r in tiny_idrisi_records()]
        (tmp_path / event / "train.jsonl").write_text("\n".join(lines) + "\n")
    reg = tmp_path / "registry"
    args = ["crossval", "--folds", "2", "--report", str(tmp_path / "cv.json"), "--"]
    args += ["--train", str(tmp_path / "*" / "train.jsonl"), "--encoder", "offline", "--types", "coarse"]
    args += ["--case-noise", "0.5", "--max-steps", "2", "--eval-fraction", "0.25", "--batch-size", "4"]
    args += ["--freeze-embeddings", "on"]
    args += ["--registry", str(reg), "--output-dir", str(tmp_path / "runs"), "--name", "cv"]
    res = CliRunner().invoke(main, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    report = json.loads((tmp_path / "cv.json").read_text())
    assert sorted(e for f in report["folds"] for e in f["events"]) == ["storm_a", "storm_b"]
    assert set(report["pooled_heldout"]["by_event"]) == {"storm_a", "storm_b"}
    for fold in report["folds"]:
        version = reg / f"cv-fold{fold['fold']}" / "v1"
        metrics = json.loads((version / "eval_metrics.json").read_text())
        assert set(metrics["heldout"]["by_group"]) == set(fold["events"])  # scored on its held-out event only
        assert 0 <= metrics["heldout_typed"]["typed_f1"] <= metrics["heldout_typed"]["untyped_f1"] + 1e-9
        card = (version / "README.md").read_text()
        assert "In-domain vs held-out events" in card and "Typed F1" in card and "case noise 0.5" in card
        assert "word_embeddings: frozen (" in card
        pretrained = _word_embeddings(Path(offline_encoder()))  # GLiNER appends its marker tokens' rows
        assert _word_embeddings(version)[: len(pretrained)].equal(pretrained)
    ex = load_extractor(str(reg / "cv-fold0"))
    assert ex.spec.labels == list(types.COARSE_TYPES)
    for m in ex.predict(["Flooding reported in Houston, Texas tonight"], threshold=0.0001)[0]:
        assert m.label in types.COARSE_TYPES
