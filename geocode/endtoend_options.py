"""The options of every command that scores places end to end (``lmr-worker evaluate``, ``lmr-trainer evaluate``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from geocode.geo import ACC_KM
from lmr.config import option

F = TypeVar("F", bound=Callable[..., Any])


def km_option(f: F) -> F:
    """``--km``: how close to the gold point an output place must lie to be right (default 161 km)."""
    return option(
        "--km",
        type=click.FloatRange(min=0, min_open=True),
        default=ACC_KM,
        show_default=True,
        help="End to end: an output place this close to the gold point is right.",
    )(f)


def report_option(with_points: str) -> Callable[[F], F]:
    """``--report FILE``; ``with_points`` says what adds the map (``GOLD points``, ``--geocoder``)."""
    return option(
        "--report",
        type=click.Path(dir_okay=False),
        default=None,
        help="Also write an offline HTML report here: charts per event and type, the worst posts marked "
        f"(with {with_points}: a map of found, wrong and missed places).",
    )
