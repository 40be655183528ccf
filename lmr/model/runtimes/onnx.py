"""``onnx`` and ``onnx-int8``: the transformer exported to ONNX and run by ONNX Runtime, then the fused head.

``onnx-int8`` is the same graph dynamically quantised by ONNX Runtime (per-channel int8 weights).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from lmr.errors import ModelError
from lmr.model.runtimes.base import RuntimeOptions
from lmr.model.runtimes.fused import FastEngine


class OnnxEncoder:
    """The transformer of a GLiNER encoder run by ONNX Runtime; returns last hidden states as torch."""

    def __init__(self, bert: Any, quantize: bool, threads: int = 0) -> None:
        import onnxruntime as ort
        import torch

        self._dir = tempfile.TemporaryDirectory(prefix="lmr-onnx-")
        path = Path(self._dir.name) / "encoder.onnx"
        hf = bert.model if hasattr(bert, "model") else bert

        class Wrap(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.m = hf

            def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
                return self.m(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

        ids = torch.ones(2, 16, dtype=torch.long)
        with torch.no_grad():
            torch.onnx.export(
                Wrap().eval(),
                (ids, torch.ones_like(ids)),
                str(path),
                input_names=["input_ids", "attention_mask"],
                output_names=["hidden"],
                dynamic_axes={
                    "input_ids": {0: "b", 1: "t"},
                    "attention_mask": {0: "b", 1: "t"},
                    "hidden": {0: "b", 1: "t"},
                },
                opset_version=17,
                dynamo=False,
            )
        if quantize:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            qpath = path.with_name("encoder.int8.onnx")
            import onnx

            quantize_dynamic(
                str(path),
                str(qpath),
                weight_type=QuantType.QInt8,
                per_channel=True,
                extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
            )
            path = qpath
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    def __call__(self, input_ids: Any, attention_mask: Any) -> Any:
        import torch

        out = self.session.run(["hidden"], {"input_ids": input_ids.numpy(), "attention_mask": attention_mask.numpy()})[
            0
        ]
        return torch.from_numpy(out)


class OnnxRuntime(FastEngine):
    """``onnx``: the encoder's transformer in ONNX Runtime (float32)."""

    name = "onnx"
    quantize = False

    def _prepare(self, options: RuntimeOptions) -> None:
        if getattr(self.encoder, "projection", None) is not None:
            raise ModelError("ONNX runtime does not support encoders with a projection layer.", "use runtime='fused'.")
        self._onnx = OnnxEncoder(self.encoder.bert_layer, quantize=self.quantize, threads=options.threads)


class OnnxInt8Runtime(OnnxRuntime):
    """``onnx-int8``: the ONNX graph dynamically quantised to int8 by ONNX Runtime."""

    name = "onnx-int8"
    quantize = True
