"""``fused-bf16``: ``fused`` on a bfloat16 copy of the encoder, the LSTM and the head.

Fast where the CPU has bf16 instructions (e.g. AVX512-BF16/AMX); weights are cast once, not per batch,
and scores come back as float32. Without the unpacked LSTM, the LSTM runs under bf16 autocast.
"""

from __future__ import annotations

import copy

from lmr.model.runtimes.base import RuntimeOptions
from lmr.model.runtimes.fused import FusedRuntime


class Bf16Runtime(FusedRuntime):
    """``fused-bf16``: bf16 copies of the encoder and the fused head, padding-free like ``fused``."""

    name = "fused-bf16"
    bf16 = True

    def _prepare(self, options: RuntimeOptions) -> None:
        import torch

        self.encoder = copy.deepcopy(self.encoder).to(torch.bfloat16)
        self.head = copy.deepcopy(self.head).to(torch.bfloat16)
        super()._prepare(options)
