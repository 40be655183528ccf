"""``lmr-trainer``: train, evaluate, predict with and publish GLiNER location models."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from geocode.endtoend_options import km_option, report_option
from geocode.placed import PLACED_THRESHOLD, extraction_threshold
from lmr import logs
from lmr.clihelp import SectionedCommand
from lmr.config import fail, log_options, option
from lmr.errors import LmrError
from lmr.model.runtimes import catalog
from lmr.results import result_option
from trainer import help_sections as hs
from trainer.crossval_cli import crossval_cmd
from trainer.run_cli import run_cmd

RUNTIME_CHOICES = ["auto", *catalog.names()]
RUNTIME_HELP = "Inference runtime (auto = the measured fastest for the device; torch = plain GLiNER)."


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@log_options
def main(log_level: str, log_format: str) -> None:
    """Fine-tune, evaluate and publish GLiNER location-mention models.

    \b
    Example (offline, on this CPU):
      lmr-trainer run --train idrisi:lmr/train --eval idrisi:lmr/dev --encoder offline
    """
    logs.setup(log_level, log_format)


@main.command("evaluate", cls=SectionedCommand, sections=hs.EVALUATE_SECTIONS, option_help=hs.OPTION_HELP)
@click.argument("model")
@click.argument("data", nargs=-1, required=True)
@option("--threshold", type=float, default=None, help="Score threshold (default: the model's).")
@option("--batch-size", type=int, default=32, show_default=True)
@option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@option("--fine-types/--no-fine-types", default=False)
@option("--runtime", type=click.Choice(RUNTIME_CHOICES), default="auto", show_default=True, help=RUNTIME_HELP)
@option("--device", default="cpu", show_default=True, help="cpu or cuda[:N].")
@option(
    "--geocoder",
    type=click.Choice(["offline"]),
    default=None,
    help="Also resolve the predictions with this geocoder; score places end to end (DATA with points).",
)
@option(
    "--geocoder-memory",
    type=click.Path(dir_okay=False),
    default=None,
    help="With --geocoder: a place memory (lmr-geocode learn), as lmr-worker run --geocoder-memory reads it.",
)
@km_option
@option(
    "--placed-threshold",
    type=click.FloatRange(0, 1),
    default=PLACED_THRESHOLD,
    show_default=True,
    help="End to end: spans scoring from this up to the threshold count only when the geocoder places them, "
    "as lmr-worker run emits them (1: off).",
)
@report_option("--geocoder")
@result_option
def evaluate_cmd(
    model: str,
    data: tuple[str, ...],
    threshold: float | None,
    batch_size: int,
    as_json: bool,
    fine_types: bool,
    runtime: str,
    device: str,
    geocoder: str | None,
    geocoder_memory: str | None,
    km: float,
    placed_threshold: float,
    report: str | None,
    result_path: str | None,
) -> None:
    """Score MODEL on labelled DATA: exact and overlap P/R/F1, WER, recall by type, per event.

    With --geocoder, the predictions are resolved as `lmr-worker run --geocoder` does and scored end to
    end against DATA's points (IDRISI-D lmd/): the span and a point within --km (docs/end-to-end.md).

    \b
    Example:
      lmr-trainer evaluate registry/lmr-location idrisi:lmr/dev --json
      lmr-trainer evaluate registry/lmr-location idrisi:lmr/dev --report report.html
      lmr-trainer evaluate registry/lmr-location idrisi:lmd/dev --geocoder offline --report report.html
      lmr-trainer evaluate registry/lmr-location idrisi:lmr/dev --result results/my-model-dev.json
    """
    from lmr.evaluation import ScoredPosts, evaluate_extractor
    from lmr.model.extractor import load_extractor
    from lmr.readers import read_examples

    try:
        ex = load_extractor(model, runtime=runtime, map_location=device)
        examples = read_examples(list(data), fine_types=fine_types)
        thr = threshold if threshold is not None else ex.spec.threshold
        posts: ScoredPosts = []
        candidates: ScoredPosts = []
        low = extraction_threshold(thr, placed_threshold)
        res, _ = evaluate_extractor(
            ex, examples, threshold=thr, batch_size=batch_size, posts=posts, candidates=candidates, low=low
        )
        res["model"] = ex.model_id
        res["runtime"] = ex.runtime
        e2e = None
        if geocoder:
            from geocode.endtoend import score_model_predictions

            e2e = score_model_predictions(
                geocoder, list(data), candidates, km=km, threshold=thr, memory=geocoder_memory
            )
            res["end_to_end"] = e2e[0]
        if report:
            subtitle = f"model {ex.model_id} · runtime {ex.runtime} · threshold {res['threshold']}"
            _write_evaluation_report(report, res, posts, e2e, subtitle)
        if result_path:
            _write_evaluation(result_path, res, data)
    except LmrError as exc:
        fail(exc)
        return
    if as_json:
        click.echo(json.dumps(res))
        return
    _print_evaluation(res, e2e[0] if e2e is not None else None)


def _print_evaluation(res: dict[str, Any], e2e: dict[str, Any] | None) -> None:
    """``lmr-trainer evaluate``'s text output: spans, by type and event, then places end to end."""
    click.echo(
        f"model {res['model']}  threshold {res['threshold']}  posts {res['n_posts']}  "
        f"gold {res['n_gold']}  predicted {res['n_pred']}"
    )
    click.echo(f"exact    P {res['precision']:.4f}  R {res['recall']:.4f}  F1 {res['f1']:.4f}")
    click.echo(f"overlap  P {res['overlap_precision']:.4f}  R {res['overlap_recall']:.4f}  F1 {res['overlap_f1']:.4f}")
    click.echo(f"WER {res['wer']:.4f}")
    if res["recall_by_type"]:
        click.echo("recall by type:")
        for t, v in res["recall_by_type"].items():
            click.echo(f"  {t:<30} {v['recall']:.3f}  (n={v['n']})")
    if len(res["by_group"]) > 1:
        click.echo("by event/file:")
        for g, v in res["by_group"].items():
            click.echo(f"  {g:<30} P {v['precision']:.3f}  R {v['recall']:.3f}  F1 {v['f1']:.3f}  (gold {v['n_gold']})")
    if e2e is not None:
        from geocode.endtoend import summary_lines

        click.echo("\n".join(summary_lines(e2e)))


