"""The HTML shell of a report: one file, inline CSS, inline SVG, no scripts, nothing fetched."""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import UTC, datetime

CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; max-width: 1000px;
       padding: 1rem 1.5rem 3rem; color: #222; }
h1 { font-size: 1.5rem; margin-bottom: .2rem; }
h2 { font-size: 1.15rem; margin-top: 2rem; border-bottom: 1px solid #ddd; }
.meta { color: #666; } table { border-collapse: collapse; margin: .5rem 0; }
td, th { padding: .2rem .6rem; text-align: right; border-bottom: 1px solid #eee; }
th:first-child, td:first-child { text-align: left; }
.chart { max-width: 100%; height: auto; display: block; }
.post { border: 1px solid #e2e2e2; border-radius: 6px; padding: .5rem .7rem; margin: .6rem 0; white-space: pre-wrap; }
.post .why { color: #666; font-size: 12px; white-space: normal; margin-top: .3rem; }
mark { padding: 0; }
mark.ok { background: #c9ecc4; } mark.missed { background: #ffd6a5; border-bottom: 2px solid #e07b00; }
mark.spurious { background: #f6c4c4; text-decoration: line-through #c23b3b; }
mark.boundary { background: #fff3a8; border-bottom: 2px dashed #b08900; }
.legend mark { margin-right: .6rem; }
"""


def metric_table(rows: Sequence[tuple[str, ...]], header: Sequence[str]) -> str:
    """A small table of already formatted cells."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def page(title: str, subtitle: str, sections: Sequence[tuple[str, str]]) -> str:
    """The whole document; ``sections`` are (heading, HTML body) pairs."""
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="meta">{html.escape(subtitle)} · generated {when}</p>',
    ]
    for heading, body in sections:
        slug = "".join(ch if ch.isalnum() else "-" for ch in heading.lower()).strip("-")
        parts.append(f'<section id="{slug}"><h2>{html.escape(heading)}</h2>{body}</section>')
    parts.append("</body></html>")
    return "\n".join(parts)
