"""``lmr-geocode``: resolve place mentions, evaluate on IDRISI-D, build the offline index."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from geocode import help_sections as hs
from geocode.evaluate import ORDERS, load_region_map
from geocode.evaluate import evaluate as run_evaluation
from geocode.gazetteer import build_index, default_index_path
from geocode.memory import MIN_SUPPORT
from geocode.resolver import FALLBACKS, Resolver, build_resolver
from geocode.results import GeoContext, Resolution
from lmr.clihelp import SectionedCommand
from lmr.config import config_option, fail, option, redact
from lmr.errors import LmrError
from lmr.readers import expand_paths
from lmr.results import result_option


def _parse_options(values: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in values:
        if "=" not in item:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE; write e.g. --geocoder-option country_bias=US.")
        k, v = item.split("=", 1)
        try:
            out[k.strip()] = json.loads(v)
        except json.JSONDecodeError:
            out[k.strip()] = v
    return out


def _backend_options(f: Any) -> Any:
    decorators = [
        option(
            "--backend",
            default="offline",
            show_default=True,
            help="offline, nominatim, photon, or any geopy geocoder name.",
        ),
        option("--geocoder-url", default=None, help="Base URL of a self-hosted service, e.g. http://127.0.0.1:8080."),
        option("--user-agent", default=None, help="User agent for Nominatim/Photon (required by their policies)."),
        option(
            "--geocoder-option",
            "geocoder_options",
            multiple=True,
            metavar="KEY=VALUE",
            help="Keyword option of the geopy geocoder (repeatable). Keys go in LMR_GEOCODER_API_KEY, never here.",
        ),
        option("--geocoder-timeout", type=float, default=10.0, show_default=True, help="Seconds per request."),
        option(
            "--geocoder-min-delay",
            type=float,
            default=None,
            help="Seconds between requests to a remote service [default: 1.0, Nominatim's policy].",
        ),
        option(
            "--cache-path",
            type=click.Path(dir_okay=False),
            default=None,
            help="Persistent SQLite cache of answers (default: in memory only).",
        ),
        option("--region", default=None, help="Event context: country codes 'US,PR' or a box 'south,west,north,east'."),
        option(
            "--min-confidence",
            type=float,
            default=0.0,
            show_default=True,
            help="Below this candidate probability a mention is Unresolved(ambiguous).",
        ),
        option(
            "--fallback",
            type=click.Choice(FALLBACKS),
            default="context",
            show_default=True,
            help="context: a mention with no candidate inherits the post's most specific place.",
        ),
        option(
            "--offline-fallback",
            is_flag=True,
            help="Answer from the offline gazetteer when a remote service fails (outage, 429, open circuit).",
        ),
        option(
            "--geocoder-rate-file",
            default=None,
            type=click.Path(dir_okay=False),
            help="Share the request rate with every process naming this file (several workers on one host).",
        ),
        option(
            "--prior/--no-prior",
            default=False,
            show_default=True,
            help="Stream prior: recent confident places break ties between namesakes (see docs/geocode.md).",
        ),
        option(
            "--memory",
            type=click.Path(dir_okay=False),
            default=None,
            help="Place memory (`lmr-geocode learn`): names annotators placed are answered with their place.",
        ),
    ]
    for d in reversed(decorators):
        f = d(f)
    return f


def _resolver(p: dict[str, Any]) -> Resolver:
    return build_resolver(
        p["backend"],
        url=p["geocoder_url"],
        user_agent=p["user_agent"],
        cache_path=p["cache_path"],
        region=p["region"],
        options=_parse_options(p["geocoder_options"]),
        timeout=p["geocoder_timeout"],
        min_delay_seconds=p["geocoder_min_delay"],
        min_confidence=p["min_confidence"],
        fallback=p["fallback"],
        offline_fallback=p["offline_fallback"],
        rate_limit_file=p["geocoder_rate_file"],
        prior=p["prior"],
        memory=p["memory"],
    )


@click.group(help="Resolve location mentions to places (offline gazetteer or geopy geocoders).")
@click.version_option(package_name="lmr")
def main() -> None:
    pass


class _Span:
    def __init__(self, text: str, start: int, end: int) -> None:
        self.text, self.start, self.end = text, start, end


def _spans(post: str, mentions: tuple[str, ...]) -> list[_Span]:
    if not mentions:
        return [_Span(post, 0, len(post))]
    out = []
    for m in mentions:
        if ":" in m and m.replace(":", "").isdigit():
            a, b = (int(x) for x in m.split(":", 1))
            if not 0 <= a < b <= len(post):
                raise click.BadParameter(f"span {m} is outside the text (length {len(post)}).")
            out.append(_Span(post[a:b], a, b))
            continue
        i = post.find(m)
        if i < 0:
            raise click.BadParameter(f"mention {m!r} does not occur in the text; give it exactly or as START:END.")
        out.append(_Span(m, i, i + len(m)))
    return out


@main.command(cls=SectionedCommand, sections=hs.RESOLVE_SECTIONS)
@click.argument("text")
@click.option(
    "-m",
    "--mention",
    "mentions",
    multiple=True,
    help="A mention inside TEXT (its words, or START:END); repeatable. Without it TEXT is one place name.",
)
@_backend_options
@option(
    "--candidates",
    "k",
    type=click.IntRange(min=1),
    default=None,
    help="Print the K most probable places per mention (ranked, with probabilities) instead of one.",
)
@option("--json", "as_json", is_flag=True, help="Print JSON lines instead of a table.")
@config_option
def resolve(text: str, mentions: tuple[str, ...], k: int | None, as_json: bool, **params: Any) -> None:
    """Resolve a place name, or the mentions of a post, and print where they are.

    \b
    Examples:
      lmr-geocode resolve "Paris"
      lmr-geocode resolve "Flooding in Luling, Texas tonight" -m Luling -m Texas --json
      lmr-geocode resolve "Georgia" --region US
      lmr-geocode resolve "Georgia" --candidates 3
    """
    params.pop("config", None)
    try:
        resolver = _resolver(params)
        spans = _spans(text, mentions)
        if k is not None:
            _print_ranked(spans, resolver.rank(spans, text, k=k), as_json)
            return
        results = resolver.resolve(spans, text)
    except LmrError as exc:
        fail(exc)
        return
    for r in results:
        if as_json:
            click.echo(json.dumps(r.to_dict(), ensure_ascii=False))
        elif isinstance(r, Resolution):
            click.echo(f"{r.text}\t{r.lat:.5f},{r.lon:.5f}\t{r.feature_type}\t{r.display_name}\t(p={r.score:.2f})")
        else:
            click.echo(f"{r.text}\tunresolved: {r.reason}{' - ' + r.detail if r.detail else ''}")


def _print_ranked(spans: list[_Span], ranked: list[list[Resolution]], as_json: bool) -> None:
    for span, places in zip(spans, ranked, strict=True):
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "text": span.text,
                        "start": span.start,
                        "end": span.end,
                        "candidates": [r.to_dict() for r in places],
                    },
                    ensure_ascii=False,
                )
            )
            continue
        if not places:
            click.echo(f"{span.text}\tunresolved: no_candidate")
        for rank, r in enumerate(places, start=1):
            click.echo(
                f"{span.text}\t{rank}\t{r.lat:.5f},{r.lon:.5f}\t{r.feature_type}\t{r.display_name}\t(p={r.score:.2f})"
            )


@main.command(cls=SectionedCommand, sections=hs.EVALUATE_SECTIONS)
@click.argument("data", nargs=-1, required=True)
@_backend_options
@option(
    "--region-map",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="JSON file event -> {country_codes, bbox}: per-event context (events are the files' folder names).",
)
@option("--details", type=click.Path(dir_okay=False), default=None, help="Write one JSON line per mention here.")
@option(
    "--order",
    type=click.Choice(ORDERS),
    default="file",
    show_default=True,
    help="arrival: replay each event's posts by created_at, as a stream (the prior is keyed by event).",
)
@option("--typed", is_flag=True, help="Pass each gold mention's IDRISI type as its label (a typed recognizer).")
@option("--mrr", is_flag=True, help="Add IDRISI-D's official MRR@1/3/5 per admin level (offline reverse geocoding).")
@option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
@option(
    "--report",
    type=click.Path(dir_okay=False),
    default=None,
    help="Also write an offline HTML report here: error map, distance CDF, accuracy per type and event.",
)
@result_option
@config_option
def evaluate(
    data: tuple[str, ...],
    region_map: str | None,
    details: str | None,
    order: str,
    typed: bool,
    mrr: bool,
    as_json: bool,
    report: str | None,
    result_path: str | None,
    **params: Any,
) -> None:
    """Resolve IDRISI-D gold mentions and score them against the annotators' OSM points.

    Prints acc_161 (share of ALL gold mentions within 161 km; unresolved = miss),
    coverage, median_km, mean_km, n, and the same by IDRISI type.

    \b
    Examples:
      lmr-geocode evaluate idrisi:lmd/dev        # IDRISI-D dev (found or fetched, see lmr/datasets.py)
      lmr-geocode evaluate 'my/lmd/*/dev.jsonl' --region-map bench/geocode_events.json --json
      lmr-geocode evaluate idrisi:lmd/dev --report geocode-report.html
      lmr-geocode evaluate idrisi:lmd/train idrisi:lmd/dev --order arrival --prior --result results/geo.json
    """
    params.pop("config", None)
    rows: list[dict[str, Any]] | None = [] if details or report else None
    try:
        resolver = _resolver(params)
        rmap = load_region_map(region_map) if region_map else None
        metrics = run_evaluation(
            resolver,
            expand_paths(data),
            region=GeoContext.parse(params["region"]),
            region_map=rmap,
            details=rows,
            order="arrival" if order == "arrival" else "file",
            typed=typed,
            mrr=mrr,
        )
    except LmrError as exc:
        fail(exc)
        return
    metrics["settings"] = redact({k: v for k, v in params.items() if k != "geocoder_options"})
    if report and rows is not None:
        from geocode.report import write_geocode_report

        try:
            write_geocode_report(report, metrics, rows, subtitle=f"backend {metrics['backend']} · {len(data)} files")
        except LmrError as exc:
            fail(exc)
            return
        click.echo(f"report: {report}", err=True)
    if result_path:
        _write_result(result_path, metrics, data)
    if details and rows is not None:
        Path(details).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    if as_json:
        click.echo(json.dumps(metrics, ensure_ascii=False, indent=2))
        return
    click.echo(
        f"backend={metrics['backend']}  n={metrics['n']}  acc_161={metrics['acc_161']:.4f}  "
        f"coverage={metrics['coverage']:.4f}  median_km={metrics['median_km']}  mean_km={metrics['mean_km']}"
    )
    for title, table in (("type", metrics["by_type"]), ("event", metrics["by_event"])):
        click.echo(f"{title:<30}{'n':>6}{'acc_161':>9}{'coverage':>10}{'median_km':>11}{'mean_km':>9}")
        for name, m in table.items():
            click.echo(
                f"{name:<30}{m['n']:>6}{m['acc_161']:>9.3f}{m['coverage']:>10.3f}"
                f"{m['median_km'] if m['median_km'] is not None else '-':>11}"
                f"{m['mean_km'] if m['mean_km'] is not None else '-':>9}"
            )
    if "mrr" in metrics:
        click.echo(f"{'level':<30}{'n':>6}{'MRR@1':>9}{'MRR@3':>9}{'MRR@5':>9}")
        for level, m in metrics["mrr"].items():
            click.echo(f"{level:<30}{m['n']:>6}{m['mrr@1']:>9.4f}{m['mrr@3']:>9.4f}{m['mrr@5']:>9.4f}")


def _write_result(path: str, metrics: dict[str, Any], data: tuple[str, ...]) -> None:
    from lmr.results import write_result

    settings = metrics["settings"]
    name = f"{metrics['backend']}, prior {'on' if settings.get('prior') else 'off'}"
    row = {"name": name + (f", memory {Path(settings['memory']).name}" if settings.get("memory") else "")}
    row |= {"acc161": metrics["acc_161"], "coverage": metrics["coverage"], "median_km": metrics["median_km"]}
    if "city" in metrics.get("mrr", {}):
        row["mrr1_city"] = metrics["mrr"]["city"]["mrr@1"]
    write_result(path, area="geocoding", title=f"{' '.join(data)}: {row['name']}", rows=[row])
    click.echo(f"result: {path}", err=True)


@main.command("learn", cls=SectionedCommand, sections=hs.LEARN_SECTIONS)
@click.argument("data", nargs=-1, required=True)
@option("--out", type=click.Path(dir_okay=False), required=True, help="The place memory file to write (JSON).")
@option(
    "--min-support",
    type=click.IntRange(min=1),
    default=MIN_SUPPORT,
    show_default=True,
    help="Annotations that must agree (within 161 km, and a majority) for a name to be kept.",
)
def learn_cmd(data: tuple[str, ...], out: str, min_support: int) -> None:
    """Learn a place memory from annotated posts: each name placed where most of its annotations agree.

    DATA are JSONL files whose location_mentions carry a Nominatim osm_json (IDRISI-D lmd/ files) or
    their own lat/lon (your annotations: {"text": ..., "location_mentions": [{"text": ...,
    "start_offset": ..., "end_offset": ..., "lat": ..., "lon": ..., "kind": "poi"}]}). Pass the file
    to --memory (lmr-geocode) or --geocoder-memory (lmr-worker, lmr-trainer evaluate).

    \b
    Examples:
      lmr-geocode learn idrisi:lmd/train idrisi:ar/lmd/train --out places.json
      lmr-geocode evaluate idrisi:ar/lmd/dev --order arrival --prior --memory places.json
    """
    from geocode.memory import learn_files

    try:
        memory = learn_files(expand_paths(data), min_support=min_support)
        memory.save(out)
    except LmrError as exc:
        fail(exc)
        return
    names, files = len(memory), len(memory.sources)
    click.echo(f"place memory: {out} ({names} name{'s' * (names != 1)} from {files} file{'s' * (files != 1)})")


@main.command("build-index")
@option("--path", type=click.Path(dir_okay=False), default=None, help="Where to write the index.")
@click.option("--force", is_flag=True, help="Rebuild even if a current index exists.")
def build_index_cmd(path: str | None, force: bool) -> None:
    """Build the offline gazetteer index now (otherwise it is built on first use).

    \b
    Example:
      LMR_CACHE_DIR=/var/cache/lmr lmr-geocode build-index
    """
    try:
        out = build_index(Path(path) if path else default_index_path(), force=force)
    except LmrError as exc:
        fail(exc)
        return
    click.echo(f"gazetteer index: {out} ({out.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
