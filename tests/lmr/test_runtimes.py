"""The fast runtimes must give the plain model's answers (fused, onnx) or close ones (int8)."""

from pathlib import Path

import pytest

from lmr.errors import ConfigError
from lmr.model.extractor import load_extractor
from lmr.model.runtimes.catalog import resolve_runtime

TEXTS = [
    "Flooding reported in Houston, Texas tonight",
    "Evacuations ordered along the Guadalupe River near Victoria #HoustonStrong",
    "ok",
    "Wildfire near Redding forces thousands to flee, Shasta County sheriff says, more in Sacramento later today",
]


@pytest.fixture(scope="module")
def plain(tiny_model: Path):  # type: ignore[no-untyped-def]
    return load_extractor(str(tiny_model), runtime="torch")


@pytest.mark.parametrize("runtime", ["fused", "onnx"])
def test_exact_runtimes_match_plain_gliner(plain, tiny_model: Path, runtime: str) -> None:  # type: ignore[no-untyped-def]
    fast = load_extractor(str(tiny_model), runtime=runtime)
    a = plain.predict(TEXTS, threshold=0.01)
    b = fast.predict(TEXTS, threshold=0.01)
    assert sum(map(len, a)) > 0
    for pa, pb in zip(a, b, strict=True):
        assert [(m.start, m.end) for m in pa] == [(m.start, m.end) for m in pb]
        for ma, mb in zip(pa, pb, strict=True):
            assert ma.score == pytest.approx(mb.score, abs=2e-3)


@pytest.mark.parametrize("runtime", ["fused-int8", "fused-int8-mixed", "fused-bf16", "onnx-int8"])
def test_reduced_precision_runtimes_keep_offsets_and_close_scores(plain, tiny_model: Path, runtime: str) -> None:  # type: ignore[no-untyped-def]
    fast = load_extractor(str(tiny_model), runtime=runtime)
    got = fast.predict(TEXTS, threshold=0.01)
    for text, ms in zip(TEXTS, got, strict=True):
        assert all(text[m.start : m.end] == m.text for m in ms)
    ref = {(i, m.start, m.end): m.score for i, ms in enumerate(plain.predict(TEXTS, threshold=0.01)) for m in ms}
    mine = {(i, m.start, m.end): m.score for i, ms in enumerate(got) for m in ms}
    shared = ref.keys() & mine.keys()
    assert len(shared) >= 0.8 * len(ref)  # nearly the same spans ...
    assert all(abs(ref[k] - mine[k]) < 0.05 for k in shared)  # ... with nearly the same scores


def test_int8_runtimes_differ_in_the_gelu_fed_layer_only(tiny_model: Path) -> None:
    """``fused-int8`` quantises every linear layer of each transformer layer; ``-mixed`` keeps the GELU-fed one."""
    from torch import nn
    from torch.ao.nn.quantized.dynamic import Linear as Int8Linear

    def kinds(runtime: str) -> set[tuple[str, str]]:
        engine = load_extractor(str(tiny_model), runtime=runtime).engine
        out = set()
        for i, layer in enumerate(engine.encoder.bert_layer.model.encoder.layer):
            dense = {"qkv": engine._unpadded.qkv[i], "attn_out": layer.attention.output.dense}
            dense |= {"ffn_in": layer.intermediate.dense, "ffn_out": layer.output.dense}
            out |= {(name, "int8" if isinstance(m, Int8Linear) else type(m).__name__) for name, m in dense.items()}
        return out

    int8 = {("qkv", "int8"), ("attn_out", "int8"), ("ffn_in", "int8")}
    assert kinds("fused-int8") == int8 | {("ffn_out", "int8")}
    assert kinds("fused-int8-mixed") == int8 | {("ffn_out", nn.Linear.__name__)}
    assert kinds("fused") == {(name, nn.Linear.__name__) for name, _ in int8 | {("ffn_out", "")}}


@pytest.mark.parametrize(("keep_float", "float_layers"), [((), set()), (("ffn_out",), {"output.dense"})])
def test_int8_of_a_padded_encoder_keeps_the_gelu_fed_layers_where_asked(
    plain, keep_float: tuple[str, ...], float_layers: set[str]
) -> None:  # type: ignore[no-untyped-def]
    """Encoders the padding-free path does not take (e.g. DeBERTa) get the same two int8 variants."""
    from torch import nn

    from lmr.model.runtimes.cpu import Int8Kernel
    from lmr.model.runtimes.int8 import int8_encoder

    layer = plain.model.model.token_rep_layer
    enc, unpadded = int8_encoder(layer, Int8Kernel.for_cpu(), padding_free=False, keep_float=keep_float)
    assert unpadded is None
    layers = {n.split(".layer.")[-1].split(".", 1)[-1] for n, m in enc.named_modules() if type(m) is nn.Linear}
    assert layers == float_layers
    assert any("quantized" in type(m).__module__ for m in enc.modules())


@pytest.mark.parametrize(
    ("flags", "engine", "reduce_range"),
    [
        ({"avx2", "fma"}, "fbgemm", True),  # AVX2 sums u8 x s8 pairs in int16: 7-bit activations
        ({"avx2", "avx_vnni"}, "fbgemm", False),
        ({"avx512f", "avx512_vnni"}, "fbgemm", False),
        ({"avx512f", "avx512_vnni", "amx_tile", "amx_int8"}, "onednn", False),
        (set(), "fbgemm", True),  # nothing known (no /proc/cpuinfo): the safe choice
    ],
)
def test_int8_kernel_follows_the_cpu(flags: set[str], engine: str, reduce_range: bool) -> None:
    from lmr.model.runtimes.cpu import Int8Kernel

    assert Int8Kernel.for_cpu(frozenset(flags)) == Int8Kernel(engine, reduce_range)


