"""Words as the model reads them, and their sub-word pieces: how many the encoder makes, how many it reads at once.

The extractor groups posts of similar length by their pieces (less padding) and the worker cuts
long posts into windows that fit :attr:`WordPieces.limit`. With the fast collator
(:mod:`lmr.model.collate`) its cache of each word's pieces answers without the tokenizer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lmr.words import Word


def mark_case(word: str) -> str:
    """Append a case marker: ``^`` for Capitalised, ``^^`` for ALL-CAPS words of 2+ letters."""
    if len(word) > 1 and word.isupper():
        return word + "^^"
    if word[:1].isupper():
        return word + "^"
    return word


def model_tokens(words: Sequence[Word], case_markers: bool) -> list[str]:
    """The token strings the model sees for ``words``."""
    if case_markers:
        return [mark_case(w.text) for w in words]
    return [w.text for w in words]


class WordPieces:
    """Piece counts of a GLiNER ``model``'s encoder for words as it reads them (``case_markers``: :func:`mark_case`);
    ``labels`` are the label prompt GLiNER adds to every input."""

    def __init__(
        self, model: Any, labels: Sequence[str], case_markers: bool, collator: Any, fast_collator: Any = None
    ) -> None:
        self.model = model
        self.labels = list(labels)
        self.case_markers = case_markers
        self.collator = collator
        self.fast_collator = fast_collator
        self._limit: int | None = None

    def tokenizer(self) -> Any:
        """The encoder's fast tokenizer, or ``None`` (an unusual model: callers fall back to word counts)."""
        tok = getattr(getattr(self.model, "data_processor", None), "transformer_tokenizer", None)
        return tok if getattr(tok, "is_fast", False) else None

    def lengths(self, tokens: list[list[str]], order: list[int]) -> list[int]:
        """Sub-word tokens per post (one batched call of the fast tokenizer); word counts as fallback."""
        lengths = [len(t) for t in tokens]
        if self.fast_collator is not None:  # its cache of each word's pieces answers without the tokenizer
            counts = self.fast_collator.piece_counts([tokens[i] for i in order])
            for i, c in zip(order, counts, strict=True):
                lengths[i] = sum(c)
            return lengths
        tok = self.tokenizer()
        if tok is None:
            return lengths
        try:
            enc = tok([tokens[i] for i in order], is_split_into_words=True, add_special_tokens=False, verbose=False)
        except Exception:  # an unusual tokenizer: word counts are a fine proxy
            return lengths
        for i, ids in zip(order, enc["input_ids"], strict=True):
            lengths[i] = len(ids)
        return lengths

    def of_words(self, words_list: Sequence[Sequence[Word]]) -> list[list[int]]:
        """Sub-word pieces of each word as the encoder sees it (case markers included); 1 each without a tokenizer.

        Pieces of a pre-split word do not depend on its neighbours, so a window's length is the sum over its words.
        """
        out = [[1] * len(w) for w in words_list]
        tok = self.tokenizer()
        todo = [i for i, w in enumerate(words_list) if w]
        if tok is None or not todo:
            return out
        tokens = [model_tokens(words_list[i], self.case_markers) for i in todo]
        if self.fast_collator is not None:  # its cache of each word's pieces answers without the tokenizer
            for i, c in zip(todo, self.fast_collator.piece_counts(tokens), strict=True):
                out[i] = c
            return out
        enc = tok(tokens, is_split_into_words=True, add_special_tokens=False, verbose=False)
        for row, i in enumerate(todo):
            counts = [0] * len(words_list[i])
            for wid in enc.word_ids(row):
                if wid is not None:
                    counts[wid] += 1
            out[i] = counts
        return out

    @property
    def limit(self) -> int:
        """Sub-word pieces of a post's words that the encoder reads in one pass.

        The tokenizer's input limit (512 for BERT-like encoders) less what GLiNER adds to every
        input (the special tokens and the label prompt, measured once on a one-word post); beyond
        it the tokenizer truncates silently. Without a tokenizer: the model's longest input in words.
        """
        if self._limit is None:
            self._limit = self._budget()
        return self._limit

    def _budget(self) -> int:
        tok = self.tokenizer()
        if tok is None:
            return int(self.model.config.max_len)
        limit = int(getattr(tok, "model_max_length", 0) or 0)
        if not 0 < limit < 1_000_000:  # "no limit" sentinel: the encoder's position embeddings are the limit
            enc = getattr(self.model.config, "encoder_config", None)
            limit = int(getattr(enc, "max_position_embeddings", 512) or 512)
        one = [{"tokenized_text": ["x"], "ner": None}]
        batch = self.model.collate_batch(one, list(self.labels), self.collator)
        x = len(tok([["x"]], is_split_into_words=True, add_special_tokens=False)["input_ids"][0])
        overhead = int(batch["input_ids"].shape[1]) - x
        return max(1, limit - overhead)
