"""``lmr-trainer crossval``: leave-events-out cross-validation, one ``lmr-trainer run`` per fold."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from lmr.config import fail, option
from lmr.errors import ConfigError, LmrError
from trainer.run_cli import run_cmd


def _fold_metrics(registry_dir: str, name: str) -> dict[str, Any]:
    from lmr.model import registry

    ref = registry.resolve(str(Path(registry_dir) / name))
    data: dict[str, Any] = json.loads((Path(ref.path) / "eval_metrics.json").read_text(encoding="utf-8"))
    return data


@click.command(
    "crossval", context_settings={"ignore_unknown_options": True, "allow_extra_args": True, "max_content_width": 110}
)
@option("--folds", type=int, default=4, show_default=True, help="Number of event folds (2 .. number of events).")
@option("--fold-seed", type=int, default=42, show_default=True, help="Seed that deals events into folds.")
@option("--report", "report_path", default=None, help="Also write the pooled report as JSON to this file.")
@click.argument("run_args", nargs=-1, type=click.UNPROCESSED)
def crossval_cmd(folds: int, fold_seed: int, report_path: str | None, run_args: tuple[str, ...]) -> None:
    """Train one model per fold of events with that fold held out; pool the held-out figures.

    RUN_ARGS are passed to every `lmr-trainer run` unchanged (the fold's events are added as
    --heldout-events, the model is published as NAME-foldI). Every event is scored once, by the model
    that never saw it; checkpoint and threshold choice use only the other events' posts.

    \b
    Example:
      lmr-trainer crossval --folds 4 --report crossval.json -- \\
          --train '../shared/data/idrisi/lmr/*/train.jsonl' --encoder offline --time-budget-min 20
    """
    from lmr.readers import read_examples
    from trainer import crossval

    try:
        ctx = run_cmd.make_context("run", list(run_args))
        if ctx.params.get("heldout_events"):
            raise ConfigError("crossval chooses the held-out events itself.", "drop --heldout-events.")
        if ctx.params.get("teacher"):
            raise ConfigError(
                "crossval cannot self-train: one --teacher cannot be blind to every fold's held-out events.",
                "drop --teacher and --unlabeled, or self-train one run with lmr-trainer run --heldout-events.",
            )
        events = sorted({e.event for e in read_examples(list(ctx.params["train"]))})
        plan = crossval.event_folds(events, folds, fold_seed)
    except LmrError as exc:
        fail(exc)
        return
    results: list[dict[str, Any]] = []
    rows = []
    for i, fold in enumerate(plan):
        name = f"{ctx.params['name']}-fold{i}"
        click.echo(f"fold {i}: holding out {', '.join(fold)}")
        argv = [*run_args, *(a for e in fold for a in ("--heldout-events", e)), "--name", name]
        run_cmd.main(args=argv, prog_name="lmr-trainer run", standalone_mode=False)
        m = _fold_metrics(ctx.params["registry"], name)
        results.append(m["heldout"])
        rows.append({"fold": i, "events": fold, "in_domain_f1": m.get("f1"), "heldout_f1": m["heldout"]["f1"]})
    pooled = crossval.pool(results)
    report = {"folds": rows, "pooled_heldout": pooled}
    click.echo(
        f"held-out events, pooled over {folds} folds: P {pooled['precision']} R {pooled['recall']} F1 {pooled['f1']}"
    )
    for r in rows:
        click.echo(
            f"  fold {r['fold']}: in-domain F1 {r['in_domain_f1']}  held-out F1 {r['heldout_f1']}  {r['events']}"
        )
    for e, v in pooled["by_event"].items():
        click.echo(f"  {e:<30} P {v['precision']:.3f}  R {v['recall']:.3f}  F1 {v['f1']:.3f}")
    if report_path:
        Path(report_path).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
