"""Fast inference for GLiNER span models (``markerV0`` span head, the GLiNER default).

Speed-ups, selectable at load time (``runtime=``):

* **Fused span head** (every fast runtime). GLiNER scores a span ``(i, j)`` for label ``c`` as
  ``(W2 · relu(W1 · relu([s_i; e_j]) + b1) + b2) · q_c``: a 2D→4D→D MLP per span, then a dot
  product. Because the first layer is linear in ``[s_i; e_j]`` and the last is followed only by a
  dot product, the same number is ``relu(A_i + B_j) · (W2ᵀ q_c) + b2 · q_c`` with per-word
  ``A = W1a · relu(s) + b1`` and ``B = W1b · relu(e)``. Per span this costs 4D additions and 4D
  multiply-adds per label instead of 12·D² multiply-adds: the span head, half of the plain
  model's CPU time, almost vanishes. The result is exact up to float rounding.
  The per-word projections (``A``, ``B`` and the start/end MLPs before them) run on the real words
  of a batch only, the start and end MLPs' first layers as one product; the int8 runtimes run
  these five layers with int8 weights too.
* **Encoder runtime**: ``torch`` (as trained), ``bf16`` (a bfloat16 copy of the encoder, the
  LSTM and the fused head under bf16 autocast: fast where the CPU has bf16 instructions, e.g.
  AVX512-BF16/AMX), ``int8`` (per-channel int8 weights, activations scaled per batch, in every
  linear layer of the encoder and the span head's per-word layers, on the kernel
  :class:`Int8Kernel` picks for the CPU), ``int8-mixed`` (the same with
  the GELU-fed feed-forward layers kept in float32: for models that full int8 costs answers,
  such as the 12-layer e5), ``onnx`` (the transformer exported to ONNX and run by ONNX Runtime)
  or ``onnx-int8`` (the same, dynamically quantised by ONNX Runtime).
* **Padding-free encoder** (``fused`` and ``fused-bf16`` with a BERT encoder, such as the offline
  MiniLM): the linear layers, which hold nearly all of the encoder's arithmetic, run on the real
  sub-word tokens of a batch only, packed end to end; only attention sees the padded layout.
  A batch of posts of different lengths then costs what its tokens cost (padding was ~24% of
  the positions of the worker's micro-batches). Exact up to float rounding.
* **Unpacked word LSTM** (every fast runtime): GLiNER's bi-LSTM over packed sequences as two
  one-directional passes over the padded batch (the fused kernel instead of PyTorch's step-by-step
  path). Exact up to float rounding.
* **Collation** (every fast runtime, :mod:`lmr.model.collate`): the batch GLiNER's collator builds,
  built from cached per-word sub-word pieces and tensor arithmetic. The same tensors, bit for bit.
"""

from __future__ import annotations

import functools
import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lmr.errors import ConfigError, ModelError

log = logging.getLogger(__name__)

# Bump when a fast runtime's arithmetic changes: cached ``auto`` choices measured on an older engine are then ignored.
ENGINE_REVISION = 5  # 3: int8 GELU-fed layers; 4: -mixed keeps them float on any encoder; 5: Int8Kernel.for_cpu
RUNTIMES = ("torch", "fused", "fused-bf16", "fused-int8", "fused-int8-mixed", "onnx", "onnx-int8")
# The fastest runtime whose exact-span F1 stays within 0.005 of plain torch (bench/inference_speed.py):
# fused-bf16 where the CPU has native bf16 instructions (AVX512-BF16 or AMX), else fused.
DEFAULT_CPU_RUNTIME = "fused-bf16"
FALLBACK_CPU_RUNTIME = "fused"
DEFAULT_GPU_RUNTIME = "fused"


def cpu_flags() -> frozenset[str]:
    """This CPU's feature flags (Linux ``/proc/cpuinfo``; empty where it cannot be read)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 dot products natively (Linux: AVX512-BF16 or AMX-BF16 flags)."""
    return bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})


