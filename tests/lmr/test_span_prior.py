"""The span prior: lexicon lookups, features, flat decoding, the fit, and a published model that carries it."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lmr.errors import DataError
from lmr.model.span_prior import (
    FEATURES,
    KINDS,
    LEXICON_FILE,
    Candidate,
    Lexicon,
    SpanPrior,
    greedy,
    span_features,
)
from tests.conftest import tiny_settings

NAMES = [
    ("houston", "city", 2_314_157, False),
    ("houston", "admin2", 97_692, False),
    ("north carolina", "admin1", 10_000_000, False),
    ("nc", "admin1", 10_000_000, True),  # a code: matched only in capitals
    ("new orleans", "city", 390_000, False),
    ("mati", "city", 105_908, False),
    ("europe", "continent", 0, False),  # not a kind the prior reads
]


def _lexicon() -> Lexicon:
    return Lexicon.build(NAMES)


def test_lookups_follow_the_mention_s_surface() -> None:
    lex = _lexicon()
    city, admin1, admin2 = (1 << KINDS.index(k) for k in ("city", "admin1", "admin2"))
    assert lex.lookup("Houston") == (city | admin2, 6.4)
    assert lex.lookup("#NewOrleans")[0] == city, "a hashtag is split at camel case"
    assert lex.lookup("NC")[0] == admin1, "a code in capitals"
    assert lex.lookup("nc") == (0, 0.0), "a code in lower case is a word, not a place"
    assert lex.lookup("Europe") == (0, 0.0), "continents are not a kind the prior reads"
    assert lex.lookup("flooding") == (0, 0.0)


def test_a_lexicon_survives_saving_and_a_corrupt_one_names_its_line(tmp_path: Path) -> None:
    import gzip

    lex = _lexicon()
    lex.save(tmp_path)
    again = Lexicon.load(tmp_path)
    assert again.entries == lex.entries
    with gzip.open(tmp_path / LEXICON_FILE, "at", encoding="utf-8") as f:
        f.write("broken\tx\n")
    with pytest.raises(DataError, match=r"line 6: not a lexicon row"):
        Lexicon.load(tmp_path)
    with pytest.raises(DataError, match=r"lexicon\.tsv\.gz is missing"):
        Lexicon.load(tmp_path / "nowhere")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40), st.integers(1, 12), st.floats(-20, 20))
def test_features_of_any_text_are_finite_and_complete(surface: str, n_words: int, logit: float) -> None:
    f = span_features(surface, n_words, logit, _lexicon())
    assert len(f) == len(FEATURES)
    assert all(math.isfinite(x) for x in f)
    assert f[0] == logit and f[-1] == n_words - 1
    assert 0.0 <= SpanPrior(tuple([0.3] * len(FEATURES)), -1.0).score(f) <= 1.0


spans = st.lists(st.tuples(st.integers(0, 20), st.integers(0, 4), st.floats(0.0, 1.0)), max_size=30).map(
    lambda xs: [(Candidate(a, a + w, 0, 0.0), s) for a, w, s in xs]
)


@settings(max_examples=200, deadline=None)
@given(spans, st.floats(0.0, 1.0), st.floats(0.0, 1.0))
def test_flat_decoding_keeps_no_overlaps_and_a_higher_threshold_keeps_a_subset(
    scored: list[tuple[Candidate, float]], t1: float, t2: float
) -> None:
    lo, hi = sorted((t1, t2))
    kept = greedy(scored, lo)
    for i, (a, s) in enumerate(kept):
        assert s >= lo
        for b, _ in kept[i + 1 :]:
            assert a.last < b.first or a.first > b.last
    # what the trainer's threshold search relies on: decoding at hi = decoding at lo, then filtering
    assert greedy(scored, hi) == [(c, s) for c, s in kept if s >= hi]


def test_the_fit_recovers_weights_that_generated_the_labels() -> None:
    import numpy as np

    from trainer.span_prior import Design, fit_logistic

    rng = random.Random(0)
    true = [1.5, 2.0, 0, 0, 0, 0, 0, -1.0, 0]
    rows, ys = [], []
    for _ in range(20_000):
        x = [rng.gauss(0, 2), float(rng.random() < 0.4), 0, 0, 0, 0, 0, float(rng.random() < 0.2), 0]
        z = -0.5 + sum(w * v for w, v in zip(true, x, strict=True))
        rows.append(x)
        ys.append(float(rng.random() < 1 / (1 + math.exp(-z))))
    fitted = fit_logistic(Design(np.asarray(rows), np.asarray(ys)))
    assert fitted.weights[0] == pytest.approx(1.5, abs=0.15)
    assert fitted.weights[1] == pytest.approx(2.0, abs=0.2)
    assert fitted.weights[7] == pytest.approx(-1.0, abs=0.2)
    assert fitted.bias == pytest.approx(-0.5, abs=0.15)
    back = SpanPrior.from_dict(json.loads(json.dumps(fitted.to_dict())))
    assert back.weights == pytest.approx(fitted.weights, abs=1e-6)


def test_a_prior_from_another_feature_set_is_refused() -> None:
    with pytest.raises(DataError, match="republish"):
        SpanPrior.from_dict({"features": ["logit"], "weights": [1.0], "bias": 0.0})


@pytest.fixture(scope="module")
def prior_model(tmp_path_factory: pytest.TempPathFactory, tiny_data: Path) -> Path:
    """A real model trained for a few steps with ``--span-prior`` and published: REGISTRY/prior."""
    from trainer.train import run

    root = tmp_path_factory.mktemp("prior")
    params = {"max_steps": 8, "batch_size": 4, "learning_rate": 1e-4, "others_lr": 5e-4, "span_prior": True}
    run(tiny_settings(root, tiny_data, "prior", **params))
    return root / "registry" / "prior"


def test_a_prior_that_trusts_the_lexicon_finds_its_names(tiny_model: Path) -> None:
    """A real model with a prior that only reads the lexicon: the places it knows come out, nothing else."""
    from lmr.model.extractor import load_extractor

    ex = load_extractor(str(tiny_model))
    weights = [0.0] * len(FEATURES)
    weights[FEATURES.index("known")] = 40.0
    ex.prior, ex.lexicon = SpanPrior(tuple(weights), -20.0), _lexicon()
    texts = ["Flooding in Mati and Houston tonight", "nothing to see here", "Roads closed near #NewOrleans"]
    got = [[m.text for m in ms] for ms in ex.predict(texts, threshold=0.5)]
    # a name is found where the model gave it at least the candidate floor; never anything unknown
    assert all(t in {"Mati", "Houston", "#NewOrleans"} for ms in got for t in ms)
    assert got[1] == []
    assert any(got[0] + got[2]), "the tiny model gives these names at least the candidate floor"


def test_a_published_model_carries_its_prior_into_the_worker(prior_model: Path, tiny_model: Path) -> None:
    """``--span-prior`` fits the prior; load_extractor (the worker's loader) applies it unchanged."""
    from lmr.model import registry
    from lmr.model.extractor import ModelSpec, load_extractor

    assert ModelSpec.load(Path(registry.resolve(str(tiny_model)).path)).span_prior is None, "off by default"
    path = Path(registry.resolve(str(prior_model)).path)
    spec = ModelSpec.load(path)
    assert spec.span_prior is not None and spec.span_prior["features"] == list(FEATURES)
    assert (path / LEXICON_FILE).is_file()
    card = json.loads((path / "card.json").read_text(encoding="utf-8"))
    assert card["training"]["span_prior"]["selection_f1_without"] is not None
    assert "span prior (gazetteer" in (path / "README.md").read_text(encoding="utf-8")
    ex = load_extractor(str(prior_model))
    assert ex.prior is not None and len(ex.lexicon or ()) > 1000
    text = ["Flooding in Houston, Texas and Mati tonight; stay safe #NewOrleans"]
    with_prior = ex.predict(text, threshold=0.05)[0]
    ex.prior = None
    assert with_prior != ex.predict(text, threshold=0.05)[0], "the prior rescored the spans"
