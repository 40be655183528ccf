"""A recipe that uses its time budget: train until the budget, early-stop on the selection set.

With ``--time-budget-min N`` (and no explicit ``--epochs``/``--max-steps``) a run no longer stops after
the preset's epochs: the epochs become an upper bound (:data:`BUDGET_EPOCHS`), the learning rate warms
up and then decays linearly in *wall-clock* time so that it reaches zero when the budget ends, and
training stops earlier when the selection F1 has not improved for :data:`BUDGET_PATIENCE` evaluations.
The budget covers the whole run: it is counted from :func:`mark_start` (the start of ``run``), and
training ends early enough to leave the final evaluation (timed on the previous evaluations) and the
publish step inside it.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from trainer import distributed

log = logging.getLogger("lmr.trainer")

BUDGET_EPOCHS = 30.0  # an upper bound: the budget or early stopping ends the run first
BUDGET_PATIENCE = 3  # evaluations without a better selection F1 before stopping
PUBLISH_RESERVE_S = 60.0  # saving and publishing the model (seconds, measured ~20 s here)
FINAL_EVAL_FACTOR = 1.5  # final evaluation (threshold search, held-out scoring) vs one training-time evaluation

_started: list[float] = [time.monotonic()]  # the first run counts from the import (library loading included)
_runs: list[int] = [0]


def mark_start() -> None:
    """Start the budget's clock for a run; the first run of a process keeps the clock started at import."""
    if _runs[0]:
        _started[:] = [time.monotonic()]
    _runs[0] += 1


def started() -> float:
    return _started[0]


def apply_defaults(values: dict[str, Any], explicit: set[str]) -> None:
    """Budget-mode defaults for what the user did not set explicitly (called by ``TrainSettings.from_params``)."""
    if not values.get("time_budget_min"):
        return
    if "epochs" not in explicit and "max_steps" not in explicit:
        values["epochs"] = BUDGET_EPOCHS
    if "early_stopping" not in explicit:
        values["early_stopping"] = BUDGET_PATIENCE
    if "lr_scheduler" not in explicit:
        values["lr_scheduler"] = "time-linear"


def scheduler_for_trainer(name: str) -> str:
    """The Hugging Face scheduler to configure: ``time-linear`` runs on top of a constant one."""
    return "constant" if name == "time-linear" else name


def lr_factor(elapsed: float, total: float, warmup_ratio: float) -> float:
    """Linear warmup over ``warmup_ratio`` of ``total`` seconds, then linear decay to zero at ``total``."""
    if total <= 0:
        return 1.0
    warm = warmup_ratio * total
    if elapsed < warm:
        return max(elapsed / warm, 0.01)
    return max(0.0, (total - elapsed) / max(total - warm, 1e-9))


def budget_callback(minutes: float, *, time_schedule: bool, warmup_ratio: float, final_eval_scale: float = 1.0) -> Any:
    """Stop training in time to evaluate and publish within the budget; optionally drive the time schedule.

    ``final_eval_scale``: the final evaluation's posts (selection + held-out) per selection post.
    """
    from transformers import TrainerCallback

    class Budget(TrainerCallback):
        def __init__(self) -> None:
            self.deadline = started() + minutes * 60
            self.train_start = time.monotonic()
            self.last_step_end = self.train_start
            self.eval_seconds = 0.0

        def train_end_by(self) -> float:
            return self.deadline - PUBLISH_RESERVE_S - FINAL_EVAL_FACTOR * final_eval_scale * self.eval_seconds

        def on_step_begin(self, args: Any, state: Any, control: Any, optimizer: Any = None, **kw: Any) -> Any:
            if time_schedule and optimizer is not None:
                now = time.monotonic()
                f = lr_factor(now - self.train_start, self.train_end_by() - self.train_start, warmup_ratio)
                for group in optimizer.param_groups:
                    group["lr"] = group.get("initial_lr", group["lr"]) * f
            return control

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> Any:
            self.last_step_end = time.monotonic()
            # Every rank asks every step: a rank stopping alone would leave the others waiting forever.
            late = distributed.any_rank(self.last_step_end > self.train_end_by())
            if late and not control.should_training_stop:
                log.warning(
                    "Time budget of %.1f min: stopping at step %d to leave the final evaluation and publishing "
                    "inside it; the best checkpoint is kept.",
                    minutes,
                    state.global_step,
                )
                control.should_training_stop = True
                control.should_evaluate = True
                control.should_save = True
            return control

        def on_evaluate(self, args: Any, state: Any, control: Any, **kw: Any) -> Any:
            self.eval_seconds = max(self.eval_seconds, time.monotonic() - self.last_step_end)
            return control

    return Budget()
