"""Right-to-left posts in the HTML reports, drawn by a real browser (tests/browser.py).

Each post's text carries ``dir="auto"``: the browser gives an Arabic post right-to-left direction and an English
one left-to-right, in the same page. A script added to a copy of the report writes each element's computed
direction into the DOM the browser hands back.
"""

from __future__ import annotations

from pathlib import Path

from lmr.readers import Example, Span
from lmr.report.page import page
from lmr.report.spans import worst_posts_html
from tests.browser import render

PROBE = (
    "<script>for (const e of document.querySelectorAll('[dir=auto]'))"
    " e.dataset.direction = getComputedStyle(e).direction;</script>"
)


def _example(text: str, mention: str, eid: str) -> Example:
    s = text.index(mention)
    return Example(text, [Span(s, s + len(mention), text=mention)], eid, "x.jsonl", "ev")


def test_arabic_posts_read_right_to_left_beside_english_ones(tmp_path: Path) -> None:
    arabic = _example("استنفار حاليا بالكويت ورفع الحالة #سيول_الكويت", "بالكويت", "ar1")
    english = _example("Flooding reported in Houston, Texas tonight", "Texas", "en1")
    html = page("RTL", "two languages", [("Posts", worst_posts_html([arabic, english], [[], []], limit=10))])
    report = tmp_path / "rtl.html"
    report.write_text(html.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    root = render(report.as_uri(), "report-rtl", size=(900, 600), wait_ms=500)
    texts = {n.text().strip(): n.attrs.get("data-direction") for n in root.find_all("div", cls="text")}
    assert texts == {arabic.text: "rtl", english.text: "ltr"}
    marks = [m.text() for m in root.find_all("mark")]
    assert "بالكويت" in marks and "Texas" in marks  # the missed mentions stay marked inside the RTL text
