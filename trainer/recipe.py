"""The recognition recipe's steps around training: types, held-out events, augmentation, extra metrics.

``lmr-trainer run`` calls :func:`shape_data` after reading and splitting the data and
:func:`extra_metrics` after the threshold is chosen; both are no-ops with the default settings
(no types, no held-out events, no augmentation).
"""

from __future__ import annotations

import logging
from typing import Any

from lmr.readers import Example
from trainer import augment, crossval, oversample, selftrain, typed_labels
from trainer.data import files_digest
from trainer.settings import TrainSettings

log = logging.getLogger("lmr.trainer")


def type_mode(s: TrainSettings) -> str:
    """``fine`` (``--fine-types``), ``coarse`` or ``none``."""
    return "fine" if s.fine_types else s.types


def shape_data(
    s: TrainSettings, train: list[Example], select: list[Example]
) -> tuple[list[Example], list[Example], list[Example], list[str], dict[str, Any]]:
    """Labels per ``--types``, held-out events removed, training posts augmented and oversampled.

    Returns (train, select, held out, labels, card data). Augmentation touches training posts only,
    after the held-out events are gone, so no held-out name is ever written into a training post.
    Self-training posts (``--unlabeled``, labelled by ``--teacher``) join the training posts last.
    """
    mode = type_mode(s)
    train, select = typed_labels.relabel(train, mode), typed_labels.relabel(select, mode)
    train, select, heldout = crossval.split_heldout(train, select, s.heldout_events)
    labels = typed_labels.labels_for(train, mode)
    info: dict[str, Any] = {"types": mode}
    held_names = crossval.heldout_names(s.heldout_events, {e.event for e in heldout})
    if heldout:
        info["heldout_events"] = held_names
        info["n_heldout_posts"] = len(heldout)
        log.info("Held out %d posts of events %s (never used for selection)", len(heldout), info["heldout_events"])
    if s.name_swap > 0 or s.case_noise > 0:
        train, report = augment.augment(train, name_swap=s.name_swap, case_noise=s.case_noise, seed=s.seed)
        info["augmentation"] = f"name swap {s.name_swap}, case noise {s.case_noise}: {report.summary()}"
        log.info("Augmentation: %s", report.summary())
    if s.oversample:
        train, per_script = oversample.oversample(train, oversample.parse(s.oversample))
        info["oversampling"] = {"times": ", ".join(s.oversample), "training_posts_by_script": per_script}
        log.info("Oversampling %s: training posts by script %s", ", ".join(s.oversample), per_script)
    if s.unlabeled and s.teacher:
        extra, pseudo = selftrain.self_training_posts(
            s.unlabeled,
            s.teacher,
            labels,
            [*select, *heldout],
            heldout=held_names,
            threshold=s.pseudo_threshold,
            batch_size=s.eval_batch_size,
            device=s.resolved_device(),
        )
        train = [*train, *extra]
        info["self_training"] = {**pseudo.to_dict(), "unlabeled_files": files_digest(s.unlabeled)}
    return train, select, heldout, labels, info


def extra_metrics(
    s: TrainSettings, extractor: Any, select: list[Example], heldout: list[Example], threshold: float
) -> dict[str, Any]:
    """Held-out-event figures and typed F1, at the threshold already chosen on the selection set."""
    out: dict[str, Any] = {}
    if heldout:
        out["heldout"] = crossval.score_heldout(extractor, heldout, threshold, s.eval_batch_size)
        log.info(
            "Held-out events %s: exact P %.4f R %.4f F1 %.4f",
            out["heldout"]["events"],
            out["heldout"]["precision"],
            out["heldout"]["recall"],
            out["heldout"]["f1"],
        )
    if type_mode(s) == "coarse":
        if select:
            out["typed"] = typed_labels.evaluate_typed(extractor, select, threshold, s.eval_batch_size)
        if heldout:
            out["heldout_typed"] = typed_labels.evaluate_typed(extractor, heldout, threshold, s.eval_batch_size)
    return out