@pytest.mark.parametrize(
    "kernel", [("fbgemm", True), ("fbgemm", False), ("onednn", False)], ids=["fbgemm-7bit", "fbgemm", "onednn"]
)
def test_int8_linear_is_close_to_float_and_8_bit_activations_are_closer(kernel: tuple[str, bool]) -> None:
    """Each kernel's layer computes the float layer's product (GELU-like skewed inputs with outliers)."""
    import torch

    from lmr.model.runtimes.cpu import Int8Kernel
    from lmr.model.runtimes.int8 import int8_linear

    if kernel[0] not in torch.backends.quantized.supported_engines:
        pytest.skip(f"torch here has no {kernel[0]} engine")
    torch.manual_seed(0)
    lin = torch.nn.Linear(256, 96)
    x = torch.nn.functional.gelu(3 * torch.randn(40, 256))
    x[3, 7] = 40.0  # one outlier activation, as GELU-fed layers see
    ref = lin(x).detach()

    def error(k: Int8Kernel) -> float:
        engine = torch.backends.quantized.engine
        q = int8_linear(lin, k)
        assert torch.backends.quantized.engine == engine  # packing on k.engine leaves the global setting alone
        assert q.reduce_range == k.reduce_range
        with torch.inference_mode():
            return float((q(x) - ref).abs().mean() / ref.abs().mean())

    err = error(Int8Kernel(*kernel))
    assert err < 0.05
    if not kernel[1]:
        assert err < 0.8 * error(Int8Kernel(kernel[0], reduce_range=True))


def test_int8_runtimes_run_on_the_kernel_of_this_cpu(tiny_model: Path) -> None:
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    from lmr.model.runtimes.cpu import Int8Kernel

    engine = load_extractor(str(tiny_model), runtime="fused-int8").engine
    assert engine.int8_kernel == Int8Kernel.for_cpu()
    layers = [m for part in (engine.encoder, engine.head) for m in part.modules() if isinstance(m, DynamicLinear)]
    layers += engine._unpadded.qkv
    assert len(layers) > 5
    assert {m.reduce_range for m in layers} == {engine.int8_kernel.reduce_range}
    assert load_extractor(str(tiny_model), runtime="fused").engine.int8_kernel is None


def test_runtime_choice() -> None:
    from lmr.model.runtimes.cpu import cpu_has_native_bf16

    assert resolve_runtime("auto", "cpu") == ("fused-bf16" if cpu_has_native_bf16() else "fused")
    assert resolve_runtime("auto", "cuda") == "fused"
    with pytest.raises(ConfigError, match="Unknown runtime"):
        resolve_runtime("tensorrt")
    with pytest.raises(ConfigError, match="CPU only"):
        resolve_runtime("onnx", "cuda:0")
    with pytest.raises(ConfigError, match="CPU only"):
        resolve_runtime("fused-bf16", "cuda")


def test_batches_respect_size_and_token_budget() -> None:
    from lmr.model.extractor import _batches

    lengths = [5, 5, 10, 10, 40]
    assert _batches([0, 1, 2, 3, 4], lengths, 3, 0) == [[0, 1, 2], [3, 4]]
    groups = _batches([0, 1, 2, 3, 4], lengths, 8, 30)
    assert sorted(i for g in groups for i in g) == [0, 1, 2, 3, 4]
    assert all(len(g) * max(lengths[i] for i in g) <= 30 or len(g) == 1 for g in groups)


def test_padding_free_encoder_and_unpacked_lstm_equal_gliner_layers(plain) -> None:  # type: ignore[no-untyped-def]
    """The fused runtime's BERT pass over real tokens only and its unpacked LSTM give GLiNER's own numbers."""
    import torch

    from lmr.model.extractor import model_tokens
    from lmr.model.runtimes.unpacked_lstm import UnpackedBiLSTM
    from lmr.model.runtimes.unpadded_bert import UnpaddedBert

    core = plain.model.model
    assert UnpaddedBert.supports(core.token_rep_layer) and UnpackedBiLSTM.supports(core.rnn)
    fast = load_extractor(str(plain.path), runtime="fused")
    assert fast.engine._unpadded is not None and isinstance(fast.engine.rnn, UnpackedBiLSTM)

    from lmr.words import split_words

    # posts of very different lengths in one batch: most positions of the short ones are padding
    inp = [{"tokenized_text": model_tokens(split_words(t), True), "ner": None} for t in TEXTS]
    batch = plain.model.collate_batch(inp, ["location"], plain._collator)
    ids, mask = batch["input_ids"], batch["attention_mask"]
    assert (mask == 0).any()
    with torch.inference_mode():
        want = core.token_rep_layer(ids, mask)
        got = fast.engine._unpadded(ids, mask)
        real = mask.bool()
        assert torch.allclose(got[real], want[real], atol=1e-4)
        assert (got[~real] == 0).all()

        words = torch.randn(4, 9, core.rnn.lstm.input_size)
        wmask = torch.tensor([[1] * 9, [1] * 3 + [0] * 6, [1] * 7 + [0] * 2, [1] + [0] * 8])
        want_w = core.rnn(words, wmask)
        got_w = fast.engine.rnn(words, wmask)
        assert got_w.shape == want_w.shape
        assert torch.allclose(got_w, want_w, atol=1e-5)
