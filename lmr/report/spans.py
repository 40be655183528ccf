"""The span report: P/R/F1 charts and the worst posts with gold and predicted spans marked in the text.

Each gold and predicted span of a post gets one kind:

* ``ok``: a prediction with exactly the gold offsets;
* ``boundary``: a gold span and a prediction that overlap without matching exactly;
* ``missed``: a gold span no prediction touches;
* ``spurious``: a prediction that touches no gold span.

The worst posts are those with the most errors: missed + spurious + boundary (counted once per gold span).
"""

from __future__ import annotations

import html
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lmr.errors import ConfigError
from lmr.readers import Example
from lmr.report.charts import bar_chart
from lmr.report.page import metric_table, page
from lmr.scoring import HasSpan

KINDS = ("ok", "boundary", "missed", "spurious")
WORST_POSTS = 25


@dataclass(frozen=True)
class Marked:
    """One span of a post with its kind and whether it is gold or predicted."""

    start: int
    end: int
    kind: str
    gold: bool


def classify(gold: Sequence[HasSpan], pred: Sequence[HasSpan]) -> list[Marked]:
    """Every gold and predicted span of one post with its kind (see the module docstring)."""
    gs = sorted({(g.start, g.end) for g in gold})
    ps = sorted({(p.start, p.end) for p in pred})
    exact = set(gs) & set(ps)

    def touches(a: tuple[int, int], others: list[tuple[int, int]]) -> bool:
        return any(b not in exact and a[0] < b[1] and b[0] < a[1] for b in others)

    out = [
        Marked(s, e, "ok" if (s, e) in exact else "boundary" if touches((s, e), ps) else "missed", True) for s, e in gs
    ]
    out += [
        Marked(s, e, "boundary" if touches((s, e), gs) else "spurious", False) for s, e in ps if (s, e) not in exact
    ]
    return out


def errors(marks: Sequence[Marked]) -> int:
    """Missed + spurious + boundary errors; a boundary error counts once, on its gold span."""
    return sum(m.kind != "ok" and (m.gold or m.kind == "spurious") for m in marks)


def highlight(text: str, marks: Sequence[Marked]) -> str:
    """``text`` as HTML with one ``<mark class=KIND>`` per run of characters covered by the same spans.

    A span that no other span overlaps is exactly one element; overlapping gold and predicted spans
    (boundary errors) split into runs, each marked ``boundary``.
    """
    cuts = sorted({0, len(text), *(m.start for m in marks), *(m.end for m in marks)})
    out = []
    for a, b in itertools.pairwise(cuts):
        cover = [m for m in marks if m.start <= a and b <= m.end]
        piece = html.escape(text[a:b])
        if not cover:
            out.append(piece)
            continue
        kind = min((m.kind for m in cover), key=KINDS.index)
        kind = "boundary" if any(m.kind == "boundary" for m in cover) else kind
        side = "gold" if all(m.gold for m in cover) else "pred" if not any(m.gold for m in cover) else "both"
        out.append(f'<mark class="{kind}" data-side="{side}">{piece}</mark>')
    return "".join(out)


def _post_html(ex: Example, marks: Sequence[Marked]) -> str:
    counts = {k: sum(m.kind == k and (m.gold or k == "spurious") for m in marks) for k in KINDS}
    why = ", ".join(f"{n} {k}" for k, n in counts.items() if n)
    where = html.escape(ex.event or Path(ex.source).name)
    return (
        f'<div class="post" data-errors="{errors(marks)}">'
        f'<div class="text" dir="auto">{highlight(ex.text, marks)}</div>'
        f'<div class="why">{where} · {html.escape(ex.id)} · {why or "no spans"}</div></div>'
    )


LEGEND = (
    '<p class="legend"><mark class="ok">exact match</mark><mark class="boundary">boundary error</mark>'
    '<mark class="missed">missed gold span</mark><mark class="spurious">spurious prediction</mark></p>'
)


def worst_posts_html(
    examples: Sequence[Example], predictions: Sequence[Sequence[HasSpan]], limit: int = WORST_POSTS
) -> str:
    """The ``limit`` posts with the most errors, highlighted, worst first."""
    marked = [(ex, classify(ex.spans, preds)) for ex, preds in zip(examples, predictions, strict=True)]
    worst = sorted((m for m in marked if errors(m[1])), key=lambda m: -errors(m[1]))[:limit]
    if not worst:
        return "<p>No post has an error.</p>"
    return LEGEND + "".join(_post_html(ex, marks) for ex, marks in worst)


def span_report(
    result: dict[str, Any],
    examples: Sequence[Example],
    predictions: Sequence[Sequence[HasSpan]],
    *,
    title: str = "Location mention evaluation",
    subtitle: str = "",
    limit: int = WORST_POSTS,
) -> str:
    """The whole HTML report of one evaluation (``result`` as returned by :func:`lmr.evaluation.score`)."""
    r = result
    summary = (
        metric_table(
            [
                ("exact", f"{r['precision']:.3f}", f"{r['recall']:.3f}", f"{r['f1']:.3f}"),
                ("overlap", f"{r['overlap_precision']:.3f}", f"{r['overlap_recall']:.3f}", f"{r['overlap_f1']:.3f}"),
            ],
            ("match", "precision", "recall", "F1"),
        )
        + f"<p>{r['n_posts']} posts, {r['n_gold']} gold spans, {r['n_pred']} predicted, WER {r['wer']:.3f}.</p>"
    )
    sections = [("Summary", summary)]
    groups = r.get("by_group", {})
    if groups:
        names = list(groups)
        series = {m: [groups[g][m] for g in names] for m in ("precision", "recall", "f1")}
        chart = bar_chart(
            "events", names, series, title="Exact-span P/R/F1 per event", counts=[groups[g]["n_gold"] for g in names]
        )
        sections.append(("Per event", chart))
    types = r.get("recall_by_type", {})
    if types:
        names = list(types)
        chart = bar_chart(
            "types",
            names,
            {"recall": [types[t]["recall"] for t in names]},
            title="Exact-span recall per location type",
            counts=[types[t]["n"] for t in names],
        )
        note = "<p>Predictions carry no type, so precision and F1 per type are not defined; recall is.</p>"
        sections.append(("Per location type", chart + note))
    sections.append(("Worst posts", worst_posts_html(examples, predictions, limit)))
    return page(title, subtitle or f"threshold {r.get('threshold', '-')}", sections)


def write_span_report(
    path: str | Path,
    result: dict[str, Any],
    posts: Sequence[tuple[Example, Sequence[HasSpan]]],
    *,
    title: str,
    subtitle: str = "",
) -> Path:
    """Build the span report of ``posts`` (gold post, predictions) and write it to ``path``."""
    examples = [ex for ex, _ in posts]
    return write_report(path, span_report(result, examples, [p for _, p in posts], title=title, subtitle=subtitle))


def write_report(path: str | Path, document: str) -> Path:
    """Write ``document`` to ``path`` (parents created) and return the path."""
    p = Path(path)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(document, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"Cannot write the report {p}: {exc.strerror or exc}.", "pass a writable path.") from exc
    return p
