"""Load and run GLiNER location models with lmr's word splitter.

Words come from :func:`lmr.words.split_words` at training and inference time, so
predictions map back to exact character offsets. For uncased encoders (such as
the offline MiniLM), capitalisation, a strong cue for names, is added back as
case markers appended to each word (``Houston`` -> ``Houston^``, ``NYC`` ->
``NYC^^``): the word's first sub-token (its representation) stays the same and
attention sees the marker. Settings that must match between training and
inference live in ``lmr.json`` next to the GLiNER files.
"""

from __future__ import annotations

import json
import logging
import math
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lmr import environment
from lmr.errors import ModelNotFoundError
from lmr.mentions import Mention
from lmr.model import autotune, calibration
from lmr.model.collate import make_collator
from lmr.model.pieces import WordPieces
from lmr.model.pieces import mark_case as mark_case  # re-exported: the model's view of words
from lmr.model.pieces import model_tokens as model_tokens
from lmr.model.runtimes import catalog
from lmr.model.runtimes.base import RuntimeOptions
from lmr.model.span_prior import Candidate, Lexicon, SpanPrior, candidates, greedy, span_features
from lmr.words import VERSION as WORDS_VERSION
from lmr.words import Word, split_words

log = logging.getLogger(__name__)

SPEC_FILE = "lmr.json"


@dataclass
class ModelSpec:
    """Settings stored with a model that inference must reproduce."""

    labels: list[str] = field(default_factory=lambda: ["location"])
    threshold: float = 0.5
    case_markers: bool = False
    words: str = WORDS_VERSION
    flat_ner: bool = True
    span_prior: dict[str, Any] | None = None  # lmr.model.span_prior.SpanPrior.to_dict(), names in lexicon.tsv.gz

    def save(self, directory: Path) -> None:
        (directory / SPEC_FILE).write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, directory: Path) -> ModelSpec:
        f = directory / SPEC_FILE
        if not f.is_file():
            return cls()
        data = json.loads(f.read_text(encoding="utf-8"))
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def quiet_libraries() -> None:
    """Silence the chatty loggers and warnings of transformers, GLiNER and the hub."""
    environment.set_defaults(offline=False)
    warnings.filterwarnings("ignore", message=".*truncated.*")
    for name in ("transformers", "gliner", "huggingface_hub"):
        logging.getLogger(name).setLevel(logging.ERROR)


def load_gliner(ref: str, *, local_files_only: bool | None = None, map_location: str = "cpu") -> Any:
    """Load a GLiNER model from a local directory or the Hugging Face hub."""
    quiet_libraries()
    from gliner import GLiNER

    path = Path(ref)
    local = path.is_dir()
    if local and not (path / "gliner_config.json").is_file():
        raise ModelNotFoundError(
            f"{path} is not a GLiNER model directory (no gliner_config.json).",
            "pass a published model (REGISTRY/NAME[/VERSION]), a GLiNER directory, or hf:ORG/NAME.",
        )
    if local_files_only is None:
        local_files_only = local or os.environ.get("HF_HUB_OFFLINE") == "1"
    try:
        return GLiNER.from_pretrained(
            str(path) if local else ref, local_files_only=local_files_only, map_location=map_location
        )
    except (OSError, ValueError) as exc:
        where = "directory" if local else "hub id"
        raise ModelNotFoundError(
            f"Could not load GLiNER model from {where} {ref!r}: {exc}.",
            "check the path, or for a hub id make sure the hub is reachable (unset HF_HUB_OFFLINE) "
            "or use the offline path: lmr-trainer run --encoder DIR.",
        ) from exc


