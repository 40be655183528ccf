"""``fused-int8`` and ``fused-int8-mixed``: per-channel int8 weights, activations scaled per batch.

Every linear layer of the encoder and the span head's five per-word layers run int8 matrix products on
the kernel :class:`~lmr.model.runtimes.cpu.Int8Kernel` picks for the CPU. ``fused-int8-mixed`` keeps the
GELU-fed feed-forward layers in float32: for models that full int8 costs answers, such as the 12-layer e5.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from typing import Any

from lmr.model.runtimes.base import RuntimeOptions
from lmr.model.runtimes.cpu import Int8Kernel
from lmr.model.runtimes.fused import FastEngine
from lmr.model.runtimes.unpadded_bert import UnpaddedBert

log = logging.getLogger(__name__)


@functools.cache
def _int8_linear_type() -> Any:
    import torch
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    class Int8Linear(DynamicLinear):
        """torch's dynamic int8 linear layer, with the activation range of the kernel it was packed for."""

        reduce_range = True

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            packed = self._packed_params._packed_params
            y = torch.ops.quantized.linear_dynamic(x, packed, reduce_range=self.reduce_range)
            return y.to(x.dtype)

    return Int8Linear


def int8_linear(lin: Any, kernel: Int8Kernel) -> Any:
    """A quantised copy of ``lin``: int8 weights per output channel, activations scaled per batch."""
    import copy

    import torch
    from torch.ao.quantization import per_channel_dynamic_qconfig

    lin = copy.copy(lin)
    lin.qconfig = per_channel_dynamic_qconfig
    before = torch.backends.quantized.engine
    torch.backends.quantized.engine = kernel.engine
    try:
        q = _int8_linear_type().from_float(lin)
    finally:
        torch.backends.quantized.engine = before
    q.reduce_range = kernel.reduce_range
    return q


def int8_head(head: Any, kernel: Int8Kernel) -> Any:
    """A copy of the fused span head with its per-word linear layers in int8 (as the encoder's, per channel)."""
    import copy

    head = copy.deepcopy(head)
    for name in head.INT8_LAYERS:
        setattr(head, name, int8_linear(getattr(head, name), kernel))
    return head


def int8_encoder(
    encoder: Any, kernel: Int8Kernel, padding_free: bool = True, keep_float: Sequence[str] = ()
) -> tuple[Any, UnpaddedBert | None]:
    """``(encoder, unpadded)`` for the int8 runtimes; the float ``encoder`` passed in is left untouched.

    A plain BERT runs padding-free with per-channel int8 weights in every linear layer of every
    transformer layer except the kinds named in ``keep_float``; other encoders get the same int8
    layers in place of every ``nn.Linear``, less the GELU-fed ``output.dense`` of each Hugging Face
    transformer layer (a module with ``intermediate`` and ``output``) where ``keep_float`` names ``ffn_out``.
    """
    import copy

    import torch

    enc = copy.deepcopy(encoder)
    if not (padding_free and UnpaddedBert.supports(enc)):
        gelu_fed = {
            f"{name}.output.dense"
            for name, m in enc.named_modules()
            if "ffn_out" in keep_float and hasattr(m, "intermediate") and hasattr(getattr(m, "output", None), "dense")
        }
        linears = [n for n, m in enc.named_modules() if isinstance(m, torch.nn.Linear) and n not in gelu_fed]
        for name in linears:
            parent, _, leaf = name.rpartition(".")
            owner = enc.get_submodule(parent) if parent else enc
            setattr(owner, leaf, int8_linear(getattr(owner, leaf), kernel))
        return enc, None
    unpadded = UnpaddedBert(enc.bert_layer.model, getattr(enc, "projection", None))
    for i, layer in enumerate(enc.bert_layer.model.encoder.layer):
        if "qkv" not in keep_float:
            unpadded.qkv[i] = int8_linear(unpadded.qkv[i], kernel)
        if "attn_out" not in keep_float:
            layer.attention.output.dense = int8_linear(layer.attention.output.dense, kernel)
        if "ffn_in" not in keep_float:
            layer.intermediate.dense = int8_linear(layer.intermediate.dense, kernel)
        if "ffn_out" not in keep_float:
            layer.output.dense = int8_linear(layer.output.dense, kernel)
    return enc, unpadded


class Int8Runtime(FastEngine):
    """``fused-int8``: int8 weights in every linear layer of the encoder and the head's per-word layers."""

    # Linear layers of each BERT layer kept in float32 (measured: docs/inference.md). Names: qkv (fused
    # query/key/value), attn_out, ffn_in, ffn_out; "ffn_out" is the layer fed by GELU activations, whose outliers
    # per-batch activation scales handle worst (full int8 costs the 12-layer e5 ~0.01 F1, the 6-layer MiniLM ~0.002).
    name = "fused-int8"
    keep_float: tuple[str, ...] = ()

    def _prepare(self, options: RuntimeOptions) -> None:
        self.int8_kernel = options.int8_kernel or Int8Kernel.for_cpu()
        keep = self.keep_float
        self.encoder, self._unpadded = int8_encoder(self.encoder, self.int8_kernel, options.padding_free, keep)
        self.head = int8_head(self.head, self.int8_kernel)
        log.info("%s: int8 matrix products on %s", self.name, self.int8_kernel)


class Int8MixedRuntime(Int8Runtime):
    """``fused-int8-mixed``: ``fused-int8`` with the GELU-fed feed-forward layers in float32."""

    name = "fused-int8-mixed"
    keep_float = ("ffn_out",)