def resolve_runtime(runtime: str, device: str = "cpu") -> str:
    """``auto`` -> the measured default for the device; anything else is checked and returned."""
    if runtime == "auto":
        if device.startswith("cuda"):
            return DEFAULT_GPU_RUNTIME
        return DEFAULT_CPU_RUNTIME if cpu_has_native_bf16() else FALLBACK_CPU_RUNTIME
    if runtime not in RUNTIMES:
        raise ConfigError(f"Unknown runtime {runtime!r}.", f"use auto or one of: {', '.join(RUNTIMES)}.")
    if device.startswith("cuda") and runtime.startswith(("onnx", "fused-int8", "fused-bf16")):
        raise ConfigError(f"Runtime {runtime!r} runs on the CPU only.", "use --runtime fused or torch on a GPU.")
    return runtime


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


def _frozen_linear(weight: Any, bias: Any) -> Any:
    """An inference-only ``nn.Linear`` holding copies of ``weight`` (out, in) and ``bias`` (or none)."""
    from torch import nn

    lin = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None, device=weight.device, dtype=weight.dtype)
    lin.weight.data = weight.detach().clone()
    if bias is not None:
        lin.bias.data = bias.detach().clone()
    return lin.eval().requires_grad_(False)


def _fused_head(core: Any) -> Any:
    import torch
    from torch import nn

    marker = core.span_rep_layer.span_rep_layer
    ctx = getattr(core.span_rep_layer, "context_encoder", None)
    if type(marker).__name__ != "SpanMarkerV0" or (ctx is not None and type(ctx).__name__ != "IdentityContextEncoder"):
        raise ModelError(
            f"Fast inference supports the plain markerV0 span head, not {type(marker).__name__} "
            f"with {type(ctx).__name__}.",
            "load with runtime='torch'.",
        )

    class FusedSpanHead(nn.Module):
        """The span head on the real words of a batch; its five linear layers are what the int8 runtimes quantise."""

        INT8_LAYERS = ("first", "start_out", "end_out", "to_a", "to_b")

        def __init__(self) -> None:
            super().__init__()
            self.max_width = int(marker.max_width)
            ps, pe = marker.project_start, marker.project_end
            # the first layers of the start and end projections read the same words: one product
            self.first = _frozen_linear(torch.cat([ps[0].weight, pe[0].weight]), torch.cat([ps[0].bias, pe[0].bias]))
            self.split = int(ps[0].out_features)
            self.start_out = _frozen_linear(ps[3].weight, ps[3].bias)
            self.end_out = _frozen_linear(pe[3].weight, pe[3].bias)
            lin1, lin2 = marker.out_project[0], marker.out_project[3]
            d = lin1.weight.shape[1] // 2
            self.to_a = _frozen_linear(lin1.weight[:, :d], lin1.bias)  # A = W1a relu(s) + b1
            self.to_b = _frozen_linear(lin1.weight[:, d:], None)  # B = W1b relu(e)
            self.w2 = nn.Parameter(lin2.weight.detach().clone(), requires_grad=False)  # (D, 4D)
            self.b2 = nn.Parameter(lin2.bias.detach().clone(), requires_grad=False)
            self.prompt_rep_layer = core.prompt_rep_layer

        def forward(self, words: torch.Tensor, prompts: torch.Tensor, span_mask: torch.Tensor) -> torch.Tensor:
            q = self.prompt_rep_layer(prompts)  # B, C, D
            b, length, k = words.shape[0], words.shape[1], self.max_width
            # per-word projections on the real words only (a word is real where its width-1 span is)
            keep = span_mask[..., 0].reshape(-1).nonzero().squeeze(1)
            f = torch.relu(self.first(words.reshape(b * length, -1)[keep]))
            a_real = self.to_a(torch.relu(self.start_out(f[:, : self.split])))
            e_real = self.to_b(torch.relu(self.end_out(f[:, self.split :])))
            a = a_real.new_zeros(b * length, a_real.shape[1])
            a[keep] = a_real
            e = e_real.new_zeros(b * length, e_real.shape[1])
            e[keep] = e_real
            a, e = a.view(b, length, -1), e.view(b, length, -1)
            v = q @ self.w2  # B, C, 4D
            c = q @ self.b2  # B, C
            e = torch.nn.functional.pad(e, (0, 0, 0, k))
            scores = torch.stack(
                [torch.relu(a + e[:, w : w + length]) @ v.transpose(1, 2) for w in range(k)], dim=2
            )  # B, L, K, C
            scores = scores + c[:, None, None, :]
            return scores.masked_fill(~span_mask.bool()[..., None], -1e4)

    return FusedSpanHead()


