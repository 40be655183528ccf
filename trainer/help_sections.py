"""How ``lmr-trainer`` commands group their options in ``--help`` (see ``lmr.clihelp``)."""

from __future__ import annotations

RUN_SECTIONS = {
    "Settings file": ["config"],
    "Data": ["train", "eval_", "eval_events", "eval_fraction", "fine_types", "types"],
    "Unseen events (held-out protocol)": ["heldout_events"],
    "Model": ["base_model", "encoder", "preset", "case_markers", "max_width", "freeze_embeddings", "fused_head"],
    "Budget and schedule": [
        "time_budget_min",
        "epochs",
        "max_steps",
        "learning_rate",
        "others_lr",
        "lr_scheduler",
        "warmup_ratio",
        "weight_decay",
        "others_weight_decay",
        "early_stopping",
    ],
    "Batching and hardware": [
        "batch_size",
        "eval_batch_size",
        "grad_accum",
        "group_by_length",
        "precision",
        "device",
        "threads",
    ],
    "Evaluation and selection": ["eval_steps", "best_by", "threshold", "average_checkpoints", "span_prior"],
    "Augmentation and self-training": [
        "name_swap",
        "case_noise",
        "oversample",
        "unlabeled",
        "teacher",
        "pseudo_threshold",
    ],
    "Output and publishing": ["output_dir", "registry", "name", "version", "resume", "seed"],
    "Tracking": ["report_to", "wandb_project", "wandb_artifact", "push_to_hub"],
}

OPTION_HELP = {
    "batch_size": "Training posts per step and process.",
    "eval_batch_size": "Posts per evaluation forward pass.",
    "epochs": "Passes over the training posts.",
    "warmup_ratio": "Share of training spent warming the learning rate up.",
    "weight_decay": "Weight decay of the encoder.",
    "others_weight_decay": "Weight decay of the span head.",
    "device": "auto, cpu or cuda.",
    "seed": "Seed of the split, the batches and the initialisation.",
    "report_to": "none or wandb.",
    "wandb_project": "W&B project name.",
    "fine_types": "Keep IDRISI's fine location types as labels.",
    "text_field": "Field holding the post text.",
    "threshold": "Mention score threshold (default: the model's).",
}

EVALUATE_SECTIONS = {
    "Scoring": ["threshold", "fine_types", "batch_size"],
    "Runtime": ["runtime", "device"],
    "Places end to end": ["geocoder", "geocoder_memory", "km", "placed_threshold"],
    "Output": ["as_json", "report", "result_path"],
}
