"""``lmr-trainer run``: fine-tune a GLiNER span model on location mentions and publish it.

A run is three steps: :func:`prepare` (seed, data, model), :func:`fit` (Hugging Face's Trainer, then
the kept checkpoint's evaluation and threshold) and :func:`publish` (registry, hub, W&B). The model
card (:class:`trainer.card.ModelCard`) is data each step fills, rendered when the model is published.

Launched with several processes (``torchrun``, ``accelerate launch``), every rank prepares and fits
(data-parallel, evaluation split across ranks); only rank 0 publishes, writes the card and logs to W&B.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lmr.errors import ConfigError, ModelError
from lmr.model import registry
from lmr.model.extractor import Extractor, ModelSpec, calibrate, load_gliner, model_tokens
from lmr.model.span_prior import Lexicon
from lmr.readers import Example, read_examples
from lmr.words import Word, split_words
from trainer import averaging, budget, distributed, recipe, span_prior
from trainer.card import ModelCard
from trainer.data import AlignmentReport, files_digest, split_train_eval, to_gliner
from trainer.model import build_fresh, describe_encoder, encoder_is_uncased, freeze_word_embeddings
from trainer.settings import TrainSettings
from trainer.span_trainer import card_callback, evaluate_model, make_trainer

log = logging.getLogger("lmr.trainer")


@dataclass
class RunResult:
    published: Path | None  # the same on every rank; None only if nothing was published
    metrics: dict[str, Any]
    threshold: float
    alignment: AlignmentReport
    train_seconds: float


@dataclass
class Prepared:
    """What :func:`prepare` made: the data as model records, the model, and the card so far."""

    settings: TrainSettings
    device: str
    train: list[Example]
    eval: list[Example]
    spec: ModelSpec
    model: Any
    train_records: list[dict[str, Any]]
    eval_records: list[dict[str, Any]] | None
    alignment: AlignmentReport
    card: ModelCard
    run_dir: Path
    heldout: list[Example] = field(default_factory=list)  # --heldout-events: scored once, after training
    lexicon: Lexicon | None = None  # --span-prior: the gazetteer's names, fitted with the selection set


@dataclass
class Fitted:
    """What :func:`fit` left: the kept model, its final metrics and threshold, the W&B run (rank 0)."""

    model: Any
    metrics: dict[str, Any]
    threshold: float
    train_seconds: float
    wandb: Any = None


def run(s: TrainSettings) -> RunResult:
    """Train, evaluate, and publish according to ``s``."""
    p = prepare(s)
    f = fit(p)
    published = publish(p, f)
    return RunResult(published, f.metrics, f.threshold, p.alignment, f.train_seconds)


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


def _split(s: TrainSettings) -> tuple[list[Example], list[Example]]:
    with distributed.main_first():  # an idrisi: reference may download IDRISI once, into a shared cache
        examples = read_examples(s.train, fine_types=s.fine_types)
        evaluation = read_examples(s.eval, fine_types=s.fine_types) if s.eval else []
    if s.eval:
        train_ex, eval_ex = examples, evaluation
    else:
        train_ex, eval_ex = split_train_eval(examples, s.eval_fraction, s.seed, s.eval_events)
    if not train_ex:
        raise ConfigError("The training split is empty.", "give more data or a smaller --eval-fraction.")
    return train_ex, eval_ex


def _base_model(s: TrainSettings, train_ex: list[Example]) -> tuple[Any, str, bool]:
    """The model to train, a description of where it came from, and whether it uses case markers."""
    if s.encoder:
        width = auto_max_width(train_ex) if s.max_width == "auto" else int(s.max_width)
        case = s.case_markers == "on" or (s.case_markers == "auto" and encoder_is_uncased(s.encoder))
        base = f"fresh GLiNER span head on encoder {describe_encoder(s.encoder)}"
        return build_fresh(s.encoder, max_width=width), base, case
    ref = registry.resolve(s.base_model)  # a hub model only as hf:ORG/NAME
    if ref.kind == "version":
        registry.verify(Path(ref.path))
    prior = ModelSpec.load(Path(ref.path)) if ref.kind != "hub" else ModelSpec()
    case = s.case_markers == "on" or (s.case_markers == "auto" and prior.case_markers)
    return load_gliner(ref.path), s.base_model, case


def prepare(s: TrainSettings) -> Prepared:
    """Seed, read and split the data, build or load the model, and start the card."""
    import torch
    import transformers

    budget.mark_start()
    transformers.logging.set_verbosity_error()
    if s.threads:
        torch.set_num_threads(s.threads)
    random.seed(s.seed)
    torch.manual_seed(s.seed)
    device = s.resolved_device()
    distributed.init(device)
    train_ex, eval_ex = _split(s)
    train_ex, eval_ex, heldout_ex, labels, recipe_info = recipe.shape_data(s, train_ex, eval_ex)
    log.info("Data: %d training posts, %d eval posts, labels %s", len(train_ex), len(eval_ex), labels)
    model, base, case = _base_model(s, train_ex)
    frozen = freeze_word_embeddings(model, s.freeze_embeddings, fresh=bool(s.encoder))
    if frozen:
        log.info("Word embeddings frozen: %d weights stay as pre-trained (--freeze-embeddings).", frozen)
    spec = ModelSpec(labels=labels, threshold=s.threshold or 0.5, case_markers=case)
    if s.fused_head:
        from trainer.fused import fuse_training_head

        fuse_training_head(model)

    report = AlignmentReport()
    train_records = _records(train_ex, labels, case, report)
    eval_records = _records(eval_ex, labels, case, AlignmentReport()) if eval_ex else None
    if report.count:
        log.warning("Alignment: %s. These spans are left out of training.", report.summary())
    else:
        log.info("Alignment: all %d gold spans fall on word boundaries.", report.total)
    card = ModelCard(name=s.name, base_model=base, labels=labels, case_markers=case, hyperparameters=s.to_dict())
    card.data = {
        "train_files": files_digest(s.train),
        "eval_files": files_digest(s.eval) if s.eval else [],
        "n_train_posts": len(train_ex),
        "n_eval_posts": len(eval_ex),
        "eval_events": list(s.eval_events),
        "unaligned_spans": report.count,
        "total_spans": report.total,
        "word_embeddings": f"frozen ({frozen:,} weights)" if frozen else "trained",
        **recipe_info,
    }
    stamp = distributed.broadcast(datetime.now(UTC).strftime("%Y%m%d-%H%M%S"))  # one run dir for all ranks
    run_dir = Path(s.output_dir) / f"{s.name}-{stamp}"
    lexicon = span_prior.gazetteer_lexicon() if s.span_prior and eval_ex else None
    return Prepared(
        s,
        device,
        train_ex,
        eval_ex,
        spec,
        model,
        train_records,
        eval_records,
        report,
        card,
        run_dir,
        heldout_ex,
        lexicon,
    )


def _records(examples: list[Example], labels: list[str], case: bool, report: AlignmentReport) -> list[dict[str, Any]]:
    out = []
    for ex in examples:
        words: list[Word] = split_words(ex.text)
        rec = to_gliner(ex, words, report)
        rec["tokenized_text"] = model_tokens(words, case)
        rec["ner_labels"] = list(labels)  # posts without mentions still train the prompt as negatives
        out.append(rec)
    return out


RUN_STAMP = r"-\d{8}-\d{6}"  # a run folder is NAME + this (prepare); NAME-fold1-... belongs to another model


def resume_point(s: TrainSettings) -> str | None:
    """The checkpoint ``--resume`` names: a directory as given, or for ``last`` the newest ``checkpoint-N``
    of this model's earlier runs under ``--output-dir`` (each run writes to its own ``NAME-STAMP`` folder)."""
    if s.resume != "last":
        return s.resume
    runs = [r for r in Path(s.output_dir).glob(f"{s.name}-*") if re.fullmatch(RUN_STAMP, r.name.removeprefix(s.name))]
    found = [c for r in runs if (c := averaging.last_checkpoint(r)) is not None]
    if not found:
        raise ConfigError(
            f"--resume last found no checkpoint of {s.name!r} under {s.output_dir}/{s.name}-*/.",
            "run without --resume, or pass --resume DIR with a checkpoint-N directory.",
        )
    newest = max(found, key=lambda c: c.parent.name)  # the newest run's last checkpoint
    log.info("Resuming from %s", newest)
    return str(newest)


