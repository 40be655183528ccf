"""``lmr-trainer run``: fine-tune a GLiNER span model on location mentions and publish it."""

from __future__ import annotations

import json
import logging
import math
import os
import random
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lmr.errors import ConfigError, ModelError
from lmr.evaluation import evaluate_extractor
from lmr.model import registry
from lmr.model.extractor import Extractor, ModelSpec, load_gliner, model_tokens
from lmr.readers import Example, read_examples
from lmr.words import Word, split_words
from trainer import card
from trainer.data import AlignmentReport, files_digest, split_train_eval, to_gliner
from trainer.model import build_fresh, encoder_is_uncased
from trainer.settings import TrainSettings

log = logging.getLogger("lmr.trainer")



@dataclass
class RunResult:
    published: Path | None
    metrics: dict[str, Any]
    threshold: float
    alignment: AlignmentReport
    train_seconds: float


def auto_max_width(examples: list[Example], coverage: float = 0.999, floor: int = 4, cap: int = 12) -> int:
    """Smallest span width (in words) covering ``coverage`` of the gold mentions."""
    widths: Counter[int] = Counter()
    for ex in examples:
        for _s, e, _ in to_gliner(ex)["ner"]:
            widths[e - _s + 1] += 1
    total = sum(widths.values())
    if not total:
        return floor
    acc = 0
    for w in sorted(widths):
        acc += widths[w]
        if acc / total >= coverage:
            return max(floor, min(cap, w))
    return cap


def _device(s: TrainSettings) -> str:
    import torch

    if s.device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if s.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            "--device cuda was asked for but no CUDA GPU is visible.",
            "use --device cpu or install the CUDA build of torch.",
        )
    return s.device


def _precision_flags(s: TrainSettings, device: str) -> dict[str, bool]:
    import torch

    p = s.precision
    if p == "auto":
        p = "bf16" if device == "cuda" and torch.cuda.is_bf16_supported() else "fp32"
    if p in ("bf16", "fp16") and device != "cuda":
        raise ConfigError(f"--precision {p} needs a CUDA GPU.", "use --precision fp32 (or auto) on a CPU.")
    return {"bf16": p == "bf16", "fp16": p == "fp16"}


def _records(examples: list[Example], labels: list[str], case: bool, report: AlignmentReport) -> list[dict[str, Any]]:
    out = []
    for ex in examples:
        words: list[Word] = split_words(ex.text)
        rec = to_gliner(ex, words, report)
        rec["tokenized_text"] = model_tokens(words, case)
        rec["ner_labels"] = list(labels)  # posts without mentions still train the prompt as negatives
        out.append(rec)
    return out


def _init_wandb(s: TrainSettings) -> Any:
    """Start a W&B run that never blocks: offline without a key, disabled if wandb fails."""
    if s.report_to != "wandb":
        return None
    if not os.environ.get("WANDB_API_KEY") and os.environ.get("WANDB_MODE") not in ("offline", "disabled"):
        log.info("No WANDB_API_KEY in the environment: logging to W&B offline (sync later with `wandb sync`).")
        os.environ["WANDB_MODE"] = "offline"
    os.environ.setdefault("WANDB_SILENT", "true")
    try:
        import wandb

        return wandb.init(
            project=s.wandb_project,
            name=f"{s.name}-{datetime.now(UTC):%Y%m%d-%H%M%S}",
            config=s.to_dict(),
            dir=s.output_dir,
            settings=wandb.Settings(init_timeout=60, silent=True),
        )
    except Exception as exc:
        log.warning("W&B could not start (%s); training goes on without it.", type(exc).__name__)
        os.environ["WANDB_DISABLED"] = "true"
        return None


def _make_trainer_class() -> type:
    from gliner.training import Trainer as GlinerTrainer

    class LmrTrainer(GlinerTrainer):  # type: ignore[misc]
        """GLiNER's Trainer whose evaluation computes span F1 (and the loss when asked)."""

        lmr_eval: list[Example]
        lmr_spec: ModelSpec
        lmr_best_by: str = "f1"
        lmr_eval_batch: int = 32
        lmr_group_by_length: bool = False

        def _get_train_sampler(self, train_dataset: Any = None) -> Any:
            ds = self.train_dataset if train_dataset is None else train_dataset
            if not self.lmr_group_by_length or ds is None:
                return super()._get_train_sampler(train_dataset)
            from transformers.trainer_pt_utils import LengthGroupedSampler

            # Megabatches of similar-length posts in random order: far less padding than uniform
            # sampling (GLiNER's items carry words, not input_ids, so lengths are given here).
            return LengthGroupedSampler(
                self.args.train_batch_size * self.args.gradient_accumulation_steps,
                lengths=[len(r["tokenized_text"]) for r in ds],
            )

        def evaluate(
            self, eval_dataset: Any = None, ignore_keys: Any = None, metric_key_prefix: str = "eval"
        ) -> dict[str, float]:
            metrics: dict[str, float] = {}
            if self.lmr_best_by == "loss":
                metrics.update(super().evaluate(eval_dataset, ignore_keys, metric_key_prefix))
            was_training = self.model.training
            ex = Extractor(self.model, self.lmr_spec)
            res, thr = evaluate_extractor(ex, self.lmr_eval, batch_size=self.lmr_eval_batch)
            if was_training:
                self.model.train()
            for k in ("precision", "recall", "f1", "overlap_f1", "wer"):
                metrics[f"{metric_key_prefix}_{k}"] = float(res[k])
            metrics[f"{metric_key_prefix}_threshold"] = float(thr)
            self.log(metrics)
            self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)  # type: ignore[has-type]
            return metrics

    return LmrTrainer


