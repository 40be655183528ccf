"""trainer.data: spans aligned to words (the misaligned ones reported), train/eval split by events and seed."""

from pathlib import Path

import pytest

from lmr.errors import DataError
from lmr.readers import Example, Span, read_examples
from trainer.data import AlignmentReport, split_train_eval, to_gliner


def test_unaligned_spans_are_reported_not_silently_dropped() -> None:
    ex = Example("Houstonians flee", [Span(0, 7), Span(12, 16)], id="p1")
    rep = AlignmentReport()
    rec = to_gliner(ex, report=rep)
    assert rec["ner"] == [[1, 1, "location"]]  # "flee" aligns; "Houston" is inside "Houstonians"
    assert rep.total == 2 and rep.count == 1
    assert "Houston" in rep.summary()


def test_split_by_events_and_seed() -> None:
    exs = [Example(str(i), [], event="a" if i % 2 else "b") for i in range(20)]
    tr, ev = split_train_eval(exs, 0.1, 1, ["a"])
    assert {e.event for e in ev} == {"a"} and {e.event for e in tr} == {"b"}
    t1, e1 = split_train_eval(exs, 0.25, 7)
    _, e2 = split_train_eval(exs, 0.25, 7)
    assert [e.text for e in e1] == [e.text for e in e2] and len(e1) == 5 and len(t1) == 15
    with pytest.raises(DataError, match="not in the data"):
        split_train_eval(exs, 0.1, 1, ["zzz"])


def test_idrisi_all_gold_spans_align(idrisi_dir: Path) -> None:
    exs = read_examples([str(idrisi_dir / "lmr" / "*" / "train.jsonl")])
    rep = AlignmentReport()
    for ex in exs:
        to_gliner(ex, report=rep)
    assert rep.total > 9000
    assert rep.count == 0, rep.summary()