def final_eval_scale(s: TrainSettings, n_eval: int, n_heldout: int) -> float:
    """Model passes after training, in selection-set units, that the time budget must leave room for: the
    selection set and the held-out events, each read once more for typed F1 when the model is typed, and
    the selection set once more for the checkpoint average and twice for the span prior (fit, threshold)."""
    passes = 2 if s.types != "none" else 1
    return passes * (1 + n_heldout / max(1, n_eval)) + (1 if s.average_checkpoints else 0) + (2 if s.span_prior else 0)


def fit(p: Prepared) -> Fitted:
    """Train with Hugging Face's Trainer, then evaluate the kept checkpoint and choose the threshold."""
    import torch
    import transformers
    from transformers import EarlyStoppingCallback

    s = p.settings
    wb = _init_wandb(s, p.run_dir) if distributed.is_main() else None
    has_eval = bool(p.eval)
    args = s.training_arguments(
        str(p.run_dir),
        n_train=len(p.train_records),
        has_eval=has_eval,
        device=p.device,
        report_to=["wandb"] if wb is not None else [],
        world_size=distributed.world_size(),
    )
    precision = "bf16" if args.bf16 else "fp16" if args.fp16 else "fp32"
    log.info("Precision: %s (--precision %s, device %s)", precision, s.precision, p.device)
    callbacks: list[Any] = [card_callback(p.card)]
    if s.early_stopping and has_eval:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=s.early_stopping))
    if s.time_budget_min > 0:
        callbacks.append(
            budget.budget_callback(
                s.time_budget_min,
                time_schedule=s.lr_scheduler == "time-linear",
                warmup_ratio=s.warmup_ratio,
                final_eval_scale=final_eval_scale(s, len(p.eval), len(p.heldout)),
            )
        )
    trainer = make_trainer(
        model=p.model,
        args=args,
        train_dataset=p.train_records,
        eval_dataset=p.eval_records,
        data_collator=p.model._create_data_collator(),
        processing_class=p.model.data_processor.transformer_tokenizer,
        callbacks=callbacks,
        eval_examples=p.eval,
        spec=p.spec,
        best_by=s.best_by,
        eval_batch_size=s.eval_batch_size,
        group_by_length=s.group_by_length,
    )
    try:
        trainer.train(resume_from_checkpoint=resume_point(s))
    except ValueError as exc:
        if "checkpoint" in str(exc).lower():
            raise ConfigError(
                f"Cannot resume: {exc}.", "pass --resume DIR with a checkpoint-N directory, or --resume last."
            ) from exc
        raise
    model = trainer.model
    if s.fused_head:
        from trainer.fused import unfuse

        unfuse(model)
    model.eval()
    p.card.training.update(
        device=p.device,
        precision=precision,  # what --precision auto resolved to
        processes=distributed.world_size(),
        torch=torch.__version__,
        transformers=transformers.__version__,
    )
    metrics, threshold = _evaluate_kept(p, model, trainer.state.best_model_checkpoint)
    return Fitted(model, metrics, threshold, float(p.card.training.get("train_seconds", 0.0)), wb)