class UnpackedBiLSTM:
    """GLiNER's one-layer bidirectional word LSTM without ``pack_padded_sequence``.

    Packed sequences force PyTorch's step-by-step LSTM on the CPU; two one-directional LSTMs over
    the padded batch use the fused kernel instead (~2x faster here on micro-batches). The forward
    direction reads each post from its first word, so padding at the end cannot reach real
    positions; the backward one reads each post reversed within its own length. Outputs at padded
    positions are zero, as after ``pad_packed_sequence``.
    """

    def __init__(self, lstm: Any, dtype: Any) -> None:
        import torch

        def one(suffix: str) -> Any:
            m = torch.nn.LSTM(lstm.input_size, lstm.hidden_size, batch_first=True, bias=lstm.bias)
            m = m.to(device=lstm.weight_ih_l0.device, dtype=dtype).eval().requires_grad_(False)
            for name in ("weight_ih", "weight_hh") + (("bias_ih", "bias_hh") if lstm.bias else ()):
                getattr(m, f"{name}_l0").copy_(getattr(lstm, f"{name}_l0{suffix}"))
            return m

        self.forward_lstm, self.backward_lstm = one(""), one("_reverse")

    @staticmethod
    def supports(rnn: Any) -> bool:
        """Whether ``rnn`` is the plain GLiNER word LSTM this class reproduces."""
        lstm: Any = getattr(rnn, "lstm", None)
        return (
            type(rnn).__name__ == "LstmSeq2SeqEncoder"
            and type(lstm).__name__ == "LSTM"
            and lstm.num_layers == 1
            and lstm.bidirectional
            and lstm.batch_first
            and not getattr(lstm, "proj_size", 0)
        )

    def __call__(self, words: Any, mask: Any) -> Any:
        import torch

        b, length, width = words.shape
        lengths = mask.sum(dim=1, keepdim=True).long()
        t = torch.arange(length, device=words.device).expand(b, length)
        real = t < lengths
        rev = torch.where(real, lengths - 1 - t, t)  # reverses each post within its length; an involution
        fwd = self.forward_lstm(words)[0]
        back = self.backward_lstm(words.gather(1, rev[..., None].expand(b, length, width)))[0]
        back = back.gather(1, rev[..., None].expand(b, length, back.shape[2]))
        return torch.cat([fwd, back], dim=2) * real[..., None].to(fwd.dtype)


