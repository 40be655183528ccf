"""Inference runtimes for GLiNER span models (see :mod:`lmr.model.runtimes.fused`)."""

from lmr.model.runtimes.fused import (
    DEFAULT_GPU_RUNTIME,
    ENGINE_REVISION,
    RUNTIMES,
    FastEngine,
    Int8Kernel,
    UnpackedBiLSTM,
    UnpaddedBert,
    _fused_head,
    cpu_flags,
    cpu_has_native_bf16,
    int8_encoder,
    int8_linear,
    resolve_runtime,
)

__all__ = [
    "DEFAULT_GPU_RUNTIME",
    "ENGINE_REVISION",
    "RUNTIMES",
    "FastEngine",
    "Int8Kernel",
    "UnpackedBiLSTM",
    "UnpaddedBert",
    "_fused_head",
    "cpu_flags",
    "cpu_has_native_bf16",
    "int8_encoder",
    "int8_linear",
    "resolve_runtime",
]