def _evaluate_kept(p: Prepared, model: Any, best_checkpoint: str | None) -> tuple[dict[str, Any], float]:
    """Final evaluation of the kept model (the best checkpoint, or its average with the last one) and the
    threshold choice, both on the selection set; then the held-out events and typed F1 (recipe)."""
    s = p.settings
    metrics: dict[str, Any] = {}
    threshold = s.threshold if s.threshold is not None else 0.5
    if p.eval:
        metrics, threshold = evaluate_model(model, p.spec, p.eval, threshold=s.threshold, batch_size=s.eval_batch_size)
        if s.average_checkpoints:
            metrics, threshold, p.card.training["checkpoint_average"] = averaging.keep_better_average(
                model,
                p.spec,
                p.eval,
                (metrics, threshold),
                best_checkpoint=best_checkpoint,
                run_dir=p.run_dir,
                threshold=s.threshold,
                batch_size=s.eval_batch_size,
            )
    extractor = Extractor(model, p.spec)
    if p.lexicon is not None:
        extractor, metrics, threshold, p.card.training["span_prior"] = span_prior.fit_prior(
            extractor, p.eval, p.lexicon, (metrics, threshold), threshold=s.threshold, batch_size=s.eval_batch_size
        )
    p.spec.threshold = p.card.threshold = threshold
    metrics.update(recipe.extra_metrics(s, extractor, p.eval, p.heldout, threshold))
    p.card.metrics = metrics
    log.info("Eval: %s", {k: metrics.get(k) for k in ("precision", "recall", "f1", "wer", "threshold")})
    return metrics, threshold


