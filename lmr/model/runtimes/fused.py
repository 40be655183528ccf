"""``fused``: the exact fast runtime, and :class:`FastEngine`, what every fused-head runtime shares.

A fused-head runtime runs a collated GLiNER batch through the encoder (its own variant: float, bf16,
int8 or ONNX), GLiNER's word pooling, the word LSTM (:class:`UnpackedBiLSTM` where it applies) and the
fused span head (:mod:`lmr.model.runtimes.span_head`). ``fused`` runs the model's own float weights, the
encoder padding-free where it is a plain BERT (:class:`UnpaddedBert`): GLiNER's answers up to float
rounding.
"""

from __future__ import annotations

from typing import Any

from lmr.errors import ModelError
from lmr.model.runtimes.base import FastOutput, Runtime, RuntimeOptions
from lmr.model.runtimes.cpu import Int8Kernel
from lmr.model.runtimes.span_head import fit_length, fused_head, fusion_problem
from lmr.model.runtimes.unpacked_lstm import UnpackedBiLSTM
from lmr.model.runtimes.unpadded_bert import UnpaddedBert


class FastEngine(Runtime):
    """Runs a collated GLiNER batch through the fused head and an encoder; subclasses choose the encoder."""

    bf16 = False  # the encoder, the LSTM and the head in bfloat16

    def __init__(self, model: Any, options: RuntimeOptions | None = None) -> None:
        import torch

        options = options or RuntimeOptions()
        self.core = model.model
        problem = fusion_problem(self.core)
        if problem:
            raise ModelError(f"Fast inference supports {problem}.", "load with runtime='torch'.")
        self.int8_kernel: Int8Kernel | None = None
        self.head = fused_head(self.core).eval()
        self.encoder = self.core.token_rep_layer
        self._onnx: Any = None  # an OnnxEncoder, where the encoder runs in ONNX Runtime
        self._unpadded: UnpaddedBert | None = None
        rnn: Any = getattr(self.core, "rnn", None)
        dtype = torch.bfloat16 if self.bf16 else next(self.core.parameters()).dtype
        unpack = options.padding_free and rnn is not None and UnpackedBiLSTM.supports(rnn)
        self.rnn: Any = UnpackedBiLSTM(rnn.lstm, dtype) if unpack else rnn
        # without the unpacked LSTM, the bf16 runtime runs the LSTM under autocast
        self.autocast = self.bf16 and not isinstance(self.rnn, UnpackedBiLSTM)
        self._prepare(options)

    def _prepare(self, options: RuntimeOptions) -> None:
        """Turn ``self.encoder`` and ``self.head`` into this runtime's; the float ones as they come here."""

    def _token_embeds(self, input_ids: Any, attention_mask: Any) -> Any:
        if self._onnx is not None:
            return self._onnx(input_ids, attention_mask)
        if self._unpadded is not None:
            return self._unpadded(input_ids, attention_mask)
        return self.encoder(input_ids, attention_mask)

    def __call__(self, batch: dict[str, Any]) -> FastOutput:
        import torch
        from gliner.modeling.utils import extract_prompt_features_and_word_embeddings

        core = self.core
        if self._onnx is None:
            dev = next(core.parameters()).device
            batch = {k: v.to(dev) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
        with torch.inference_mode():
            tok = self._token_embeds(batch["input_ids"], batch["attention_mask"])
            prompts, _pmask, words, mask = extract_prompt_features_and_word_embeddings(
                core.config.class_token_index,
                tok,
                batch["input_ids"],
                batch["attention_mask"],
                batch["text_lengths"],
                batch["words_mask"],
                core.config.embed_ent_token,
                subtoken_pooling=getattr(core.config, "subtoken_pooling", "first"),
            )
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.autocast):
                if self.rnn is not None:
                    words = self.rnn(words, mask)
                span_idx, span_mask = batch["span_idx"], batch["span_mask"]
                target_w = span_idx.size(1) // core.config.max_width
                words, mask = fit_length(words, mask, target_w)
                scores = self.head(words, prompts, span_mask.view(words.shape[0], target_w, -1))
        return FastOutput(scores.float(), span_idx, span_mask)


class FusedRuntime(FastEngine):
    """``fused``: the model's float weights; a plain BERT encoder runs padding-free."""

    name = "fused"

    def _prepare(self, options: RuntimeOptions) -> None:
        if options.padding_free and UnpaddedBert.supports(self.encoder):
            self._unpadded = UnpaddedBert(self.encoder.bert_layer.model, getattr(self.encoder, "projection", None))
