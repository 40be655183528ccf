"""Cross-event evaluation: whole disasters held out of training, selection and threshold choice.

The standard split (``--heldout-events standard``) was fixed once, before any tuning, and is not to be
changed to suit results. It holds out four of the 14 shared IDRISI events, one of each kind of disaster
and from four regions, so that the held-out figure covers places unlike the training events':

* ``ecuador_earthquake_2016``: earthquake, Latin America (Spanish place names);
* ``greece_wildfires_2018``: wildfire, southern Europe (Greek place names);
* ``hurricane_florence_2018``: hurricane, the US east coast (US counties, towns, streets);
* ``srilanka_floods_2017``: flood, South Asia (districts, towns).

With Arabic posts in ``--train`` (``idrisi:ar/lmr/train``), ``standard`` also holds out two of the five
shared Arabic events, fixed before any bilingual model was trained: ``cairo_bombing_2019`` (an attack, in
Egypt) and ``hafr_albatin_floods_2019`` (a flood, in Saudi Arabia), so that Arabic held-out figures cover
a disaster kind and a country unlike most Arabic training posts (covid_2019, kuwait_floods_2018 and
dragon_storms_2020 train). ``standard`` names only the events present in the data.

The other ten events train; their posts alone choose checkpoints and the threshold (a seeded tenth of
them, or ``--eval`` files with the held-out events' posts removed). Held-out figures are computed once,
after the model and threshold are fixed, on every post of the held-out events in ``--train`` and
``--eval`` (IDRISI's train and dev files of those events).

``lmr-trainer crossval --folds K`` instead rotates every event through the held-out side: events are
dealt into K folds (seeded), one model per fold is trained on the others, and the held-out counts of all
folds are pooled, so every event is scored by a model that never saw it.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any

from lmr.errors import DataError
from lmr.evaluation import evaluate_extractor
from lmr.readers import Example
from lmr.scoring import Counts

if TYPE_CHECKING:
    from lmr.model.extractor import Extractor

STANDARD_HELDOUT = (
    "ecuador_earthquake_2016",
    "greece_wildfires_2018",
    "hurricane_florence_2018",
    "srilanka_floods_2017",
)
STANDARD_HELDOUT_AR = ("cairo_bombing_2019", "hafr_albatin_floods_2019")


def heldout_names(events: Sequence[str], known: Collection[str] | None = None) -> list[str]:
    """``standard`` expands to :data:`STANDARD_HELDOUT` and :data:`STANDARD_HELDOUT_AR` (those in ``known``,
    when given); other names are kept (de-duplicated, in order)."""
    standard = [n for n in (*STANDARD_HELDOUT, *STANDARD_HELDOUT_AR) if known is None or n in known]
    out: list[str] = []
    for e in events:
        for name in standard if e == "standard" else (e,):
            if name not in out:
                out.append(name)
    return out


def split_heldout(
    train: list[Example], select: list[Example], events: Sequence[str]
) -> tuple[list[Example], list[Example], list[Example]]:
    """Remove the held-out events' posts from training and selection; return (train, select, held out)."""
    known = {e.event for e in (*train, *select)}
    wanted = set(heldout_names(events, known))
    if "standard" in events and not wanted & {*STANDARD_HELDOUT, *STANDARD_HELDOUT_AR}:
        raise DataError(
            "--heldout-events standard names no event of the data.",
            "train on IDRISI (idrisi:lmr/train, idrisi:ar/lmr/train) or name the events to hold out.",
        )
    if not wanted:
        return train, select, []
    missing = wanted - known
    if missing:
        raise DataError(
            f"--heldout-events names events not in the data: {', '.join(sorted(missing))}.",
            f"choose from: {', '.join(sorted(known))} (events are the data files' folder names).",
        )
    held = [e for e in (*train, *select) if e.event in wanted]
    kept_train = [e for e in train if e.event not in wanted]
    kept_select = [e for e in select if e.event not in wanted]
    if not kept_train:
        raise DataError("Every training post belongs to a held-out event.", "hold out fewer events.")
    return kept_train, kept_select, held


def score_heldout(
    extractor: Extractor, examples: list[Example], threshold: float, batch_size: int = 32
) -> dict[str, Any]:
    """Exact/overlap P/R/F1 per event and recall per type on held-out posts, at a threshold fixed beforehand."""
    res, _ = evaluate_extractor(extractor, examples, threshold=threshold, batch_size=batch_size)
    res["events"] = sorted({e.event for e in examples})
    return res


def event_folds(events: Sequence[str], folds: int, seed: int) -> list[list[str]]:
    """Deal the events (shuffled with ``seed``) into ``folds`` groups of near-equal size."""
    names = sorted(set(events))
    if not 2 <= folds <= len(names):
        raise DataError(f"--folds {folds} does not fit {len(names)} events.", f"use between 2 and {len(names)} folds.")
    random.Random(seed).shuffle(names)
    return [sorted(names[i::folds]) for i in range(folds)]


def pool(results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Micro-averaged exact P/R/F1 over the held-out results of several folds, with the per-event rows."""
    total = Counts()
    by_event: dict[str, Any] = {}
    for r in results:
        total.add(Counts(int(r["tp"]), int(r["n_pred"]), int(r["n_gold"])))
        by_event.update(r.get("by_group", {}))
    return {
        "precision": round(total.precision, 4),
        "recall": round(total.recall, 4),
        "f1": round(total.f1, 4),
        "n_gold": total.n_gold,
        "n_pred": total.n_pred,
        "by_event": dict(sorted(by_event.items())),
    }
