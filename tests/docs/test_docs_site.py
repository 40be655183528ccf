"""The user guide (mkdocs.yml + docs/) builds in strict mode, offline, and fetches nothing when read."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


def _build(site: Path) -> subprocess.CompletedProcess[str]:
    pytest.importorskip("mkdocs", reason="the user guide needs mkdocs: pip install -e '.[dev]'")
    # A dead proxy: anything the build tried to download (fonts, plugins' assets) would fail it.
    env = {
        **os.environ,
        "NO_MKDOCS_2_WARNING": "1",
        "HTTP_PROXY": "http://127.0.0.1:9",
        "HTTPS_PROXY": "http://127.0.0.1:9",
    }
    cmd = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_the_site_builds_strictly_and_reads_offline(tmp_path: Path) -> None:
    site = tmp_path / "site"
    res = _build(site)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "WARNING" not in res.stderr, res.stderr
    pages = list(site.rglob("*.html"))
    nav = yaml.safe_load((REPO / "mkdocs.yml").read_text())["nav"]
    assert len(pages) >= len(nav)
    external = set()
    for page in pages:
        html = page.read_text(encoding="utf-8")
        external |= set(re.findall(r'<(?:link|script|img)[^>]*(?:href|src)="(https?://[^"]+)"', html))
    assert not external, f"pages would fetch {sorted(external)} when opened"
    assert (site / "operations" / "index.html").is_file()


def test_every_docs_page_is_in_the_nav() -> None:
    def files(node: object) -> list[str]:
        if isinstance(node, str):
            return [node]
        if isinstance(node, list):
            return [f for n in node for f in files(n)]
        if isinstance(node, dict):
            return [f for v in node.values() for f in files(v)]
        return []

    config = yaml.safe_load((REPO / "mkdocs.yml").read_text())
    assert config["theme"]["font"] is False, "Google Fonts would be fetched by every reader"
    listed = set(files(config["nav"]))
    assert listed == {p.name for p in (REPO / "docs").glob("*.md")}


def test_the_readme_is_short_and_in_the_order_a_newcomer_reads() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(readme.encode()) <= 10_000
    heads = re.findall(r"^## (.+)$", readme, flags=re.M)
    assert heads == [
        "Two commands",
        "One post in, one event out",
        "One command per role",
        "Results",
        "What lmr does not do yet",
        "Documentation",
    ]
    assert not re.search(r"\b20\d\d-\d\d-\d\d\b", readme.replace(re.search(r'"processed_at": "[^"]+"', readme)[0], ""))
