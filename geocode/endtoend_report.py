"""The end-to-end report of ``lmr-worker evaluate`` and ``lmr-trainer evaluate --geocoder``: one offline HTML file.

A map of the places found (green, at the output point), the wrong output places (red; a line joins one to its
gold place when it has the gold span), and the gold places missed (orange rings, at the gold point); errors by
cause; P/R/F1 per event and per language; recall per IDRISI type; the posts with the most errors, each error
explained. Right-to-left posts (Arabic) keep their direction: every post and name is bidi-isolated.
Built on :mod:`lmr.report` (matplotlib SVG, countryinfo outlines); nothing is fetched.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from geocode.endtoend import MISS_CAUSES, WRONG_CAUSES, PostScore
from lmr.report.charts import bar_chart, legend_handles, to_svg
from lmr.report.maps import points, segments, view_box, world_axes
from lmr.report.page import metric_table, page
from lmr.report.spans import Marked, highlight, write_report

WORST_POSTS = 25
FOUND, WRONG, MISSED = "#54a24b", "#e45756", "#f58518"
CAUSE_WORDS = {
    "not_recognised": "not recognised",
    "other_span": "recognised with another span",
    "unresolved": "recognised but unresolved",
    "namesake": "resolved to a namesake (far)",
    "wrong_level": "resolved at the wrong level",
    "spurious": "not a gold place",
}


def place_map(scores: Sequence[PostScore], km: float) -> str:
    """Found, wrong and missed places; a line from each wrong point to the gold place of its span."""
    found = [pt for s in scores for _, o in s.found if (pt := o.point) is not None]
    wrong = [(w, pt) for s in scores for w in s.wrong if (pt := w.output.point) is not None]
    missed = [(m.gold.lat, m.gold.lon) for s in scores for m in s.misses]
    lines = [((w.gold.lat, w.gold.lon), pt) for w, pt in wrong if w.gold is not None and w.km is not None]
    fig, ax = world_axes(view_box(found + missed, pad=10))
    segments(ax, lines, "e2e-lines", colors=WRONG, linewidths=0.6, alpha=0.5)
    points(ax, missed, "e2e-missed", sizes=22, facecolors="none", edgecolors=MISSED, linewidths=1.2)
    points(ax, found, "e2e-found", sizes=12, color=FOUND, marker="o")
    points(ax, [pt for _, pt in wrong], "e2e-wrong", sizes=16, color=WRONG, marker="x")
    ax.legend(
        handles=legend_handles(
            {
                f"found (output within {km:g} km)": {"marker": "o", "color": FOUND, "markersize": 4},
                "wrong output place (line: to the gold place of its span)": {"marker": "x", "color": WRONG},
                "gold place missed": {"marker": "o", "markerfacecolor": "none", "color": MISSED},
            }
        ),
        loc="lower left",
        fontsize=7,
        framealpha=0.9,
    )
    return to_svg(fig, "e2e-map")


LEGEND = (
    '<p class="legend"><mark class="ok">found</mark><mark class="missed">gold place missed</mark>'
    '<mark class="boundary">output with another span</mark>'
    '<mark class="spurious">output that is not a gold place</mark></p>'
)


def _bdi(text: str) -> str:
    return f"<bdi>{html.escape(text)}</bdi>"


def _marks(s: PostScore) -> list[Marked]:
    out = [Marked(g.start, g.end, "ok", True) for g, _ in s.found]
    out += [Marked(m.gold.start, m.gold.end, "missed", True) for m in s.misses]
    out += [Marked(w.output.start, w.output.end, "spurious", False) for w in s.wrong if w.cause == "spurious"]
    out += [Marked(w.output.start, w.output.end, "boundary", False) for w in s.wrong if w.cause == "other_span"]
    return out


def _why(s: PostScore) -> str:
    items = []
    for m in s.misses:
        where = f" → {_bdi(m.output.name)}" if m.output is not None and m.output.name else ""
        far = f", {m.km:,.0f} km off" if m.km is not None else ""
        items.append(f'<li data-cause="{m.cause}">missed {_bdi(m.gold.text)}: {CAUSE_WORDS[m.cause]}{where}{far}</li>')
    for w in s.wrong:
        if w.km is None:  # a far one is already listed as a miss
            items.append(f'<li data-cause="{w.cause}">wrong {_bdi(w.output.text)}: {CAUSE_WORDS[w.cause]}</li>')
    return f"<ul>{''.join(items)}</ul>"


def worst_posts(scores: Sequence[PostScore], limit: int = WORST_POSTS) -> str:
    """The ``limit`` posts with the most errors, worst first: the text marked, each error with its cause."""
    worst = sorted((s for s in scores if s.errors), key=lambda s: -s.errors)[:limit]
    if not worst:
        return "<p>No post has an error.</p>"
    out = [LEGEND]
    for s in worst:
        where = html.escape(f"{s.post.event} · {s.post.id} · {s.post.lang or 'unknown language'}")
        out.append(
            f'<div class="post" data-errors="{s.errors}"><div class="text" dir="auto">'
            f"{highlight(s.post.text, _marks(s))}</div>"
            f'<div class="why">{where}{_why(s)}</div></div>'
        )
    return "".join(out)


def _causes_chart(name: str, causes: dict[str, dict[str, Any]], keys: Sequence[str], title: str) -> str:
    labels = [CAUSE_WORDS[k] for k in keys]
    return bar_chart(
        name, labels, {"share": [causes[k]["share"] for k in keys]}, title=title, counts=[causes[k]["n"] for k in keys]
    )


def _prf_chart(name: str, groups: dict[str, dict[str, Any]], title: str) -> str:
    labels = list(groups)
    series = {m: [groups[g][m] for g in labels] for m in ("precision", "recall", "f1")}
    return bar_chart(name, labels, series, title=title, counts=[groups[g]["n_gold"] for g in labels])


def _summary(r: dict[str, Any], spans: dict[str, Any] | None) -> str:
    km = f"{r['km']:g} km"
    rows = [
        (f"end to end, exact span, within {km}", f"{r['precision']:.3f}", f"{r['recall']:.3f}", f"{r['f1']:.3f}"),
        (
            f"end to end, overlapping span, within {km}",
            f"{r['overlap_precision']:.3f}",
            f"{r['overlap_recall']:.3f}",
            f"{r['overlap_f1']:.3f}",
        ),
    ]
    if spans is not None:
        rows.append(
            (
                "recognition only, exact span",
                f"{spans['precision']:.3f}",
                f"{spans['recall']:.3f}",
                f"{spans['f1']:.3f}",
            )
        )
    counts = f"<p>{r['n_posts']} posts, {r['n_gold']} gold places, {r['n_pred']} output places, {r['tp']} found.</p>"
    return metric_table(rows, ("score", "precision", "recall", "F1")) + counts + f"<p>{html.escape(r['note'])}</p>"


def endtoend_report(
    result: dict[str, Any],
    scores: Sequence[PostScore],
    *,
    spans: dict[str, Any] | None = None,
    title: str = "End-to-end geoparsing evaluation",
    subtitle: str = "",
    limit: int = WORST_POSTS,
) -> str:
    """The HTML report of one end-to-end scoring (``result`` from :func:`geocode.endtoend.summarise`);
    ``spans``, when given, is the recognition-only result of the same posts, shown alongside."""
    r = result
    sections = [
        ("Summary", _summary(r, spans)),
        ("Map", place_map(scores, r["km"])),
        (
            "Errors by cause",
            _causes_chart("miss-causes", r["misses"], MISS_CAUSES, "Missed gold places by cause")
            + _causes_chart("wrong-causes", r["wrong"], WRONG_CAUSES, "Wrong output places by cause"),
        ),
    ]
    if r["by_event"]:
        sections.append(("Per event", _prf_chart("events", r["by_event"], "End-to-end P/R/F1 per event")))
    if r["by_lang"]:
        rows = [
            (k, f"{v['precision']:.3f}", f"{v['recall']:.3f}", f"{v['f1']:.3f}", str(v["n_gold"]))
            for k, v in r["by_lang"].items()
        ]
        sections.append(("Per language", metric_table(rows, ("language", "precision", "recall", "F1", "gold"))))
    if r["by_type"]:
        types = r["by_type"]
        chart = bar_chart(
            "types",
            list(types),
            {"recall": [v["recall"] for v in types.values()]},
            title="End-to-end recall per location type",
            counts=[v["n"] for v in types.values()],
        )
        note = "<p>Output places carry no type, so precision per type is not defined; recall is.</p>"
        sections.append(("Per location type", chart + note))
    sections.append(("Worst posts", worst_posts(scores, limit)))
    return page(title, subtitle, sections)


def write_endtoend_report(
    path: str | Path,
    result: dict[str, Any],
    scores: Sequence[PostScore],
    *,
    spans: dict[str, Any] | None = None,
    title: str,
    subtitle: str = "",
) -> Path:
    """Build the end-to-end report and write it to ``path``."""
    return write_report(path, endtoend_report(result, scores, spans=spans, title=title, subtitle=subtitle))


def write_evaluation_report(
    path: str | Path,
    spans: dict[str, Any],
    posts: Any,
    e2e: tuple[dict[str, Any], Sequence[PostScore]] | None,
    *,
    subject: str,
    subtitle: str,
) -> Path:
    """An evaluation's report: places end to end where the gold carries points (``e2e``), else spans.
    ``subject`` names what was evaluated (``model evaluation``, ``worker output evaluation``)."""
    if e2e is not None:
        title = f"Places: {subject}, end to end"
        return write_endtoend_report(path, e2e[0], e2e[1], spans=spans, title=title, subtitle=subtitle)
    from lmr.report.spans import write_span_report

    return write_span_report(path, spans, posts, title=f"Location mentions: {subject}", subtitle=subtitle)