class Extractor:
    """Runs a GLiNER model over raw posts and returns mentions with exact character offsets."""

    def __init__(
        self,
        model: Any,
        spec: ModelSpec,
        *,
        name: str = "",
        version: str = "",
        path: str = "",
        runtime: str = "torch",
        threads: int = 0,
        prior: SpanPrior | None = None,
        lexicon: Lexicon | None = None,
    ) -> None:
        """``prior`` with ``lexicon`` rescores candidate spans before decoding (:mod:`lmr.model.span_prior`)."""
        self.model = model
        self.runtime = runtime
        self.runtime_choice: Any = None  # lmr.model.autotune.RuntimeChoice when loaded with runtime="auto"
        self.engine: Any = catalog.build(runtime, model, RuntimeOptions(threads=threads))
        self.spec = spec
        self.prior = prior if lexicon is not None else None
        self.lexicon = lexicon
        self.name = name
        self.version = version
        self.path = path
        self.model.eval()
        self._collator = model.create_collator()
        # the fast runtimes also collate fast (the same batch); torch stays plain GLiNER, collator included
        fast_collator = make_collator(model) if self.engine is not None else None
        self.pieces = WordPieces(model, spec.labels, spec.case_markers, self._collator, fast_collator)

    @property
    def model_id(self) -> str:
        """``name@version`` as written into events."""
        return f"{self.name}@{self.version}" if self.version else self.name

    @property
    def max_words(self) -> int:
        """Longest post, in words, that the model reads at once."""
        return int(self.model.config.max_len)

    def predict_words(
        self,
        words_list: Sequence[Sequence[Word]],
        texts: Sequence[str],
        *,
        threshold: float | None = None,
        batch_size: int = 16,
        sort_by_length: bool = True,
        token_budget: int = 0,
    ) -> list[list[Mention]]:
        """Predict on pre-split posts; batches are formed from posts of similar length (less padding).

        ``token_budget`` > 0 also caps each batch at that many padded words (batch size by token
        budget, for GPUs); ``batch_size`` stays the upper bound on posts per batch.
        """
        thr = self.spec.threshold if threshold is None else threshold
        out: list[list[Mention]] = [[] for _ in texts]
        for idx, batch, raw in self._forward(words_list, batch_size, sort_by_length, token_budget, thr):
            if self.prior is not None:
                for r, i in enumerate(idx):
                    scored = self.candidate_spans(raw[0][r], words_list[i], texts[i])
                    out[i] = self._mentions(greedy(scored, thr), words_list[i], texts[i])
                continue
            decoded = self.model.decode_batch(raw, batch, threshold=thr, flat_ner=self.spec.flat_ner, multi_label=False)
            for i, spans in zip(idx, decoded, strict=True):
                words, text = words_list[i], texts[i]
                ms = []
                for sp in spans:
                    if sp.end >= len(words):
                        continue
                    s, e = words[sp.start].start, words[sp.end].end
                    ms.append(Mention(text[s:e], s, e, round(float(sp.score), 4), str(sp.entity_type)))
                out[i] = sorted(ms, key=lambda m: m.start)
        return out

    def _forward(
        self, words_list: Sequence[Sequence[Word]], batch_size: int, sort_by_length: bool, token_budget: int, thr: float
    ) -> Iterator[tuple[list[int], dict[str, Any], Any]]:
        """(post indices, collated batch, model output) per batch of the non-empty posts."""
        import torch

        order = [i for i in range(len(words_list)) if words_list[i]]
        tokens = [model_tokens(w, self.spec.case_markers) if w else [] for w in words_list]
        lengths = [len(w) for w in words_list]
        if sort_by_length and len(order) > 1:
            # the encoder pads to the longest sub-word sequence of a batch: group by that length
            lengths = self.pieces.lengths(tokens, order)
            order.sort(key=lambda i: lengths[i])
        for idx in _batches(order, lengths, batch_size, token_budget):
            with torch.inference_mode():
                batch = self._collate([tokens[i] for i in idx])
                raw = self.engine(batch) if self.engine is not None else self.model.run_batch(batch, threshold=thr)
            yield idx, batch, raw

    def candidate_spans(self, logits: Any, words: Sequence[Word], text: str) -> list[tuple[Candidate, float]]:
        """One post's candidate spans, each with its score: the span prior's where the model has one, else the
        model's probability. Overlapping candidates all stay (decoding picks among them)."""
        out = []
        for c in candidates(logits.float().cpu(), len(words)):
            if self.prior is None or self.lexicon is None:
                out.append((c, 1.0 / (1.0 + math.exp(-c.logit))))
                continue
            s, e = words[c.first].start, words[c.last].end
            out.append((c, self.prior.score(span_features(text[s:e], c.last - c.first + 1, c.logit, self.lexicon))))
        return out

    def candidates_of(self, texts: Sequence[str], *, batch_size: int = 16) -> list[list[tuple[Candidate, float]]]:
        """:meth:`candidate_spans` of every post (empty posts have none)."""
        words_list = [split_words(t) for t in texts]
        out: list[list[tuple[Candidate, float]]] = [[] for _ in texts]
        for idx, _, raw in self._forward(words_list, batch_size, True, 0, 0.5):
            for r, i in enumerate(idx):
                out[i] = self.candidate_spans(raw[0][r], words_list[i], texts[i])
        return out

    def _mentions(self, kept: Sequence[tuple[Candidate, float]], words: Sequence[Word], text: str) -> list[Mention]:
        ms = []
        for c, score in kept:
            s, e = words[c.first].start, words[c.last].end
            ms.append(Mention(text[s:e], s, e, round(score, 4), self.spec.labels[c.label]))
        return sorted(ms, key=lambda m: m.start)

    def _collate(self, tokens: list[list[str]]) -> dict[str, Any]:
        if self._fast_collator is not None:
            return self._fast_collator.collate(tokens, self.spec.labels)
        input_x = [{"tokenized_text": t, "ner": None} for t in tokens]
        batch: dict[str, Any] = self.model.collate_batch(input_x, list(self.spec.labels), self._collator)
        return batch

    @property
    def _fast_collator(self) -> Any:
        """The fast collator (None: plain GLiNER collation); its cache of word pieces also serves :attr:`pieces`."""
        return self.pieces.fast_collator

    @_fast_collator.setter
    def _fast_collator(self, collator: Any) -> None:
        self.pieces.fast_collator = collator

    def word_pieces(self, words_list: Sequence[Sequence[Word]]) -> list[list[int]]:
        """Sub-word pieces of each word as the encoder sees it (:meth:`WordPieces.of_words`)."""
        return self.pieces.of_words(words_list)

    @property
    def max_pieces(self) -> int:
        """Sub-word pieces of a post's words that the encoder reads in one pass (:attr:`WordPieces.limit`)."""
        return self.pieces.limit

    def predict(
        self, texts: Sequence[str], *, threshold: float | None = None, batch_size: int = 16
    ) -> list[list[Mention]]:
        """Mentions for each post, in order; empty posts give no mentions."""
        return self.predict_words([split_words(t) for t in texts], texts, threshold=threshold, batch_size=batch_size)


