"""GLiNER's inference batch, built without its per-call overhead: the same tensors, a few times sooner.

GLiNER's span collator re-tokenises every post with the Hugging Face tokenizer (and converts its
nested lists to tensors element by element), then builds each post's span list in Python: about a
millisecond per post, ~7% of a fast runtime's time on a 2-core CPU. :class:`FastCollator` builds the
same batch from

* the sub-word pieces of each *word*, kept in a bounded cache: with ``is_split_into_words`` a word's
  pieces do not depend on its neighbours, so a post's ids are the prompt's, then its words' pieces,
  inside the tokenizer's own special tokens (read once from the tokenizer), truncated as it truncates;
* span indices and masks from tensor arithmetic instead of per-post Python lists.

Equality with GLiNER's own collator, key by key, is tested on generated posts
(``tests/lmr/test_collate.py``). Models it does not know how to mirror (another processor, a slow tokenizer,
pooling other than the first sub-word, precomputed prompts) keep GLiNER's collator: :func:`make_collator`.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from lmr.lru import ByteLRU

WORD_CACHE_BYTES = 64 * 2**20  # ~250 bytes a word: a crisis stream's vocabulary stays far below this


class FastCollator:
    """``collate(words_list, labels)`` -> the batch GLiNER's ``UniEncoderSpanDataCollator`` builds for inference."""

    def __init__(self, model: Any, cache_bytes: int = WORD_CACHE_BYTES) -> None:
        proc = model.data_processor
        self.tokenizer = proc.transformer_tokenizer
        self.max_width = int(model.config.max_width)
        self.max_len = int(model.config.max_len)
        self.ent_token, self.sep_token = proc.ent_token, proc.sep_token
        self._pieces: ByteLRU[str, list[int]] = ByteLRU("word_pieces", cache_bytes)  # bytes: a word can be 50 KB
        self._lock = threading.Lock()  # one tokenizer call at a time (a fast tokenizer is not reentrant)
        tok = self.tokenizer
        bare = tok([["x"]], is_split_into_words=True, add_special_tokens=False)["input_ids"][0]
        full = tok([["x"]], is_split_into_words=True)
        ids = full["input_ids"][0]
        at = next(i for i in range(len(ids)) if ids[i : i + len(bare)] == bare)
        self.prefix, self.suffix = ids[:at], ids[at + len(bare) :]
        self.with_types = "token_type_ids" in full
        self.limit = int(tok.model_max_length) if 0 < int(tok.model_max_length) < 1_000_000 else 0
        self.pad_id = int(tok.pad_token_id)
        self.pad_type = int(getattr(tok, "pad_token_type_id", 0))

    def pieces(self, words: Sequence[str]) -> list[list[int]]:
        """Sub-word ids of each word (no special tokens), from the cache or one tokenizer call for the new ones.

        Thread-safe: callers in several threads share the cache."""
        known: dict[str, list[int]] = {}
        for w in words:
            if w not in known and (hit := self._pieces.get(w)) is not None:
                known[w] = hit
        new = list(dict.fromkeys(w for w in words if w not in known))
        if new:
            with self._lock:
                enc = self.tokenizer([[w] for w in new], is_split_into_words=True, add_special_tokens=False)
            for w, ids in zip(new, enc["input_ids"], strict=True):
                known[w] = list(ids)
                self._pieces.put(w, known[w])  # the least recently used words leave first
        return [known[w] for w in words]

    def piece_counts(self, rows: Sequence[Sequence[str]]) -> list[list[int]]:
        """How many sub-word pieces each word of each row has (one cache pass for all rows)."""
        every = self.pieces([w for row in rows for w in row])
        out, at = [], 0
        for row in rows:
            out.append([len(p) for p in every[at : at + len(row)]])
            at += len(row)
        return out

    def collate(self, words_list: Sequence[Sequence[str]], labels: Sequence[str]) -> dict[str, Any]:
        """The batch of these posts (lists of words, case markers applied) for these labels."""
        import torch

        posts = [list(w[: self.max_len]) or ["[PAD]"] for w in words_list]  # as GLiNER truncates and fills
        rows, masks = self.encode(posts, labels)
        input_ids, attention, words_mask = self.pad(rows, masks)
        batch: dict[str, Any] = {"input_ids": input_ids}
        if self.with_types:
            batch["token_type_ids"] = torch.full_like(input_ids, self.pad_type).masked_fill_(attention.bool(), 0)
        lengths = torch.tensor([len(p) for p in posts], dtype=torch.long)
        span_idx, span_mask = self.spans(lengths)
        batch |= {
            "attention_mask": attention,
            "words_mask": words_mask,
            "span_idx": span_idx,
            "span_mask": span_mask,
            "text_lengths": lengths.unsqueeze(-1),
            "tokens": posts,
            "id_to_classes": {i: label for i, label in enumerate(dict.fromkeys(labels), start=1)},
            "entities": [None] * len(posts),
            "token_lengths": [len(r) for r in rows],
            "word_lengths": lengths.tolist(),
        }
        return batch

    def encode(self, posts: list[list[str]], labels: Sequence[str]) -> tuple[list[list[int]], list[list[int]]]:
        """Each post's ids (specials, label prompt, words' pieces; truncated) and word mask (1-based index of
        each word's first piece; words without pieces are not counted, as in GLiNER)."""
        prompt: list[str] = []
        for label in labels:
            prompt += [self.ent_token, *([label] if label else [])]
        prompt_ids = [i for p in self.pieces([*prompt, self.sep_token]) for i in p]
        every = self.pieces([w for p in posts for w in p])
        rows, masks = [], []
        at = 0
        for words in posts:
            ids, mask = [*self.prefix, *prompt_ids], [0] * (len(self.prefix) + len(prompt_ids))
            seen = 0
            for p in every[at : at + len(words)]:
                if p:
                    seen += 1
                    ids += p
                    mask += [seen] + [0] * (len(p) - 1)
            at += len(words)
            if self.limit and len(ids) + len(self.suffix) > self.limit:
                keep = self.limit - len(self.suffix)
                ids, mask = ids[:keep], mask[:keep]
            rows.append(ids + self.suffix)
            masks.append(mask + [0] * len(self.suffix))
        return rows, masks

    def pad(self, rows: list[list[int]], masks: list[list[int]]) -> tuple[Any, Any, Any]:
        """Right-padded ``input_ids``, ``attention_mask`` and ``words_mask`` tensors."""
        import torch

        width = max(map(len, rows))
        input_ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        attention = torch.zeros((len(rows), width), dtype=torch.long)
        words_mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, (ids, mask) in enumerate(zip(rows, masks, strict=True)):
            input_ids[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
            attention[i, : len(ids)] = 1
            words_mask[i, : len(mask)] = torch.tensor(mask, dtype=torch.long)
        return input_ids, attention, words_mask

    def spans(self, lengths: Any) -> tuple[Any, Any]:
        """All (start, end) word spans up to ``max_width`` words per post, zero-padded; valid where end < length."""
        import torch

        longest = int(lengths.max())
        starts = torch.arange(longest).repeat_interleave(self.max_width)
        ends = starts + torch.arange(self.max_width).repeat(longest)
        idx = torch.stack([starts, ends], dim=1).unsqueeze(0).repeat(len(lengths), 1, 1)
        real = starts.unsqueeze(0) < lengths.unsqueeze(1)  # spans of the post's own words (the rest is padding)
        idx[~real] = 0
        return idx, real & (ends.unsqueeze(0) < lengths.unsqueeze(1))


def _pooling(config: Any) -> str:
    """GLiNER's sub-word pooling as its processor reads it (anything but a string means ``first``)."""
    pooling = getattr(config, "subtoken_pooling", "first")
    return pooling if isinstance(pooling, str) else "first"


def make_collator(model: Any) -> FastCollator | None:
    """A :class:`FastCollator` for models whose batches it mirrors exactly; ``None`` keeps GLiNER's collator."""
    from gliner.data_processing.processor import UniEncoderSpanProcessor

    proc = getattr(model, "data_processor", None)
    config = model.config
    mirrored = (
        type(proc) is UniEncoderSpanProcessor
        and getattr(getattr(proc, "transformer_tokenizer", None), "is_fast", False)
        and _pooling(config) == "first"
        and not getattr(config, "precomputed_prompts_mode", False)
        and getattr(config, "span_mode", "markerV0") == "markerV0"
    )
    return FastCollator(model) if mirrored else None
