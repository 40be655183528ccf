"""Self-training: unlabeled posts, labelled by a teacher model, join the training posts.

``lmr-trainer run --unlabeled FILES --teacher MODEL`` runs ``MODEL`` (a published model, a GLiNER
directory or a hub id) over the posts of ``FILES`` (IDRISI or GLiNER records; any gold spans in them
are ignored) and adds each post, with the teacher's mentions at ``--pseudo-threshold`` (default: the
teacher's own threshold) as its spans, to the training posts. Posts with no mention are kept too:
they teach the model where there is none.

Two rules keep the figures honest:

* A post whose core text (:func:`lmr.model.text_cache.core_span`: without ``RT @user:`` prefixes and
  trailing links) equals a selection or held-out post's is dropped, so no text that chooses the
  checkpoint or the threshold, or that is scored as held out, is trained on, labelled or not.
* The teacher must not have seen the held-out events. A published teacher's card names its training
  files and held-out events; a teacher that trained on a held-out event is refused
  (:func:`check_blind`). ``crossval`` refuses a teacher altogether: one teacher cannot be blind to
  every fold.

Unlabeled posts of a held-out event stay: they stand for the live stream of a new disaster, which an
operator refreshing the model on that stream has, without labels.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lmr.errors import ConfigError
from lmr.model.text_cache import core_span
from lmr.readers import Example, Span, event_of, read_examples

log = logging.getLogger("lmr.trainer")


@dataclass
class PseudoReport:
    """What self-training added, for the log and the model card."""

    teacher: str
    threshold: float
    posts: int = 0
    with_mentions: int = 0
    mentions: int = 0
    dropped_duplicates: int = 0
    by_event: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "teacher": self.teacher,
            "threshold": self.threshold,
            "posts": self.posts,
            "posts_with_mentions": self.with_mentions,
            "mentions": self.mentions,
            "dropped_duplicates": self.dropped_duplicates,
            "posts_by_event": dict(sorted(self.by_event.items())),
        }


def _core(text: str) -> str:
    s, e = core_span(text)
    return " ".join(text[s:e].lower().split())


def distinct_posts(posts: Sequence[Example], avoid: Sequence[Example]) -> tuple[list[Example], int]:
    """``posts`` without those whose core text repeats a post of ``avoid`` or an earlier post; and how many went."""
    seen = {_core(e.text) for e in avoid}
    out = []
    for p in posts:
        key = _core(p.text)
        if not key or key in seen:
            continue
        seen.add(key)
        out.append(p)
    return out, len(posts) - len(out)


def label_map(teacher_labels: Sequence[str], labels: Sequence[str]) -> dict[str, str]:
    """Teacher label -> student label: the same labels, or any teacher label onto a single student label."""
    if set(teacher_labels) <= set(labels):
        return {t: t for t in teacher_labels}
    if len(labels) == 1:
        return {t: labels[0] for t in teacher_labels}
    raise ConfigError(
        f"The teacher's labels {list(teacher_labels)} do not fit the student's {list(labels)}.",
        "use a teacher trained with the same --types, or train an untyped student.",
    )


def pseudo_label(
    teacher: Any,
    posts: Sequence[Example],
    labels: Sequence[str],
    threshold: float | None = None,
    batch_size: int = 32,
) -> tuple[list[Example], PseudoReport]:
    """``posts`` with the ``teacher`` extractor's mentions as their spans (student labels)."""
    thr = float(teacher.spec.threshold if threshold is None else threshold)
    mapping = label_map(teacher.spec.labels, labels)
    found = teacher.predict([p.text for p in posts], threshold=thr, batch_size=batch_size)
    report = PseudoReport(teacher=teacher.model_id, threshold=thr)
    out = []
    for post, mentions in zip(posts, found, strict=True):
        spans = [Span(m.start, m.end, mapping[m.label], text=m.text) for m in mentions]
        out.append(Example(post.text, spans, post.id, post.source, post.event, post.created_at, {"pseudo": True}))
        report.posts += 1
        report.with_mentions += bool(spans)
        report.mentions += len(spans)
        group = post.event or post.source
        report.by_event[group] = report.by_event.get(group, 0) + 1
    return out, report


def seen_events(card: dict[str, Any]) -> set[str]:
    """IDRISI events (data folder names) a published model trained or selected on, from its ``card.json``."""
    data = card.get("data") or {}
    files = [*(data.get("train_files") or []), *(data.get("eval_files") or [])]
    return {event_of(Path(f["path"])) for f in files if "path" in f} - set(data.get("heldout_events") or [])


def check_blind(teacher_path: str, heldout: Sequence[str]) -> None:
    """Refuse a teacher whose card shows it trained on a held-out event; warn where no card tells."""
    if not heldout:
        return
    card_file = Path(teacher_path) / "card.json"
    if not card_file.is_file():
        log.warning("Self-training: the teacher has no card.json; cannot check it never saw %s.", list(heldout))
        return
    seen = seen_events(json.loads(card_file.read_text(encoding="utf-8"))) & set(heldout)
    if seen:
        raise ConfigError(
            f"The teacher trained on held-out events: {', '.join(sorted(seen))}; its labels would leak them.",
            "use a teacher trained with the same --heldout-events (or on other events only).",
        )


def self_training_posts(
    paths: Sequence[str],
    teacher_ref: str,
    labels: Sequence[str],
    avoid: Sequence[Example],
    *,
    heldout: Sequence[str] = (),
    threshold: float | None = None,
    batch_size: int = 32,
    device: str = "cpu",
) -> tuple[list[Example], PseudoReport]:
    """Read the unlabeled posts, drop repeats of ``avoid`` (selection, held-out posts), label them by the teacher."""
    from lmr.model import registry
    from lmr.model.extractor import load_extractor

    check_blind(registry.resolve(teacher_ref).path, heldout)  # before the teacher's weights are read
    posts, dropped = distinct_posts(read_examples(list(paths)), avoid)
    teacher = load_extractor(teacher_ref, runtime="fused", map_location=device)
    out, report = pseudo_label(teacher, posts, labels, threshold, batch_size)
    report.dropped_duplicates = dropped
    log.info(
        "Self-training: %d unlabeled posts labelled by %s at %.2f (%d mentions in %d posts); %d repeats of "
        "selection/held-out posts dropped",
        report.posts,
        report.teacher,
        report.threshold,
        report.mentions,
        report.with_mentions,
        dropped,
    )
    return out, report
