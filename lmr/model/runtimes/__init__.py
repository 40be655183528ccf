"""Inference runtimes for GLiNER span models (``markerV0`` span head, the GLiNER default), chosen at load time.

* ``torch``: GLiNER's own forward pass, as trained.
* ``fused`` (:mod:`~lmr.model.runtimes.fused`): the fused span head (:mod:`~lmr.model.runtimes.span_head`),
  a padding-free BERT encoder (:mod:`~lmr.model.runtimes.unpadded_bert`) and the unpacked word LSTM
  (:mod:`~lmr.model.runtimes.unpacked_lstm`) on the model's own weights: exact up to float rounding.
* ``fused-bf16`` (:mod:`~lmr.model.runtimes.bf16`): the same in bfloat16, fast where the CPU has bf16
  instructions.
* ``fused-int8``, ``fused-int8-mixed`` (:mod:`~lmr.model.runtimes.int8`): per-channel int8 weights on the
  kernel the CPU suits (:mod:`~lmr.model.runtimes.cpu`); ``-mixed`` keeps the GELU-fed layers in float32.
* ``onnx``, ``onnx-int8`` (:mod:`~lmr.model.runtimes.onnx`): the transformer in ONNX Runtime.

Every fast runtime also collates fast (:mod:`lmr.model.collate`): the batch GLiNER's collator builds, bit for
bit. Each runtime implements :class:`~lmr.model.runtimes.base.Runtime` and is registered below by name
(:mod:`~lmr.model.runtimes.catalog`); ``auto`` (:mod:`lmr.model.autotune`) measures the registered candidates.
"""

from lmr.model.runtimes.bf16 import Bf16Runtime
from lmr.model.runtimes.catalog import RuntimeInfo, register
from lmr.model.runtimes.fused import FusedRuntime
from lmr.model.runtimes.int8 import Int8MixedRuntime, Int8Runtime
from lmr.model.runtimes.onnx import OnnxInt8Runtime, OnnxRuntime

# The registration of the built-in runtimes, in the order ``auto`` tries its candidates (the exact one first).
register(RuntimeInfo("torch", None))
register(RuntimeInfo(FusedRuntime.name, FusedRuntime, auto=True))
register(RuntimeInfo(Bf16Runtime.name, Bf16Runtime, cpu_only=True, auto=True, native_bf16=True))
register(RuntimeInfo(Int8Runtime.name, Int8Runtime, cpu_only=True, auto=True))
register(RuntimeInfo(Int8MixedRuntime.name, Int8MixedRuntime, cpu_only=True, auto=True, fallback_for=Int8Runtime.name))
register(RuntimeInfo(OnnxRuntime.name, OnnxRuntime, cpu_only=True))
register(RuntimeInfo(OnnxInt8Runtime.name, OnnxInt8Runtime, cpu_only=True, auto=True, auto_excluded=True))
