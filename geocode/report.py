"""The geocoding report of ``lmr-geocode evaluate --report``: one offline HTML file.

A world map with every gold place (black) and its resolved place (blue within 161 km, red beyond,
joined to the gold place by a red line), the CDF of error distances, accuracy and coverage per
IDRISI type and per event, and the mentions resolved furthest from the annotators' point.
Built on :mod:`lmr.report` (matplotlib SVG, countryinfo outlines); nothing is fetched.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from geocode.geo import ACC_KM
from lmr.report.charts import bar_chart, cdf_chart, legend_handles, to_svg
from lmr.report.maps import points, segments, view_box, world_axes
from lmr.report.page import metric_table, page
from lmr.report.spans import write_report

WORST_MENTIONS = 25
GOLD, NEAR, FAR = "#222222", "#4c78a8", "#e45756"


def _latlon(row: dict[str, Any]) -> tuple[float, float] | None:
    return (float(row["lat"]), float(row["lon"])) if row.get("resolved") else None


def error_map(details: Sequence[dict[str, Any]]) -> str:
    """Gold places, resolved places, and a line wherever the two are more than 161 km apart."""
    gold = [(float(r["gold"][0]), float(r["gold"][1])) for r in details]
    resolved = [(r, p) for r in details if (p := _latlon(r)) is not None]
    far = [(r, p) for r, p in resolved if r["km"] is not None and r["km"] > ACC_KM]
    fig, ax = world_axes(view_box(gold + [p for _, p in resolved], pad=10))
    segments(
        ax, [((r["gold"][0], r["gold"][1]), p) for r, p in far], "error-lines", colors=FAR, linewidths=0.6, alpha=0.6
    )
    points(ax, gold, "gold-places", sizes=10, color=GOLD, marker="o")
    points(
        ax,
        [p for r, p in resolved if r not in [f for f, _ in far]],
        "resolved-near",
        sizes=14,
        facecolors="none",
        edgecolors=NEAR,
        linewidths=1.0,
    )
    points(ax, [p for _, p in far], "resolved-far", sizes=14, facecolors="none", edgecolors=FAR, linewidths=1.0)
    ax.legend(
        handles=legend_handles(
            {
                "gold place": {"marker": "o", "color": GOLD, "markersize": 4},
                f"resolved within {ACC_KM:g} km": {"marker": "o", "markerfacecolor": "none", "color": NEAR},
                f"resolved beyond {ACC_KM:g} km (line to gold)": {
                    "marker": "o",
                    "markerfacecolor": "none",
                    "color": FAR,
                },
            }
        ),
        loc="lower left",
        fontsize=7,
        framealpha=0.9,
    )
    return to_svg(fig, "error-map")


def _worst_table(details: Sequence[dict[str, Any]], limit: int) -> str:
    rows = sorted((r for r in details if r["km"] is not None and r["km"] > ACC_KM), key=lambda r: -r["km"])[:limit]
    if not rows:
        return f"<p>Every resolved mention is within {ACC_KM:g} km of its gold point.</p>"
    out = ["<table><thead><tr><th>post (mention marked)</th><th>type</th><th>resolved to</th><th>km</th></tr></thead>"]
    for r in rows:
        text, a, b = r["post"], int(r["start"]), int(r["end"])
        post = f'{html.escape(text[:a])}<mark class="missed">{html.escape(text[a:b])}</mark>{html.escape(text[b:])}'
        out.append(
            f'<tr><td dir="auto" style="text-align:start">{post}</td><td>{html.escape(r["type"])}</td>'
            f'<td dir="auto">{html.escape(str(r.get("display_name") or ""))}</td><td>{r["km"]:,.0f}</td></tr>'
        )
    return "".join(out) + "</table>"


def _breakdown(name: str, groups: dict[str, dict[str, Any]], title: str) -> str:
    labels = list(groups)
    series = {"accuracy": [groups[g]["acc_161"] for g in labels], "coverage": [groups[g]["coverage"] for g in labels]}
    return bar_chart(name, labels, series, title=title, counts=[groups[g]["n"] for g in labels])


def geocode_report(
    metrics: dict[str, Any], details: Sequence[dict[str, Any]], *, subtitle: str = "", limit: int = WORST_MENTIONS
) -> str:
    """The HTML report of one ``geocode.evaluate.evaluate`` run (``details`` = its per-mention rows)."""
    m = metrics
    km = [float(r["km"]) for r in details if r["km"] is not None]
    summary = (
        metric_table(
            [(str(m["n"]), f"{m['acc_161']:.3f}", f"{m['coverage']:.3f}", str(m["median_km"]), str(m["mean_km"]))],
            ("gold mentions", f"acc@{ACC_KM:g} km", "coverage", "median km", "mean km"),
        )
        + f"<p>acc@{ACC_KM:g} km counts every gold mention (unresolved = miss); distances are over resolved ones.</p>"
    )
    sections = [
        ("Summary", summary),
        ("Map", error_map(details)),
        (
            "Error distance",
            cdf_chart(
                "error-cdf",
                km,
                title="Error distance, resolved mentions (CDF)",
                mark=ACC_KM,
                xlabel="km from the annotators' point (log)",
            )
            if km
            else "<p>-</p>",
        ),
        ("Per location type", _breakdown("types", m["by_type"], f"acc@{ACC_KM:g} km and coverage per IDRISI type")),
    ]
    if len(m.get("by_event", {})) > 1:
        sections.append(("Per event", _breakdown("events", m["by_event"], f"acc@{ACC_KM:g} km and coverage per event")))
    sections.append((f"Furthest from gold (> {ACC_KM:g} km)", _worst_table(details, limit)))
    return page("Geocoding evaluation", subtitle or f"backend {m.get('backend', '-')}", sections)


def write_geocode_report(
    path: str | Path, metrics: dict[str, Any], details: Sequence[dict[str, Any]], *, subtitle: str = ""
) -> Path:
    """Build the report and write it to ``path``."""
    return write_report(path, geocode_report(metrics, details, subtitle=subtitle))