def _write_evaluation_report(path: str, res: dict[str, Any], posts: Any, e2e: Any, subtitle: str) -> None:
    from geocode.endtoend_report import write_evaluation_report

    write_evaluation_report(path, res, posts, e2e, subject="model evaluation", subtitle=subtitle)
    click.echo(f"report: {path}", err=True)


def _write_evaluation(path: str, res: dict[str, Any], data: tuple[str, ...]) -> None:
    from lmr.results import write_result

    row: dict[str, Any] = {"name": f"{res['model']} ({res['runtime']})"}
    row |= {k: res[k] for k in ("f1", "overlap_f1", "n_posts") if k in res}
    rows = [row]
    if "end_to_end" in res:  # places end to end: overall, then one row per event
        e2e = res["end_to_end"]
        row |= {f"e2e_{k}": e2e[k] for k in ("precision", "recall", "f1", "overlap_f1") if k in e2e}
        rows += [{"name": f"{event}, end to end", "e2e_f1": c["f1"]} for event, c in e2e.get("by_event", {}).items()]
    area = "end_to_end" if "end_to_end" in res else "recognition"
    write_result(path, area=area, title=f"{res['model']} on {' '.join(data)}", rows=rows)
    click.echo(f"result: {path}", err=True)


@main.command("predict", cls=SectionedCommand, option_help=hs.OPTION_HELP)
@click.argument("model")
@click.argument("file")
@option("--output", "-o", default="-", show_default=True, help="JSONL output file ('-' = stdout).")
@option("--threshold", type=float, default=None)
@option("--batch-size", type=int, default=32, show_default=True)
@option("--text-field", default="text", show_default=True)
@option("--text-cache/--no-text-cache", default=True, show_default=True, help="Read each repeated text once.")
@option("--runtime", type=click.Choice(RUNTIME_CHOICES), default="auto", show_default=True, help=RUNTIME_HELP)
@option("--device", default="cpu", show_default=True, help="cpu or cuda[:N].")
def predict_cmd(
    model: str,
    file: str,
    output: str,
    threshold: float | None,
    batch_size: int,
    text_field: str,
    text_cache: bool,
    runtime: str,
    device: str,
) -> None:
    """Write FILE's posts (JSONL, or plain text one post per line) with predicted spans as JSONL.

    \b
    Example:
      lmr-trainer predict registry/lmr-location posts.jsonl -o predicted.jsonl
    """
    from lmr.errors import DataError
    from lmr.model.extractor import load_extractor
    from lmr.model.text_cache import DEFAULT_BYTES, TextCache

    try:
        ex = load_extractor(model, runtime=runtime, map_location=device)
        posts: list[dict[str, Any]] = []
        for n, line in enumerate(Path(file).read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            if line.lstrip().startswith("{"):
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as e:
                    raise DataError(f"{file}:{n}: invalid JSON: {e.msg}.", "fix or remove that line.") from e
                if not isinstance(obj.get(text_field), str):
                    raise DataError(f"{file}:{n}: no string field {text_field!r}.", "pass --text-field NAME.")
            else:
                obj = {text_field: line}
            posts.append(obj)
        cache = TextCache(DEFAULT_BYTES if text_cache else 0)
        preds = cache.predict(ex, [p[text_field] for p in posts], threshold=threshold, batch_size=batch_size)
    except LmrError as exc:
        fail(exc)
        return
    out = sys.stdout if output == "-" else open(output, "w", encoding="utf-8")  # noqa: SIM115
    try:
        for p, ms in zip(posts, preds, strict=True):
            p = {**p, "locations": [m.to_dict() for m in ms], "model": ex.model_id}
            out.write(json.dumps(p, ensure_ascii=False) + "\n")
    finally:
        if out is not sys.stdout:
            out.close()


@main.command("calibrate", cls=SectionedCommand, option_help=hs.OPTION_HELP)
@click.argument("model")
@click.argument("data", nargs=-1, required=True)
@option("--posts", type=int, default=200, show_default=True, help="Posts in the calibration set.")
@option("--text-field", default="text", show_default=True)
def calibrate_cmd(model: str, data: tuple[str, ...], posts: int, text_field: str) -> None:
    """Write the calibration set `--runtime auto` measures on, for MODEL published without one.

    DATA are JSONL files (globs allowed) of posts like those the model will read: training posts,
    never the posts you evaluate on. The set (a seeded sample of DATA and the exact runtime's spans)
    goes into lmr's cache directory ($LMR_CACHE_DIR, else ~/.cache/lmr); models published by
    `lmr-trainer run` ship their own.

    \b
    Example:
      lmr-trainer calibrate registry/lmr-location 'data/idrisi/lmr/*/train.jsonl'
    """
    import glob

    from lmr.errors import DataError
    from lmr.model import calibration
    from lmr.model.extractor import load_extractor

    try:
        files = sorted({f for d in data for f in (glob.glob(d) or [d])})
        texts: list[str] = []
        for f in files:
            try:
                lines = Path(f).read_text(encoding="utf-8").splitlines()
            except OSError as exc:
                raise DataError(f"Cannot read {f}: {exc.strerror}.", "pass JSONL files of posts.") from exc
            for line in lines:
                obj = json.loads(line) if line.lstrip().startswith("{") else {}
                if isinstance(obj.get(text_field), str):
                    texts.append(obj[text_field])
        if not texts:
            raise DataError(f"No posts with a string field {text_field!r} in {', '.join(files)}.", "pass --text-field.")
        ex = load_extractor(model, runtime="fused")  # exact (tested equal to plain GLiNER), and faster
        cal = calibration.build(ex, texts, posts)
        out = calibration.cached_path(ex.path)
        cal.save(out)
    except LmrError as exc:
        fail(exc)
        return
    click.echo(f"calibration set: {len(cal.texts)} posts, {sum(map(len, cal.spans))} spans -> {out}")


main.add_command(run_cmd)
main.add_command(crossval_cmd)

if __name__ == "__main__":  # pragma: no cover
    main()
