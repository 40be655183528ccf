"""Evaluation reports: span marking (property-based), and the HTML files of the three CLIs in a real browser.

The browser tests load each report from disk in headless Chromium (tests/browser.py), count what was
drawn (chart bars, map markers and lines, marked spans) against what the evaluation computed, and save
screenshots under test-artifacts/.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from lmr.readers import Span
from lmr.report.spans import KINDS, classify, highlight
from tests.browser import Node, drawn, parse, render
from tests.conftest import tiny_idrisi_records

# ------------------------------------------------------------------ marking spans in text


@st.composite
def _disjoint(draw: Any, n: int) -> list[Span]:
    cuts = sorted(draw(st.sets(st.integers(0, n), max_size=8)))
    pairs = list(zip(cuts[::2], cuts[1::2], strict=False))
    return [Span(a, b) for a, b in pairs if a < b]


@st.composite
def _post(draw: Any) -> tuple[str, list[Span], list[Span]]:
    text = draw(st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")) | st.sampled_from("<>&\"' "),
                        min_size=1, max_size=40))  # fmt: skip
    return text, draw(_disjoint(len(text))), draw(_disjoint(len(text)))


def _marks(root: Node, kind: str) -> list[str]:
    """Texts of the ``kind`` marks inside the posts of a report (or anywhere in a fragment)."""
    scopes = root.find_all("div", cls="post") or [root]
    return [m.text() for scope in scopes for m in scope.find_all("mark", cls=kind)]


@given(_post())
@settings(max_examples=200, deadline=None)
def test_highlight_keeps_the_text_and_marks_each_span_by_kind(post: tuple[str, list[Span], list[Span]]) -> None:
    text, gold, pred = post
    marks = classify(gold, pred)
    root = parse(f"<div>{highlight(text, marks)}</div>")
    assert root.text() == text  # escaped, nothing lost or added
    exact = {(g.start, g.end) for g in gold} & {(p.start, p.end) for p in pred}

    def touches(a: Span, others: list[Span]) -> bool:
        return any(a.start < b.end and b.start < a.end for b in others)

    missed = [text[g.start : g.end] for g in gold if not touches(g, pred)]
    spurious = [text[p.start : p.end] for p in pred if not touches(p, gold)]
    assert sorted(_marks(root, "missed")) == sorted(missed)
    assert sorted(_marks(root, "spurious")) == sorted(spurious)
    assert sorted(_marks(root, "ok")) == sorted(text[s:e] for s, e in exact)
    boundary = [m for m in marks if m.kind == "boundary"]
    assert bool(_marks(root, "boundary")) == bool(boundary)
    covered = "".join(t for k in KINDS for t in _marks(root, k))
    assert len(covered) == len({i for s in (*gold, *pred) for i in range(s.start, s.end)})


# ------------------------------------------------------------------ span report of worker output (exact counts)


def _event(rec: dict[str, Any], spans: list[tuple[str, int]]) -> dict[str, Any]:
    text = rec["text"]
    locs = [{"text": w[:n] if n else w, "start": text.index(w), "end": text.index(w) + (n or len(w))} for w, n in spans]
    return {"id": rec["tweet_id"], "text": text, "locations": locs, "lmr": {"model": "hand@v1", "text_field": "text"}}


def test_worker_report_marks_missed_spurious_and_boundary_spans(tiny_data: Path, tmp_path: Path) -> None:
    from worker.cli import main

    recs = tiny_idrisi_records()
    chosen = {  # post index -> predicted (word, prefix length or 0 for the whole word)
        0: [("Houston", 0), ("Flooding", 0)],  # Texas missed, Flooding spurious
        1: [("Guadalupe River", 9), ("Victoria", 0)],  # "Guadalupe" for "Guadalupe River": boundary
        3: [],  # Redding missed
    }
    events = []
    for i, rec in enumerate(recs):
        gold = [(m["text"], 0) for m in rec["location_mentions"]]  # type: ignore[attr-defined]
        events.append(_event(rec, chosen.get(i, gold)))
    out = tmp_path / "out.jsonl"
    out.write_text("".join(json.dumps(e) + "\n" for e in events))
    report = tmp_path / "worker-report.html"
    res = CliRunner().invoke(main, ["evaluate", str(out), str(tiny_data), "--report", str(report), "--json"])
    assert res.exit_code == 0, res.output
    result = json.loads(res.stdout)
    root = render(report.as_uri(), "report-worker-spans", size=(1100, 1500))
    posts = root.find_all("div", cls="post")
    assert len(posts) == len(chosen)
    assert [int(p.attrs["data-errors"]) for p in posts] == sorted([2, 1, 1], reverse=True)
    assert sorted(_marks(root, "missed")) == ["Redding", "Texas"]
    assert _marks(root, "spurious") == ["Flooding"]
    assert _marks(root, "boundary") == ["Guadalupe", " River"]
    assert sorted(_marks(root, "ok")) == ["Houston", "Victoria"]
    groups, types = result["by_group"], result["recall_by_type"]
    assert len(root.by_id("events").find_all(id_prefix="events-")) == 3 * len(groups)
    assert len(root.by_id("types").find_all(id_prefix="types-recall-")) == len(types)
    assert f"{result['f1']:.3f}" in root.by_id("summary").text()


# ------------------------------------------------------------------ span report of a model (tiny model)


@pytest.mark.slow
def test_trainer_report_of_the_tiny_model(tiny_model: Path, tiny_data: Path, tmp_path: Path) -> None:
    from trainer.cli import main

    report = tmp_path / "model-report.html"
    args = ["evaluate", str(tiny_model), str(tiny_data), "--threshold", "0.05", "--report", str(report), "--json"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    result = json.loads(res.stdout)
    root = render(report.as_uri(), "report-trainer-tiny-model", size=(1100, 1500))
    assert "tiny@v1" in root.find_all("p", cls="meta")[0].text()
    posts = root.find_all("div", cls="post")
    assert 0 < len(posts) <= result["n_posts"]
    assert all(int(p.attrs["data-errors"]) > 0 for p in posts)
    gold_words = {m["text"] for r in tiny_idrisi_records() for m in r["location_mentions"]}  # type: ignore[attr-defined]
    assert set(_marks(root, "missed")) <= gold_words
    n_types = len(result["recall_by_type"])
    assert len(root.by_id("types").find_all(id_prefix="types-recall-")) == n_types > 0


# ------------------------------------------------------------------ geocoding report (offline gazetteer)

GEO_POSTS = [  # text, mention, type, gold (lat, lon)
    ("Flooding in Houston tonight", "Houston", "City/town", (29.763, -95.363)),
    ("Power out across Florida", "Florida", "State", (27.995, -81.760)),
    ("Earthquake damage in Guayaquil", "Guayaquil", "City/town", (10.0, 10.0)),  # a wrong gold point: far
    ("Rescue teams reach Ecuador", "Ecuador", "Country", (-1.340, -78.502)),
]


@pytest.mark.slow
def test_geocode_report_draws_every_place_and_the_far_ones_joined(tmp_path: Path) -> None:
    from geocode.cli import main

    event = tmp_path / "tiny_geo_event"
    event.mkdir()
    rows = []
    for text, m, typ, (lat, lon) in GEO_POSTS:
        s = text.index(m)
        men = {"text": m, "type": typ, "start_offset": s, "end_offset": s + len(m)}
        rows.append({"text": text, "location_mentions": [{**men, "osm_json": {"lat": lat, "lon": lon}}]})
    data = event / "dev.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    report, details = tmp_path / "geo-report.html", tmp_path / "details.jsonl"
    res = CliRunner().invoke(main, ["evaluate", str(data), "--report", str(report), "--details", str(details)])
    assert res.exit_code == 0, res.output
    rows_out = [json.loads(line) for line in details.read_text().splitlines()]
    far = [r for r in rows_out if r["km"] is not None and r["km"] > 161]
    resolved = [r for r in rows_out if r["resolved"]]
    assert [r["text"] for r in far] == ["Guayaquil"]
    root = render(report.as_uri(), "report-geocode", size=(1100, 1800))
    assert drawn(root, "gold-places") == len(GEO_POSTS)
    assert drawn(root, "error-lines") == len(far)
    assert drawn(root, "resolved-far") == len(far)
    assert drawn(root, "resolved-near") == len(resolved) - len(far)
    assert drawn(root, "countries") > 100  # the outlines are there, offline
    root.by_id("error-cdf-curve")
    n_types = len({typ for _, _, typ, _ in GEO_POSTS})
    assert len(root.by_id("types").find_all(id_prefix="types-")) == 2 * n_types
    assert [m.text() for m in root.find_all("mark", cls="missed")] == ["Guayaquil"]