def _batches(order: list[int], lengths: list[int], batch_size: int, token_budget: int) -> list[list[int]]:
    """Consecutive groups of ``order``: at most ``batch_size`` posts and ``token_budget`` padded words."""
    out: list[list[int]] = []
    cur: list[int] = []
    longest = 0
    for i in order:
        n = max(longest, lengths[i])
        if cur and (len(cur) >= batch_size or (token_budget > 0 and n * (len(cur) + 1) > token_budget)):
            out.append(cur)
            cur, n = [], lengths[i]
        cur.append(i)
        longest = n
    if cur:
        out.append(cur)
    return out


def load_extractor(
    ref: str,
    *,
    verify_files: bool = True,
    map_location: str = "cpu",
    runtime: str = "torch",
    threads: int = 0,
    auto: Any = None,
) -> Extractor:
    """Load a published model (checksums verified), a GLiNER directory, or ``hf:ORG/NAME`` (the hub).

    ``runtime`` picks the inference path (see :mod:`lmr.model.runtimes`): ``auto`` (the fastest runtime
    that agrees with the exact one, measured on this machine: :mod:`lmr.model.autotune`; ``auto``
    takes an :class:`~lmr.model.autotune.AutoOptions`, default from the environment), ``torch``
    (plain GLiNER), ``fused``, ``fused-bf16``, ``fused-int8``, ``onnx`` or ``onnx-int8``.
    ``map_location="cuda"`` runs on a GPU in bf16 where supported.
    """
    from lmr.model import registry

    measure = runtime == "auto" and not map_location.startswith("cuda")
    runtime = catalog.EXACT if measure else catalog.resolve_runtime(runtime, map_location)
    if threads > 0:
        import torch

        torch.set_num_threads(threads)  # process-wide: also the ONNX session's size below
    r = registry.resolve(ref)
    if r.kind == "version" and verify_files:
        registry.verify(Path(r.path))
    model = load_gliner(r.path, map_location=map_location)
    if map_location.startswith("cuda"):
        import torch

        model = model.to(map_location)
        if torch.cuda.is_bf16_supported():
            model = model.to(torch.bfloat16)
    spec = ModelSpec.load(Path(r.path)) if r.kind != "hub" else ModelSpec(case_markers=False)
    prior = SpanPrior.from_dict(spec.span_prior) if spec.span_prior else None
    lexicon = Lexicon.load(Path(r.path)) if prior is not None else None

    def build(rt: str) -> Extractor:
        return Extractor(
            model,
            spec,
            name=r.name,
            version=r.version,
            path=r.path,
            runtime=rt,
            threads=threads,
            prior=prior,
            lexicon=lexicon,
        )

    if not measure:
        return build(runtime)

    def probe(rt: str) -> tuple[SpanRun, Extractor]:
        ex = build(rt)
        return span_run(ex), ex

    choice, ex = autotune.choose(r.path, probe, auto)
    ex = ex or build(choice.runtime)
    ex.runtime_choice = choice
    log.info("%s", choice.summary())
    return ex


# What ``auto`` times and compares: (texts, their words) -> each post's (start, end) spans.
SpanRun = Callable[[list[str], list[Any]], list[list[tuple[int, int]]]]


def span_run(ex: Extractor) -> SpanRun:
    """``ex``'s spans as ``auto`` compares them (:mod:`lmr.model.autotune`)."""
    return lambda texts, words: [[(m.start, m.end) for m in ms] for ms in ex.predict_words(words, texts)]


def calibrate(directory: Path, extractor: Extractor, texts: Sequence[str], *, measure: bool = True) -> dict[str, str]:
    """Write ``directory/calibration.json`` from ``texts`` (training posts); returns model-card lines.

    With ``measure``, ``auto`` is also run here on the publishing machine, and the card records its figures.
    """
    cal = calibration.build(extractor, texts)
    cal.save(directory / calibration.FILE)
    card = {"calibration set (auto)": f"{len(cal.texts)} training posts with the {cal.runtime} runtime's spans"}
    if not measure or not cal.texts:
        return card

    def probe(rt: str) -> tuple[SpanRun, Extractor]:
        ex = Extractor(extractor.model, extractor.spec, runtime=rt)
        return span_run(ex), ex

    choice = autotune.measure(cal, probe)
    card["auto on the publishing machine"] = f"{choice.summary()} [{autotune.cpu_identity()}]"
    return card
