"""Checkpoint averaging: the kept (best) checkpoint averaged with the run's last one, kept only if it scores higher.

After training, Hugging Face's Trainer has loaded the best checkpoint (by the selection set). Its weights
are averaged, tensor by tensor, with those of the run's last checkpoint; the average is scored on the same
selection set, threshold chosen the same way, and replaces the best model only if its F1 is higher. The
held-out events play no part. Measured on the README recipe with the standard split held out
(docs/recognition.md): one run gained (in-domain dev F1 +0.005, held-out events +0.003), another lost
(selection F1 -0.002, so the best checkpoint was kept).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from lmr.model.extractor import ModelSpec
from lmr.readers import Example
from trainer.span_trainer import evaluate_model

log = logging.getLogger("lmr.trainer")

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def last_checkpoint(run_dir: Path) -> Path | None:
    """The ``checkpoint-N`` folder of ``run_dir`` with the largest N, or ``None``."""
    found = [c for c in run_dir.glob("checkpoint-*") if c.is_dir() and c.name.removeprefix("checkpoint-").isdigit()]
    return max(found, key=lambda c: int(c.name.removeprefix("checkpoint-")), default=None)


def checkpoint_weights(ckpt: Path) -> dict[str, Any]:
    """The model weights a Trainer checkpoint folder holds (safetensors or a torch pickle of tensors)."""
    import torch

    for name in WEIGHT_FILES:
        f = ckpt / name
        if f.is_file():
            if name.endswith(".safetensors"):
                from safetensors.torch import load_file

                return dict(load_file(str(f)))
            return dict(torch.load(f, map_location="cpu", weights_only=True))
    raise FileNotFoundError(f"no {' or '.join(WEIGHT_FILES)} in {ckpt}")


def _counterpart(name: str, other: dict[str, Any]) -> Any:
    """``other``'s weight for the model's weight ``name``. The Trainer saves GLiNER's inner network, whose
    names lack the wrapper's leading ``model.``; either side may carry it."""
    for candidate in (name, name.removeprefix("model."), "model." + name):
        if candidate in other:
            return other[candidate]
    raise KeyError(f"the checkpoint has no weight {name!r} (another architecture?)")


def average_into(model: Any, other: dict[str, Any]) -> dict[str, Any]:
    """Set ``model``'s floating-point weights to the mean of theirs and ``other``'s; returns the old weights.

    Raises ``KeyError`` when ``other`` lacks a weight of the model (a checkpoint of another architecture).
    """
    import torch

    before = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}  # off the GPU
    mean = {}
    for k, v in before.items():
        if v.is_floating_point():
            mean[k] = (v.float() + _counterpart(k, other).float()).div_(2).to(v.dtype)
    with torch.no_grad():
        model.load_state_dict(mean, strict=False)
    return before


def keep_better_average(
    model: Any,
    spec: ModelSpec,
    examples: list[Example],
    best: tuple[dict[str, Any], float],
    *,
    best_checkpoint: str | None,
    run_dir: Path,
    threshold: float | None,
    batch_size: int,
) -> tuple[dict[str, Any], float, dict[str, Any]]:
    """``(metrics, threshold, record)`` of the better of ``model`` (the best checkpoint) and its average with
    the last checkpoint, by F1 on ``examples``; ``record`` says what was compared, for the model card."""
    metrics, thr = best
    last = last_checkpoint(run_dir)
    if last is None or best_checkpoint is None:
        return metrics, thr, {"kept": "best", "reason": "the run kept no checkpoint to average"}
    if Path(best_checkpoint).resolve() == last.resolve():
        return metrics, thr, {"kept": "best", "reason": "the best checkpoint is the last one"}
    try:
        before = average_into(model, checkpoint_weights(last))
    except (FileNotFoundError, KeyError, RuntimeError) as exc:
        log.warning("checkpoint averaging skipped: %s", exc)
        return metrics, thr, {"kept": "best", "reason": f"could not read {last.name}: {exc}"}
    avg_metrics, avg_thr = evaluate_model(model, spec, examples, threshold=threshold, batch_size=batch_size)
    record = {
        "with": last.name,
        "best_f1": metrics.get("f1"),
        "average_f1": avg_metrics.get("f1"),
    }
    if float(avg_metrics.get("f1", 0.0)) > float(metrics.get("f1", 0.0)):
        log.info(
            "Kept the average of %s and %s: F1 %s > %s",
            Path(best_checkpoint).name,
            last.name,
            avg_metrics.get("f1"),
            metrics.get("f1"),
        )
        return avg_metrics, avg_thr, {"kept": "average", **record}
    model.load_state_dict(before)
    log.info(
        "Kept %s: the average with %s scored F1 %s <= %s",
        Path(best_checkpoint).name,
        last.name,
        avg_metrics.get("f1"),
        metrics.get("f1"),
    )
    return metrics, thr, {"kept": "best", **record}
