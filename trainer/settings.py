"""The trainer's one settings object and its presets."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

from lmr.config import redact
from lmr.errors import ConfigError
from trainer import budget, oversample

if TYPE_CHECKING:
    from gliner.training import TrainingArguments

# Values each preset sets unless the user gives them explicitly.
PRESETS: dict[str, dict[str, Any]] = {
    # The reference recipe: an already-trained GLiNER (urchade/gliner_large-v2.1) on a GPU.
    "seed": {
        "learning_rate": 1e-6,
        "others_lr": 5e-7,
        "batch_size": 8,
        "epochs": 5.0,
        "lr_scheduler": "constant",
        "warmup_ratio": 0.0,
        "weight_decay": 1e-4,
        "others_weight_decay": 1e-4,
    },
    # A fresh span head on a plain encoder (the offline MiniLM path): higher rates, warmup, decay.
    "fresh": {
        "learning_rate": 5e-5,
        "others_lr": 1e-4,
        "batch_size": 8,
        "epochs": 1.0,
        "lr_scheduler": "linear",
        "warmup_ratio": 0.05,
        "weight_decay": 0.01,
        "others_weight_decay": 0.01,
    },
}


@dataclass
class TrainSettings:
    """Everything ``lmr-trainer run`` needs; saved with the published model.

    The hyper-parameters a preset sets default to the ``seed`` preset's values.
    """

    train: list[str] = field(default_factory=list)
    eval: list[str] = field(default_factory=list)
    eval_events: list[str] = field(default_factory=list)
    eval_fraction: float = 0.1
    base_model: str = "hf:urchade/gliner_large-v2.1"
    encoder: str | None = None
    preset: str | None = None
    fine_types: bool = False
    case_markers: str = "auto"  # auto | on | off
    max_width: str = "auto"  # auto (from the data) or an int
    learning_rate: float = PRESETS["seed"]["learning_rate"]
    others_lr: float = PRESETS["seed"]["others_lr"]
    batch_size: int = PRESETS["seed"]["batch_size"]
    eval_batch_size: int = 32
    grad_accum: int = 1
    group_by_length: bool = True  # length-grouped random batches: less padding per step
    epochs: float = PRESETS["seed"]["epochs"]
    max_steps: int = -1
    lr_scheduler: str = PRESETS["seed"]["lr_scheduler"]
    warmup_ratio: float = PRESETS["seed"]["warmup_ratio"]
    weight_decay: float = PRESETS["seed"]["weight_decay"]
    others_weight_decay: float = PRESETS["seed"]["others_weight_decay"]
    max_grad_norm: float = 1.0
    eval_steps: int = 500
    best_by: str = "f1"  # f1 | loss
    early_stopping: int = 0  # evaluations without improvement before stopping; 0 = off
    threshold: float | None = None  # None = choose on the eval set
    precision: str = "auto"  # auto | fp32 | bf16 | fp16
    device: str = "auto"  # auto | cpu | cuda
    seed: int = 42
    time_budget_min: float = 0.0  # stop training (gracefully) after this many minutes; 0 = no limit
    resume: str | None = None  # checkpoint directory, or "last"
    output_dir: str = "runs"
    registry: str = "registry"
    name: str = "lmr-location"
    version: str | None = None
    report_to: str = "none"  # none | wandb
    wandb_project: str = "lmr"
    push_to_hub: str | None = None
    wandb_artifact: bool = False
    threads: int = 0
    # Recognition recipe (trainer/recipe.py): held-out events, types, augmentation, fused training head.
    heldout_events: list[str] = field(default_factory=list)  # "standard" = trainer.crossval.STANDARD_HELDOUT
    types: str = "none"  # none | coarse (trainer/types.py); --fine-types keeps IDRISI's own
    name_swap: float = 0.0  # share of training posts whose mentions are swapped for gazetteer names
    case_noise: float = 0.0  # share of training posts with some non-mention words capitalised
    oversample: list[str] = field(default_factory=list)  # SCRIPT=TIMES: repeat posts of that script (oversample.py)
    fused_head: bool = True  # fused span head in the training step (exact; trainer/fused.py)
    span_prior: bool = False  # rescore spans with the gazetteer's names, fitted on the selection set (prior.py)
    average_checkpoints: bool = True  # keep the best+last checkpoint average if it scores higher (averaging.py)
    freeze_embeddings: str = "auto"  # auto | on | off: the encoder's word embeddings (trainer/model.py)
    unlabeled: list[str] = field(default_factory=list)  # self-training posts, labelled by --teacher (selftrain.py)
    teacher: str | None = None
    pseudo_threshold: float | None = None  # None = the teacher's own threshold

    @classmethod
    def from_params(cls, params: dict[str, Any], explicit: set[str]) -> TrainSettings:
        """Build from CLI params; the preset fills what the user did not set explicitly."""
        known = {f.name for f in fields(cls)}
        values = {
            k: (list(v) if isinstance(v, tuple) else v) for k, v in params.items() if k in known and v is not None
        }
        preset = values.get("preset")
        if preset is None:
            preset = "fresh" if values.get("encoder") else "seed"
        if preset not in PRESETS:
            raise ConfigError(f"Unknown preset {preset!r}.", f"use one of: {', '.join(PRESETS)}.")
        values["preset"] = preset
        for k, v in PRESETS[preset].items():
            if k not in explicit:
                values[k] = v
        budget.apply_defaults(values, explicit)
        s = cls(**values)  # type: ignore[arg-type]
        s.validate()
        return s

    def validate(self) -> None:
        if not self.train:
            raise ConfigError("No training data given.", "pass one or more files, directories or globs to --train.")
        if self.best_by not in ("f1", "loss"):
            raise ConfigError(f"--best-by must be f1 or loss, not {self.best_by!r}.")
        if self.case_markers not in ("auto", "on", "off"):
            raise ConfigError(f"--case-markers must be auto, on or off, not {self.case_markers!r}.")
        if self.precision not in ("auto", "fp32", "bf16", "fp16"):
            raise ConfigError(f"--precision must be auto, fp32, bf16 or fp16, not {self.precision!r}.")
        if self.report_to not in ("none", "wandb"):
            raise ConfigError(f"--report-to must be none or wandb, not {self.report_to!r}.")
        if self.max_width != "auto" and not str(self.max_width).isdigit():
            raise ConfigError(f"--max-width must be 'auto' or a positive integer, not {self.max_width!r}.")
        if self.batch_size < 1 or self.grad_accum < 1:
            raise ConfigError("--batch-size and --grad-accum must be at least 1.")
        if self.freeze_embeddings not in ("auto", "on", "off"):
            raise ConfigError(f"--freeze-embeddings must be auto, on or off, not {self.freeze_embeddings!r}.")
        if self.types not in ("none", "coarse"):
            raise ConfigError(f"--types must be none or coarse, not {self.types!r}.")
        if self.fine_types and self.types != "none":
            raise ConfigError("--fine-types and --types coarse exclude each other.", "choose one.")
        if not (0 <= self.name_swap <= 1 and 0 <= self.case_noise <= 1):
            raise ConfigError("--name-swap and --case-noise are shares of posts between 0 and 1.")
        oversample.parse(self.oversample)
        if bool(self.unlabeled) != bool(self.teacher):
            raise ConfigError(
                "Self-training needs both --unlabeled (posts) and --teacher (the model that labels them).",
                "give both, or neither.",
            )
        if self.pseudo_threshold is not None and not 0 < self.pseudo_threshold < 1:
            raise ConfigError(f"--pseudo-threshold must lie between 0 and 1, not {self.pseudo_threshold}.")

    def to_dict(self) -> dict[str, Any]:
        return redact(asdict(self))

    def resolved_device(self) -> str:
        """``cpu`` or ``cuda``: ``auto`` picks CUDA when a GPU is visible."""
        import torch

        if self.device == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        if self.device == "cuda" and not torch.cuda.is_available():
            raise ConfigError(
                "--device cuda was asked for but no CUDA GPU is visible.",
                "use --device cpu or install the CUDA build of torch.",
            )
        return self.device

    def precision_flags(self, device: str) -> dict[str, bool]:
        """``bf16``/``fp16`` flags of the Trainer: ``auto`` is bf16 where the hardware computes it natively
        (a GPU that supports it, a CPU with AVX512-BF16 or AMX), else fp32.

        On a CPU, ``bf16`` means autocast with float32 weights, optimiser and published model; it is refused
        where the CPU would emulate bfloat16 (slower than float32).
        """
        import torch

        from lmr.model.runtimes.cpu import cpu_has_native_bf16

        native = torch.cuda.is_bf16_supported() if device == "cuda" else cpu_has_native_bf16()
        p = self.precision
        if p == "auto":
            p = "bf16" if native else "fp32"
        if p == "fp16" and device != "cuda":
            raise ConfigError("--precision fp16 needs a CUDA GPU.", "use --precision fp32 (or bf16 on a bf16 CPU).")
        if p == "bf16" and device != "cuda" and not native:
            raise ConfigError(
                "--precision bf16 on a CPU needs native bfloat16 (AVX512-BF16 or AMX flags); this CPU has neither.",
                "use --precision fp32 (or auto) here.",
            )
        return {"bf16": p == "bf16", "fp16": p == "fp16"}

    def evaluation_interval(self, n_train: int, world_size: int = 1) -> int:
        """Steps between evaluations: ``eval_steps``, at most the run's length (so short runs evaluate)."""
        per_step = self.batch_size * self.grad_accum * world_size
        total = math.ceil(n_train / per_step) * max(1, int(self.epochs)) if self.max_steps < 0 else self.max_steps
        return max(1, min(self.eval_steps, total))

    def training_arguments(
        self, output_dir: str, *, n_train: int, has_eval: bool, device: str, report_to: list[str], world_size: int = 1
    ) -> TrainingArguments:
        """The Hugging Face (GLiNER) ``TrainingArguments`` of this run, reused as they are (as SpanMarker does).

        ``n_train`` posts over ``world_size`` processes set the evaluation interval; evaluation,
        checkpoints and the best-model choice are on only when there is an evaluation set.
        """
        from gliner.training import TrainingArguments

        every = self.evaluation_interval(n_train, world_size)
        return TrainingArguments(
            output_dir=output_dir,
            run_name=PurePath(output_dir).name,
            learning_rate=self.learning_rate,
            others_lr=self.others_lr,
            weight_decay=self.weight_decay,
            others_weight_decay=self.others_weight_decay,
            lr_scheduler_type=budget.scheduler_for_trainer(self.lr_scheduler),
            warmup_ratio=self.warmup_ratio,
            per_device_train_batch_size=self.batch_size,
            per_device_eval_batch_size=self.eval_batch_size,
            gradient_accumulation_steps=self.grad_accum,
            num_train_epochs=self.epochs,
            max_steps=self.max_steps,
            max_grad_norm=self.max_grad_norm,
            eval_strategy="steps" if has_eval else "no",
            eval_steps=every,
            save_strategy="steps" if has_eval else "no",
            save_steps=every,
            save_total_limit=2,
            load_best_model_at_end=has_eval,
            metric_for_best_model=self.best_by,
            greater_is_better=self.best_by == "f1",
            logging_steps=min(50, every),
            report_to=report_to,
            seed=self.seed,
            use_cpu=device == "cpu",
            dataloader_num_workers=0,
            disable_tqdm=False,
            **self.precision_flags(device),
        )