def _inference_info(model: Any, spec: ModelSpec) -> dict[str, Any]:
    from lmr.model.runtimes.catalog import DEFAULT_GPU_RUNTIME, names

    return {
        "max_width (words per span)": int(model.config.max_width),
        "max_len (words per window)": int(model.config.max_len),
        "case markers": spec.case_markers,
        "flat NER": spec.flat_ner,
        "runtimes (chosen at load time: --runtime)": ", ".join(names()),
        "default runtime (auto)": f"measured at load on CPU (lmr.model.autotune), {DEFAULT_GPU_RUNTIME} on CUDA",
        "batching": "posts sorted by length inside each batch; optional token budget per batch",
    }


def publish(p: Prepared, f: Fitted) -> Path | None:
    """Rank 0 publishes into the registry (then the hub and W&B); every rank gets the published path."""
    s = p.settings
    published: Path | None = None
    if distributed.is_main():
        p.card.inference = _inference_info(f.model, p.spec)

        def write(d: Path) -> None:
            f.model.save_pretrained(str(d), safe_serialization=True)
            p.spec.save(d)
            if p.spec.span_prior and p.lexicon is not None:
                p.lexicon.save(d)
            exact = span_prior.extractor(f.model, p.spec, p.lexicon)
            p.card.inference.update(calibrate(d, exact, [e.text for e in p.train]))
            (d / "training_config.json").write_text(json.dumps(s.to_dict(), indent=2) + "\n", encoding="utf-8")
            (d / "eval_metrics.json").write_text(json.dumps(f.metrics, indent=2) + "\n", encoding="utf-8")
            p.card.save(d)

        published = registry.publish(
            s.registry,
            s.name,
            write,
            labels=p.spec.labels,
            threshold=f.threshold,
            version=s.version,
            extra={
                "base_model": p.card.base_model,
                "eval": {k: f.metrics.get(k) for k in ("precision", "recall", "f1", "wer")},
            },
        )
        log.info("Published %s", published)
        if s.push_to_hub:
            _push_to_hub(f.model, s.push_to_hub)
        if f.wandb is not None:
            _finish_wandb(f.wandb, s, f.metrics, p.spec, published)
    published = distributed.broadcast(published)
    distributed.barrier()
    return published


def _push_to_hub(model: Any, repo_id: str) -> None:
    try:
        model.push_to_hub(repo_id)
    except (OSError, ValueError) as exc:  # network and HTTP errors are OSErrors; a bad repo id a ValueError
        raise ModelError(
            f"Push to the hub failed: {exc}.", "check HF_TOKEN and network, or publish locally only."
        ) from exc


# W&B must never stop a run: any failure of its many (network, auth, file) paths is logged and skipped.


def _init_wandb(s: TrainSettings, run_dir: Path) -> Any:
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
            name=run_dir.name,
            config=s.to_dict(),
            dir=s.output_dir,
            settings=wandb.Settings(init_timeout=60, silent=True),
        )
    except Exception as exc:
        log.warning("W&B could not start (%s); training goes on without it.", type(exc).__name__)
        os.environ["WANDB_DISABLED"] = "true"
        return None


def _finish_wandb(wb: Any, s: TrainSettings, metrics: dict[str, Any], spec: ModelSpec, published: Path) -> None:
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
