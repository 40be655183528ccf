import pytest

from lmr.mentions import Mention
from lmr.readers import Span
from lmr.scoring import SpanScorer, best_threshold


def m(s: int, e: int, score: float = 0.9) -> Mention:
    return Mention("", s, e, score)


def test_exact_overlap_and_wer_hand_checked() -> None:
    text = "Floods in Houston and Harris County"
    gold = [Span(10, 17, type="City/town"), Span(22, 35, type="County")]
    pred = [m(10, 17), m(22, 28)]  # Houston exact, "Harris" overlaps "Harris County"
    sc = SpanScorer()
    sc.add(text, gold, pred, "ev")
    r = sc.result()
    assert (r["tp"], r["n_pred"], r["n_gold"]) == (1, 2, 2)
    assert r["precision"] == 0.5 and r["recall"] == 0.5 and r["f1"] == 0.5
    assert r["overlap_f1"] == 1.0
    # gold words: Houston Harris County; hyp: Houston Harris -> one deletion of three words
    assert r["wer"] == pytest.approx(1 / 3, abs=1e-4)
    assert r["recall_by_type"] == {"City/town": {"recall": 1.0, "n": 1}, "County": {"recall": 0.0, "n": 1}}
    assert r["by_group"]["ev"]["f1"] == 0.5


def test_negatives_and_empty() -> None:
    sc = SpanScorer()
    sc.add("nothing here", [], [], "")
    assert sc.result()["f1"] == 1.0  # nothing to find, nothing found
    sc.add("Texas", [Span(0, 5)], [], "")
    r = sc.result()
    assert r["recall"] == 0.0 and r["wer"] == 1.0 and r["n_posts"] == 2


def test_overlap_matches_each_gold_once() -> None:
    sc = SpanScorer()
    sc.add("New York City", [Span(0, 13)], [m(0, 3), m(4, 8)], "")
    r = sc.result()
    assert r["overlap_precision"] == 0.5 and r["overlap_recall"] == 1.0


def test_best_threshold_picks_the_f1_maximum() -> None:
    gold = [[Span(0, 5)], [Span(0, 3)]]
    preds = [[m(0, 5, 0.9), m(6, 9, 0.3)], [m(0, 3, 0.6)]]
    t, f1 = best_threshold(["", ""], gold, preds)
    assert 0.3 < t <= 0.6 and f1 == 1.0
