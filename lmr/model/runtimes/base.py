"""The interface every inference runtime implements, and the pieces runtimes share.

A runtime turns a batch collated for GLiNER (:mod:`lmr.model.collate`) into what GLiNER's decoder reads
(:class:`FastOutput`). It is built once per loaded model from the model and :class:`RuntimeOptions`;
:mod:`lmr.model.runtimes.catalog` names each runtime and builds it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from lmr.model.runtimes.cpu import Int8Kernel


@dataclass
class FastOutput:
    """What GLiNER's decoder reads from a model output."""

    logits: Any
    span_idx: Any
    span_mask: Any
    span_logits: Any = None

    def __getitem__(self, i: int) -> Any:
        if i != 0:
            raise IndexError(i)
        return self.logits


@dataclass(frozen=True)
class RuntimeOptions:
    """How a runtime is built: ``threads`` for ONNX Runtime's session (0: its default); ``padding_free=False``
    keeps GLiNER's padded encoder and packed LSTM and ``int8_kernel`` overrides
    :meth:`~lmr.model.runtimes.cpu.Int8Kernel.for_cpu` (both for side-by-side benchmarks)."""

    threads: int = 0
    padding_free: bool = True
    int8_kernel: Int8Kernel | None = None


class Runtime(ABC):
    """One inference runtime for a loaded GLiNER model: a collated batch in, span scores out."""

    name: ClassVar[str] = ""  # the name it is registered under (--runtime)

    @abstractmethod
    def __call__(self, batch: dict[str, Any]) -> FastOutput:
        """Span scores of ``batch`` (a collated GLiNER batch), as GLiNER's decoder reads them."""


def frozen_linear(weight: Any, bias: Any) -> Any:
    """An inference-only ``nn.Linear`` holding copies of ``weight`` (out, in) and ``bias`` (or none)."""
    from torch import nn

    lin = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None, device=weight.device, dtype=weight.dtype)
    lin.weight.data = weight.detach().clone()
    if bias is not None:
        lin.bias.data = bias.detach().clone()
    return lin.eval().requires_grad_(False)