def _time_budget_callback(minutes: float) -> Any:
    from transformers import TrainerCallback

    class TimeBudget(TrainerCallback):
        def __init__(self) -> None:
            self.deadline = time.monotonic() + minutes * 60

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> Any:
            if time.monotonic() > self.deadline and not control.should_training_stop:
                log.warning(
                    "Time budget of %.1f min reached at step %d: stopping and keeping the best checkpoint.",
                    minutes,
                    state.global_step,
                )
                control.should_training_stop = True
                control.should_evaluate = True
                control.should_save = True
            return control

    return TimeBudget()


def run(s: TrainSettings) -> RunResult:
    """Train, evaluate, and publish according to ``s``."""
    import torch
    import transformers
    from gliner.training import TrainingArguments

    transformers.logging.set_verbosity_error()
    if s.threads:
        torch.set_num_threads(s.threads)
    random.seed(s.seed)
    torch.manual_seed(s.seed)
    device = _device(s)

    examples = read_examples(s.train, fine_types=s.fine_types)
    if s.eval:
        train_ex, eval_ex = examples, read_examples(s.eval, fine_types=s.fine_types)
    else:
        train_ex, eval_ex = split_train_eval(examples, s.eval_fraction, s.seed, s.eval_events)
    if not train_ex:
        raise ConfigError("The training split is empty.", "give more data or a smaller --eval-fraction.")
    labels = sorted({sp.label for ex in train_ex for sp in ex.spans}) or ["location"]
    if not s.fine_types:
        labels = ["location"]
    log.info("Data: %d training posts, %d eval posts, labels %s", len(train_ex), len(eval_ex), labels)

    # Model
    if s.encoder:
        width = auto_max_width(train_ex) if s.max_width == "auto" else int(s.max_width)
        case = s.case_markers == "on" or (s.case_markers == "auto" and encoder_is_uncased(s.encoder))
        model = build_fresh(s.encoder, max_width=width)
        base = f"fresh GLiNER span head on encoder {s.encoder}"
    else:
        try:
            ref = registry.resolve(s.base_model)
        except Exception:
            ref = registry.ModelRef(s.base_model, "hub", s.base_model, "")
        if ref.kind == "version":
            registry.verify(Path(ref.path))
        model = load_gliner(ref.path)
        prior = ModelSpec.load(Path(ref.path)) if ref.kind != "hub" else ModelSpec()
        case = s.case_markers == "on" or (s.case_markers == "auto" and prior.case_markers)
        base = s.base_model
    spec = ModelSpec(labels=labels, threshold=s.threshold or 0.5, case_markers=case)

    report = AlignmentReport()
    train_records = _records(train_ex, labels, case, report)
    eval_records = _records(eval_ex, labels, case, AlignmentReport()) if eval_ex else None
    if report.count:
        log.warning("Alignment: %s. These spans are left out of training.", report.summary())
    else:
        log.info("Alignment: all %d gold spans fall on word boundaries.", report.total)

    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    out_dir = Path(s.output_dir) / f"{s.name}-{stamp}"
    wb = _init_wandb(s)
    has_eval = bool(eval_ex)
    steps_per_epoch = math.ceil(len(train_records) / (s.batch_size * s.grad_accum))
    eval_steps = max(1, min(s.eval_steps, steps_per_epoch * max(1, int(s.epochs)) if s.max_steps < 0 else s.max_steps))
    args = TrainingArguments(
        output_dir=str(out_dir),
        learning_rate=s.learning_rate,
        others_lr=s.others_lr,
        weight_decay=s.weight_decay,
        others_weight_decay=s.others_weight_decay,
        lr_scheduler_type=s.lr_scheduler,
        warmup_ratio=s.warmup_ratio,
        per_device_train_batch_size=s.batch_size,
        per_device_eval_batch_size=s.eval_batch_size,
        gradient_accumulation_steps=s.grad_accum,
        num_train_epochs=s.epochs,
        max_steps=s.max_steps,
        max_grad_norm=s.max_grad_norm,
        eval_strategy="steps" if has_eval else "no",
        eval_steps=eval_steps,
        save_strategy="steps" if has_eval else "no",
        save_steps=eval_steps,
        save_total_limit=2,
        load_best_model_at_end=has_eval,
        metric_for_best_model="f1" if s.best_by == "f1" else "loss",
        greater_is_better=s.best_by == "f1",
        logging_steps=min(50, eval_steps),
        report_to=["wandb"] if wb is not None else [],
        run_name=f"{s.name}-{stamp}",
        seed=s.seed,
        use_cpu=device == "cpu",
        dataloader_num_workers=0,
        disable_tqdm=False,
        **_precision_flags(s, device),
    )
    Trainer = _make_trainer_class()
    from transformers import EarlyStoppingCallback

    callbacks: list[Any] = []
    if s.early_stopping and has_eval:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=s.early_stopping))
    if s.time_budget_min > 0:
        callbacks.append(_time_budget_callback(s.time_budget_min))
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train_records,
        eval_dataset=eval_records,
        data_collator=model._create_data_collator(),
        processing_class=model.data_processor.transformer_tokenizer,
        callbacks=callbacks,
    )
    trainer.lmr_eval, trainer.lmr_spec, trainer.lmr_best_by = eval_ex, spec, s.best_by
    trainer.lmr_eval_batch = s.eval_batch_size
    trainer.lmr_group_by_length = s.group_by_length
    resume: str | bool | None = None
    if s.resume:
        resume = True if s.resume == "last" else s.resume
    t0 = time.monotonic()
    try:
        trainer.train(resume_from_checkpoint=resume)
    except ValueError as exc:
        if "checkpoint" in str(exc).lower():
            raise ConfigError(
                f"Cannot resume: {exc}.", "pass --resume DIR with a checkpoint-N directory, or --resume last."
            ) from exc
        raise
    train_seconds = time.monotonic() - t0
    model = trainer.model
    model.eval()

    # Final evaluation of the kept (best) model and threshold choice.
    metrics: dict[str, Any] = {}
    threshold = s.threshold if s.threshold is not None else 0.5
    if has_eval:
        ex = Extractor(model, spec)
        metrics, threshold = evaluate_extractor(ex, eval_ex, threshold=s.threshold, batch_size=s.eval_batch_size)
    spec.threshold = threshold
    log.info("Eval: %s", {k: metrics.get(k) for k in ("precision", "recall", "f1", "wer", "threshold")})

    data_info = {
        "train_files": files_digest(s.train),
        "eval_files": files_digest(s.eval) if s.eval else [],
        "n_train_posts": len(train_ex),
        "n_eval_posts": len(eval_ex),
        "eval_events": list(s.eval_events),
        "unaligned_spans": report.count,
        "total_spans": report.total,
    }
    train_info = {
        "train_seconds": round(train_seconds, 1),
        "global_steps": int(trainer.state.global_step),
        "device": device,
        "best_checkpoint": trainer.state.best_model_checkpoint,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }

    from lmr.model.runtimes import DEFAULT_CPU_RUNTIME, DEFAULT_GPU_RUNTIME, RUNTIMES

    inference_info = {
        "max_width (words per span)": int(model.config.max_width),
        "max_len (words per window)": int(model.config.max_len),
        "case markers": case,
        "flat NER": spec.flat_ner,
        "runtimes (chosen at load time: --runtime)": ", ".join(RUNTIMES),
        "default runtime": f"{DEFAULT_CPU_RUNTIME} on CPU, {DEFAULT_GPU_RUNTIME} on CUDA",
        "batching": "posts sorted by length inside each batch; optional token budget per batch",
    }

    def write(d: Path) -> None:
        model.save_pretrained(str(d), safe_serialization=True)
        spec.save(d)
        (d / "training_config.json").write_text(json.dumps(s.to_dict(), indent=2) + "\n", encoding="utf-8")
        (d / "eval_metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
        card.ModelCard(
            name=s.name,
            base_model=base,
            labels=labels,
            threshold=threshold,
            case_markers=case,
            hyperparameters=s.to_dict(),
            data=data_info,
            metrics=metrics,
            training=train_info,
            inference=inference_info,
        ).save(d)

    published = registry.publish(
        s.registry,
        s.name,
        write,
        labels=labels,
        threshold=threshold,
        version=s.version,
        extra={"base_model": base, "eval": {k: metrics.get(k) for k in ("precision", "recall", "f1", "wer")}},
    )
    log.info("Published %s", published)
    if s.push_to_hub:
        try:
            model.push_to_hub(s.push_to_hub)
        except Exception as exc:
            raise ModelError(
                f"Push to the hub failed: {exc}.", "check HF_TOKEN and network, or publish locally only."
            ) from exc
    if wb is not None:
        try:
            wb.summary.update({f"final/{k}": v for k, v in metrics.items() if isinstance(v, (int, float))})
            if s.wandb_artifact:
                import wandb

                art = wandb.Artifact(s.name, type="model", metadata={"version": published.name, **spec.__dict__})
                art.add_dir(str(published))
                wb.log_artifact(art)
            wb.finish()
        except Exception as exc:
            log.warning("W&B final logging failed (%s); the model is published regardless.", type(exc).__name__)
    return RunResult(published, metrics, threshold, report, train_seconds)