class UnpaddedBert:
    """A BERT encoder's forward pass over the real tokens of a batch only (see the module docstring).

    Embeddings, the fused query/key/value projection, attention output, feed-forward and layer
    norms run on a ``(tokens, hidden)`` matrix; attention runs on the padded ``(batch, heads, length,
    head_dim)`` layout with the padding mask, as in the model. Returned hidden states are zero at
    padded positions, which GLiNER never reads. The token count is rounded up to ``ROWS`` so that
    matrix shapes repeat from batch to batch (oneDNN builds a kernel per new shape, ~12 ms each here).
    """

    ROWS = 32

    def __init__(self, bert: Any, projection: Any = None) -> None:
        import torch

        self.bert = bert
        self.projection = projection
        cfg = bert.config
        self.heads = int(cfg.num_attention_heads)
        self.head_dim = int(cfg.hidden_size) // self.heads
        self.qkv: list[Any] = []
        for layer in bert.encoder.layer:
            sa = layer.attention.self
            w = torch.cat([sa.query.weight, sa.key.weight, sa.value.weight])
            self.qkv.append(_frozen_linear(w, torch.cat([sa.query.bias, sa.key.bias, sa.value.bias])))

    @staticmethod
    def supports(encoder: Any) -> bool:
        """Whether ``encoder`` (GLiNER's token encoder) is a plain post-norm BERT this class reproduces."""
        bl = getattr(encoder, "bert_layer", None)
        bert = getattr(bl, "model", None)
        cfg = getattr(bert, "config", None)
        return (
            type(bert).__name__ == "BertModel"
            and not getattr(getattr(bl, "config", None), "fuse_layers", False)
            and getattr(cfg, "position_embedding_type", "absolute") == "absolute"
            and getattr(cfg, "hidden_act", "") == "gelu"
            and not getattr(cfg, "is_decoder", False)
        )

    def __call__(self, input_ids: Any, attention_mask: Any) -> Any:
        import torch.nn.functional as F

        b, length = input_ids.shape
        mask = attention_mask.bool()
        keep = mask.reshape(-1).nonzero().squeeze(1)  # flat positions of the real tokens
        n = int(keep.numel())
        extra = -n % self.ROWS
        emb = self.bert.embeddings
        x = (
            emb.word_embeddings(input_ids.reshape(-1)[keep])
            + emb.position_embeddings(keep % length)  # a token's position is its column
            + emb.token_type_embeddings.weight[0]
        )
        x = F.pad(emb.LayerNorm(x), (0, 0, 0, extra))
        width = x.shape[1]
        key_mask = mask[:, None, None, :]
        for layer, qkv in zip(self.bert.encoder.layer, self.qkv, strict=True):
            padded = x.new_zeros(b * length, 3 * width)
            padded[keep] = qkv(x)[:n]
            q, k, v = padded.view(b, length, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
            att = F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask)
            att = F.pad(att.transpose(1, 2).reshape(b * length, width)[keep], (0, 0, 0, extra))
            out = layer.attention.output
            x = out.LayerNorm(out.dense(att) + x)
            x = layer.output.LayerNorm(layer.output.dense(layer.intermediate(x)) + x)
        if self.projection is not None:
            x = self.projection(x)
        hidden = x.new_zeros(b * length, x.shape[1])
        hidden[keep] = x[:n]
        return hidden.view(b, length, -1)


# Linear layers of each BERT layer that each int8 runtime keeps in float32 (measured: docs/inference.md). Names: qkv
# (fused query/key/value), attn_out, ffn_in, ffn_out; "ffn_out" is the layer fed by GELU activations, whose outliers
# per-batch activation scales handle worst (full int8 costs the 12-layer e5 ~0.01 F1, the 6-layer MiniLM ~0.002).
INT8_FLOAT_LAYERS: dict[str, tuple[str, ...]] = {"fused-int8": (), "fused-int8-mixed": ("ffn_out",)}


@dataclass(frozen=True)
class Int8Kernel:
    """How the int8 runtimes' matrix products run: the torch quantised engine that packs the weights
    (the packing decides the kernel) and whether activations are cut to 7 bits.

    ``reduce_range`` exists for CPUs without VNNI, whose u8 x s8 instruction (AVX2's ``vpmaddubsw``)
    sums pairs of products in int16 and saturates on full-range activations; VNNI and AMX sum in
    int32, so there the full 8 bits are safe and halve the activations' rounding error.
    ``onednn`` runs on AMX tiles where the CPU has them (2-3x ``fbgemm``'s AVX512-VNNI kernel per layer
    for the MiniLM's shapes, the same numbers); elsewhere ``fbgemm``. Measured: docs/inference.md.
    """

    engine: str = "fbgemm"
    reduce_range: bool = True

    @classmethod
    def for_cpu(cls, flags: frozenset[str] | None = None) -> Int8Kernel:
        """The kernel for a CPU with these flags (default: this CPU's)."""
        import torch

        flags = cpu_flags() if flags is None else flags
        vnni = bool(flags & {"avx512_vnni", "avx_vnni", "amx_int8"})
        amx = "amx_int8" in flags and "onednn" in torch.backends.quantized.supported_engines
        return cls(engine="onednn" if amx else "fbgemm", reduce_range=not vnni)

    def __str__(self) -> str:
        return f"{self.engine}, {7 if self.reduce_range else 8}-bit activations"


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


