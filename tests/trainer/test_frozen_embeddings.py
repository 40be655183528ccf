"""``--freeze-embeddings``: the encoder's word embeddings stay as pre-trained while the rest of the model learns."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import training_batch

TABLE = "word_embeddings.weight"


def _step(model: Any, tiny_data: Path) -> None:
    """One AdamW step on the tiny posts, over the weights that still train (as the Trainer's optimiser does)."""
    import torch

    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    model.train()
    model.model(**training_batch(model, tiny_data, ["location"])).loss.backward()
    opt.step()


def _table_size(model: Any) -> int:
    return int(model.model.token_rep_layer.bert_layer.model.embeddings.word_embeddings.weight.numel())


def _weights(model: Any) -> dict[str, Any]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if "token_rep_layer" in n}


def _check_step(model: Any, tiny_data: Path, frozen: bool) -> None:
    import torch

    before = _weights(model)
    _step(model, tiny_data)
    after = _weights(model)
    table = next(n for n in before if n.endswith(TABLE))
    assert torch.equal(before[table], after[table]) is frozen
    assert any(not before[n].equal(after[n]) for n in before if n != table)  # the rest of the encoder learns


def test_auto_freezes_a_multilingual_vocabulary(e5_dir: Path, tiny_data: Path) -> None:
    from trainer.model import build_fresh, freeze_word_embeddings

    model = build_fresh(str(e5_dir), max_width=5)
    assert freeze_word_embeddings(model, "auto", fresh=False) == 0  # fine-tuning a trained GLiNER: left trainable
    assert freeze_word_embeddings(model, "auto") == _table_size(model) >= 250_002 * 384  # + GLiNER's markers
    _check_step(model, tiny_data, frozen=True)


@pytest.mark.parametrize(("setting", "frozen"), [("auto", False), ("on", True), ("off", False)])
def test_minilm_trains_its_embeddings_unless_told(setting: str, frozen: bool, tiny_data: Path) -> None:
    import torch

    from trainer.model import build_fresh, freeze_word_embeddings, offline_encoder

    torch.manual_seed(0)
    model = build_fresh(offline_encoder(), max_width=5)
    assert _table_size(model) < 31_000 * 384
    assert freeze_word_embeddings(model, setting) == (_table_size(model) if frozen else 0)
    _check_step(model, tiny_data, frozen=frozen)


def test_a_bad_setting_is_named() -> None:
    from lmr.errors import ConfigError
    from trainer.settings import TrainSettings

    with pytest.raises(ConfigError, match="--freeze-embeddings must be auto, on or off"):
        TrainSettings(train=["x.jsonl"], freeze_embeddings="yes").validate()
