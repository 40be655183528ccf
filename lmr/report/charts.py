"""Charts as inline SVG, drawn by matplotlib (imported lazily: it is the ``report`` extra).

Every drawn element a test or a reader may look for carries an SVG id (matplotlib's ``gid``):
bars are ``<name>-<series>-<i>``, so ``[id^="events-f1-"]`` finds the F1 bars of the ``events`` chart.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from lmr.errors import ConfigError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

COLORS = {"precision": "#4c78a8", "recall": "#f58518", "f1": "#54a24b", "accuracy": "#54a24b", "coverage": "#9ecae9"}
_PROLOG = re.compile(r"^.*?(?=<svg)", re.S)


def new_figure(width: float, height: float) -> Figure:
    """A figure not tied to pyplot (safe in a server thread)."""
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ConfigError(
            f"Reports need matplotlib, which cannot be imported ({exc}).",
            "install lmr[report] (pip install matplotlib).",
        ) from exc
    return Figure(figsize=(width, height), layout="constrained")


@contextmanager
def _svg_settings(name: str) -> Iterator[None]:
    import matplotlib

    # text stays text (small, selectable); the salt keeps clip-path ids apart between inline SVGs
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": name, "font.size": 9}):
        yield


def to_svg(fig: Figure, name: str) -> str:
    """The figure as an ``<svg id="name" ...>`` element to inline in HTML."""
    buf = io.StringIO()
    with _svg_settings(name):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    svg = _PROLOG.sub("", buf.getvalue(), count=1)
    return svg.replace("<svg ", f'<svg id="{name}" class="chart" ', 1)


def bar_chart(
    name: str, labels: Sequence[str], series: Mapping[str, Sequence[float]], *, title: str, counts: Sequence[int] = ()
) -> str:
    """Grouped horizontal bars in [0, 1], one group per label, one bar per series (e.g. P, R, F1)."""
    n, k = len(labels), len(series)
    fig = new_figure(7.0, 0.9 + 0.22 * n * max(k, 1) + 0.1 * n)
    ax = fig.add_subplot()
    height = 0.8 / max(k, 1)
    for j, (metric, values) in enumerate(series.items()):
        ys = [i + (j - (k - 1) / 2) * height for i in range(n)]
        bars = ax.barh(ys, list(values), height=height, color=COLORS.get(metric), label=metric)
        for i, bar in enumerate(bars):
            bar.set_gid(f"{name}-{metric}-{i}")
    ax.set_yticks(range(n), [f"{lab} (n={c})" for lab, c in zip(labels, counts, strict=True)] if counts else labels)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_title(title, loc="left")
    ax.grid(axis="x", alpha=0.3)
    if k > 1:
        fig.legend(loc="outside lower center", fontsize=8, ncols=k, frameon=False)
    return to_svg(fig, name)


def cdf_chart(name: str, values: Sequence[float], *, title: str, mark: float | None = None, xlabel: str = "") -> str:
    """Empirical CDF of ``values`` on a log x axis, with a vertical line at ``mark``."""
    fig = new_figure(7.0, 3.2)
    ax = fig.add_subplot()
    xs = sorted(max(v, 0.1) for v in values)
    ys = [(i + 1) / len(xs) for i in range(len(xs))]
    (line,) = ax.step(xs, ys, where="post", color=COLORS["precision"])
    line.set_gid(f"{name}-curve")
    if mark is not None:
        ax.axvline(mark, color="#e45756", linestyle="--", linewidth=1).set_gid(f"{name}-mark")
        share = sum(v <= mark for v in values) / len(values) if values else 0.0
        ax.text(mark * 1.1, 0.05, f"{share:.0%} within {mark:g} km", color="#e45756")
    ax.set_xscale("log")
    ax.set_ylim(0, 1.01)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("share of resolved mentions")
    ax.set_title(title, loc="left")
    ax.grid(alpha=0.3)
    return to_svg(fig, name)


def legend_handles(styles: Mapping[str, Mapping[str, Any]]) -> list[Any]:
    """Proxy artists for a legend: ``legend_handles({"gold": {"marker": "o", "color": "k"}})``."""
    from matplotlib.lines import Line2D

    return [Line2D([], [], linestyle="none", label=label, **style) for label, style in styles.items()]