class FastEngine:
    """Runs a collated GLiNER batch through the fused head and the chosen encoder runtime."""

    def __init__(
        self,
        model: Any,
        runtime: str = "fused",
        threads: int = 0,
        padding_free: bool = True,
        int8_kernel: Int8Kernel | None = None,
    ) -> None:
        """``padding_free=False`` keeps GLiNER's padded encoder and packed LSTM, ``int8_kernel`` overrides
        :meth:`Int8Kernel.for_cpu` (both for side-by-side benchmarks)."""
        import torch

        if runtime not in RUNTIMES or runtime == "torch":
            raise ConfigError(f"Unknown fast runtime {runtime!r}.", f"use one of: {', '.join(RUNTIMES)}.")
        self.runtime = runtime
        self.int8_kernel: Int8Kernel | None = None
        self.core = model.model
        if type(self.core).__name__ != "UniEncoderSpanModel":
            raise ModelError(
                f"Fast inference supports uni-encoder span GLiNER models, not {type(self.core).__name__}.",
                "load with runtime='torch'.",
            )
        self.head = _fused_head(self.core).eval()
        self.encoder = self.core.token_rep_layer
        self._onnx: OnnxEncoder | None = None
        self._unpadded: UnpaddedBert | None = None
        rnn: Any = getattr(self.core, "rnn", None)
        dtype = torch.bfloat16 if runtime == "fused-bf16" else next(self.core.parameters()).dtype
        unpack = padding_free and rnn is not None and UnpackedBiLSTM.supports(rnn)
        self.rnn: Any = UnpackedBiLSTM(rnn.lstm, dtype) if unpack else rnn
        # without the unpacked LSTM, the bf16 runtime runs the LSTM under autocast
        self.autocast = runtime == "fused-bf16" and not isinstance(self.rnn, UnpackedBiLSTM)
        if runtime == "fused-bf16":
            import copy

            # bf16 copies of the encoder and the fused head (weights cast once, not per batch);
            # scores come back as float32
            self.encoder = copy.deepcopy(self.encoder).to(torch.bfloat16)
            self.head = copy.deepcopy(self.head).to(torch.bfloat16)
        elif runtime in INT8_FLOAT_LAYERS:
            self.int8_kernel = int8_kernel or Int8Kernel.for_cpu()
            keep = INT8_FLOAT_LAYERS[runtime]
            self.encoder, self._unpadded = int8_encoder(self.encoder, self.int8_kernel, padding_free, keep)
            self.head = int8_head(self.head, self.int8_kernel)
            log.info("%s: int8 matrix products on %s", runtime, self.int8_kernel)
        elif runtime in ("onnx", "onnx-int8"):
            if getattr(self.encoder, "projection", None) is not None:
                raise ModelError(
                    "ONNX runtime does not support encoders with a projection layer.", "use runtime='fused'."
                )
            self._onnx = OnnxEncoder(self.encoder.bert_layer, quantize=runtime == "onnx-int8", threads=threads)
        if padding_free and runtime in ("fused", "fused-bf16") and UnpaddedBert.supports(self.encoder):
            self._unpadded = UnpaddedBert(self.encoder.bert_layer.model, getattr(self.encoder, "projection", None))

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
                words, mask = core._fit_length(words, mask, target_w)
                scores = self.head(words, prompts, span_mask.view(words.shape[0], target_w, -1))
        return FastOutput(scores.float(), span_idx, span_mask)
