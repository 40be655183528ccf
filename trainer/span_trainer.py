"""GLiNER's Hugging Face Trainer with lmr's evaluation (span F1, threshold) and its callbacks.

Evaluation runs the model over the held-out posts through :class:`ShardedExtractor`: with several
processes each rank predicts its share and the shares are gathered, so every post is seen exactly
once and every rank computes the same metrics (and keeps the same best checkpoint).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from functools import cache
from typing import Any

from lmr.evaluation import evaluate_extractor
from lmr.mentions import Mention
from lmr.model.extractor import Extractor, ModelSpec
from lmr.readers import Example
from lmr.words import Word
from trainer import distributed
from trainer.card import ModelCard

log = logging.getLogger("lmr.trainer")

EVAL_METRICS = ("precision", "recall", "f1", "overlap_f1", "wer")


class ShardedExtractor(Extractor):
    """An :class:`Extractor` whose predictions are split across ranks and gathered back in order."""

    def predict_words(
        self, words_list: Sequence[Sequence[Word]], texts: Sequence[str], **kw: Any
    ) -> list[list[Mention]]:
        mine = distributed.shard(len(texts))
        preds = super().predict_words([words_list[i] for i in mine], [texts[i] for i in mine], **kw)
        if distributed.world_size() > 1:
            log.info(
                "Evaluation: rank %d predicted %d of %d posts.",
                distributed.rank(),
                len(mine),
                len(texts),
                extra=distributed.EVERY_RANK,
            )
        return distributed.gather_shards(len(texts), preds)


def evaluate_model(
    model: Any, spec: ModelSpec, examples: list[Example], *, threshold: float | None = None, batch_size: int = 32
) -> tuple[dict[str, Any], float]:
    """Span metrics of ``model`` on ``examples`` (every rank takes part and gets the same result)."""
    was_training = model.training
    res = evaluate_extractor(ShardedExtractor(model, spec), examples, threshold=threshold, batch_size=batch_size)
    if was_training:
        model.train()
    return res


@cache
def _trainer_class() -> type:
    from gliner.training import Trainer as GlinerTrainer

    class LmrTrainer(GlinerTrainer):  # type: ignore[misc]
        """GLiNER's Trainer whose evaluation computes span F1 (and the loss when asked)."""

        def __init__(
            self,
            *args: Any,
            eval_examples: list[Example],
            spec: ModelSpec,
            best_by: str,
            eval_batch_size: int,
            group_by_length: bool,
            **kw: Any,
        ) -> None:
            self.lmr_eval = eval_examples
            self.lmr_spec = spec
            self.lmr_best_by = best_by
            self.lmr_eval_batch = eval_batch_size
            self.lmr_group_by_length = group_by_length
            super().__init__(*args, **kw)

        def _get_train_sampler(self, train_dataset: Any = None) -> Any:
            ds = self.train_dataset if train_dataset is None else train_dataset
            if not self.lmr_group_by_length or ds is None:
                return super()._get_train_sampler(train_dataset)
            import torch
            from transformers.trainer_pt_utils import LengthGroupedSampler

            # Megabatches of similar-length posts in random order: far less padding than uniform
            # sampling (GLiNER's items carry words, not input_ids, so lengths are given here). The
            # seeded generator gives every rank the same order, which the data loader then shards.
            return LengthGroupedSampler(
                self.args.train_batch_size * self.args.gradient_accumulation_steps,
                lengths=[len(r["tokenized_text"]) for r in ds],
                generator=torch.Generator().manual_seed(self.args.seed),
            )

        def evaluate(
            self, eval_dataset: Any = None, ignore_keys: Any = None, metric_key_prefix: str = "eval"
        ) -> dict[str, float]:
            metrics: dict[str, float] = {}
            if self.lmr_best_by == "loss":
                metrics.update(super().evaluate(eval_dataset, ignore_keys, metric_key_prefix))
            res, thr = evaluate_model(self.model, self.lmr_spec, self.lmr_eval, batch_size=self.lmr_eval_batch)
            metrics.update({f"{metric_key_prefix}_{k}": float(res[k]) for k in EVAL_METRICS})
            metrics[f"{metric_key_prefix}_threshold"] = float(thr)
            self.log(metrics)
            self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)  # type: ignore[has-type]
            return metrics

    return LmrTrainer


def make_trainer(**kw: Any) -> Any:
    """An lmr trainer: Hugging Face ``Trainer`` arguments plus ``eval_examples``, ``spec``, ``best_by``,
    ``eval_batch_size`` and ``group_by_length``."""
    return _trainer_class()(**kw)


def card_callback(card: ModelCard) -> Any:
    """Fill ``card`` as training goes: each evaluation, then steps, time and the kept checkpoint."""
    from transformers import TrainerCallback

    class CardRecorder(TrainerCallback):
        def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.t0 = time.monotonic()

        def on_evaluate(self, args: Any, state: Any, control: Any, metrics: Any = None, **kw: Any) -> None:
            keys = ("f1", "precision", "recall", "threshold", "loss")
            row = {k: round(metrics[f"eval_{k}"], 4) for k in keys if f"eval_{k}" in (metrics or {})}
            card.evaluations.append({"step": int(state.global_step), **row})

        def on_train_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            card.training.update(
                train_seconds=round(time.monotonic() - self.t0, 1),
                global_steps=int(state.global_step),
                best_checkpoint=state.best_model_checkpoint,
            )

    return CardRecorder()
