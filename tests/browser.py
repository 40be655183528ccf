"""A real browser for the page tests: headless Chromium (Debian's ``chromium``), driven from its command line.

``render(url, png)`` loads a page once, lets its scripts run (``--virtual-time-budget``: timers and
fetches included), saves a screenshot as a test artefact and returns the DOM as Chromium serialised it,
parsed into a small tree (:class:`Node`) for assertions on what was drawn.
Screenshots go to ``$LMR_TEST_ARTIFACTS`` (default ``test-artifacts/`` in the repository).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(os.environ.get("LMR_TEST_ARTIFACTS", REPO / "test-artifacts"))
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def chromium() -> str:
    """The browser's path, or skip the test saying how to get one."""
    exe = os.environ.get("LMR_CHROMIUM") or next((p for n in NAMES if (p := shutil.which(n))), None)
    if not exe:
        pytest.skip(
            "no headless Chromium: `make setup` installs Debian's chromium when run as root with apt; "
            "elsewhere install it (apt-get install -y chromium) or set LMR_CHROMIUM to a Chrome binary"
        )
    return exe


@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    children: list[Node] = field(default_factory=list)
    parts: list[str | Node] = field(default_factory=list)

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def iter(self) -> list[Node]:
        out = [self]
        for c in self.children:
            out.extend(c.iter())
        return out

    def find_all(self, tag: str | None = None, cls: str | None = None, id_prefix: str | None = None) -> list[Node]:
        return [
            n
            for n in self.iter()[1:]
            if (tag is None or n.tag == tag)
            and (cls is None or cls in n.classes)
            and (id_prefix is None or n.attrs.get("id", "").startswith(id_prefix))
        ]

    def by_id(self, ident: str) -> Node:
        found = [n for n in self.iter() if n.attrs.get("id") == ident]
        assert len(found) == 1, f"{len(found)} elements with id {ident!r} were drawn (expected one)"
        return found[0]

    def text(self) -> str:
        return "".join(p if isinstance(p, str) else p.text() for p in self.parts)


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.stack = [self.root]

    def _add(self, tag: str, attrs: list[tuple[str, str | None]]) -> Node:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        self.stack[-1].parts.append(node)
        return node

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = self._add(tag, attrs)
        if tag not in VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._add(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].parts.append(data)


def parse(html: str) -> Node:
    b = _TreeBuilder()
    b.feed(html)
    b.close()
    return b.root


def _chrome(exe: str, *args: str, timeout_s: float) -> subprocess.CompletedProcess[str]:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
             "--disable-extensions", "--disable-dev-shm-usage", "--mute-audio"]  # fmt: skip
    return subprocess.run([exe, *flags, *args], capture_output=True, text=True, timeout=timeout_s, check=False)


def render(url: str, screenshot: str, *, size: tuple[int, int] = (1200, 1600), wait_ms: int = 6000) -> Node:
    """Load ``url`` in headless Chromium, save ``ARTIFACTS/<screenshot>.png``, return the drawn DOM."""
    exe = chromium()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    png = ARTIFACTS / f"{screenshot}.png"
    png.unlink(missing_ok=True)
    size_flag, budget = f"--window-size={size[0]},{size[1]}", f"--virtual-time-budget={wait_ms}"
    run = _chrome(exe, size_flag, budget, f"--screenshot={png}", "--dump-dom", url, timeout_s=180)
    assert png.is_file() and png.stat().st_size > 0, f"no screenshot of {url}: {run.stderr[-2000:]}"
    assert run.returncode == 0 and "<html" in run.stdout, f"no DOM from {url}: {run.stderr[-2000:]}"
    return parse(run.stdout)


def drawn(root: Node, group_id: str) -> int:
    """Markers or lines drawn in the SVG group ``group_id`` (matplotlib writes one use/path per item)."""

    def count(node: Node) -> int:
        return sum(0 if c.tag == "defs" else (c.tag in ("use", "path")) + count(c) for c in node.children)

    return count(root.by_id(group_id))
