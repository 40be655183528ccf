"""Oversampling by script: a language with few training posts seen more often per epoch.

``--oversample arabic=2`` repeats every training post written mostly in Arabic letters
(:func:`lmr.language.script_of`) twice in the training list, so under a time budget the model takes
about twice as many steps on Arabic as it would otherwise. Only training posts are repeated: the
selection set and held-out events are untouched, and the repeats come after both are split off, so
no repeat of a selection post can reach training.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from lmr.errors import ConfigError
from lmr.language import SCRIPTS, Script, script_of
from lmr.readers import Example

MAX_TIMES = 10


def parse(specs: Sequence[str]) -> dict[Script, int]:
    """``["arabic=2"]`` -> ``{"arabic": 2}``; a clear error for anything else."""
    out: dict[Script, int] = {}
    for spec in specs:
        script, sep, times = spec.partition("=")
        script = script.strip().lower()
        if not sep or script not in SCRIPTS or not times.strip().isdigit():
            raise ConfigError(
                f"--oversample {spec!r} is not SCRIPT=TIMES.",
                f"write e.g. --oversample arabic=2 (scripts: {', '.join(SCRIPTS)}; times 1 to {MAX_TIMES}).",
            )
        n = int(times)
        if not 1 <= n <= MAX_TIMES:
            raise ConfigError(f"--oversample {spec!r}: times must lie between 1 and {MAX_TIMES}.")
        out[script] = n
    return out


def oversample(train: Sequence[Example], times: dict[Script, int]) -> tuple[list[Example], dict[str, int]]:
    """Each post repeated ``times[script]`` times (once when its script is not named), order kept; and the
    number of posts per script after repeating."""
    out: list[Example] = []
    counts: Counter[str] = Counter()
    for ex in train:
        script = script_of(ex.text)
        n = times.get(script, 1)
        out.extend([ex] * n)
        counts[script] += n
    return out, dict(counts)
