"""The model card: kept as data, filled by each step of a run, written as README.md (and card.json) on publish.

``prepare`` sets the base model, labels and data; training callbacks append every evaluation and the
steps and time; the final evaluation sets the metrics and threshold (as SpanMarker's ``CardData``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

INTENDED_USE = (
    "Recognising location mentions (countries, states, counties, cities, districts, streets, rivers, "
    "landmarks, abbreviations such as Tx or NYC, hashtags such as #Houston) in English social-media posts "
    "about disasters, as the first stage of lmr's streaming geoparser."
)
LIMITS = (
    "Trained on English disaster tweets; expect lower recall on other languages, other domains and "
    "disasters unlike those in the training data. Mentions are spans of text, not resolved places. "
    "Scores are not calibrated probabilities; the threshold was chosen on the evaluation set."
)
DATA_LICENSE = (
    "IDRISI (Suwaileh, Elsayed, Imran 2023) is licensed CC BY 4.0; models trained on it must credit the "
    "dataset. Other training data carries its own licence."
)


def _prf(r: dict[str, Any], key: str = "f1") -> str:
    return f"{r.get('precision', '')} | {r.get('recall', '')} | {r.get(key, '')}"


def cross_event_lines(m: dict[str, Any]) -> list[str]:
    """In-domain and held-out-event figures side by side, per held-out event and type; typed F1."""
    lines: list[str] = []
    held = m.get("heldout")
    if m and not held:
        lines += [
            "",
            "Held-out-event F1: not measured on this model (every event trained). The same recipe run with "
            "`--heldout-events standard` reports it (docs/recognition.md).",
        ]
    if held:
        lines += [
            "",
            "### In-domain vs held-out events",
            "Held-out events were used for neither training, checkpoint choice nor threshold choice.",
            "",
            "| set | precision | recall | exact F1 | posts |",
            "| --- | --- | --- | --- | --- |",
            f"| in-domain dev (selection set) | {_prf(m)} | {m.get('n_posts', '')} |",
            f"| held-out events ({', '.join(held.get('events', []))}) | {_prf(held)} | {held.get('n_posts', '')} |",
            "",
            "| held-out event | precision | recall | exact F1 | gold |",
            "| --- | --- | --- | --- | --- |",
            *(f"| {e} | {_prf(v)} | {v['n_gold']} |" for e, v in held.get("by_group", {}).items()),
            "",
            "| type (held-out events) | recall | n |",
            "| --- | --- | --- |",
            *(f"| {t} | {v['recall']} | {v['n']} |" for t, v in held.get("recall_by_type", {}).items()),
        ]
    for key, title in (("typed", "in-domain dev"), ("heldout_typed", "held-out events")):
        t = m.get(key)
        if t:
            lines += [
                "",
                f"### Typed F1 ({title})",
                f"Typed exact F1 **{t['typed_f1']}** (offsets and type must match); untyped {t['untyped_f1']}.",
                "",
                "| type | precision | recall | F1 | gold |",
                "| --- | --- | --- | --- | --- |",
                *(f"| {lab} | {_prf(v)} | {v['n']} |" for lab, v in t.get("by_label", {}).items()),
            ]
    return lines


@dataclass
class ModelCard:
    name: str
    base_model: str = ""
    labels: list[str] = field(default_factory=list)
    threshold: float = 0.5
    case_markers: bool = False
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    inference: dict[str, Any] = field(default_factory=dict)
    evaluations: list[dict[str, Any]] = field(default_factory=list)  # one row per evaluation during training
    intended_use: str = INTENDED_USE
    limits: str = LIMITS
    data_license: str = DATA_LICENSE

    def to_markdown(self) -> str:
        m = self.metrics
        lines = [
            "---",
            "library_name: gliner",
            "pipeline_tag: token-classification",
            "language: en",
            "tags: [location-mention-recognition, crisis-informatics, lmr]",
            "---",
            f"# {self.name}",
            "",
            f"Location mention recognition model published by lmr. Base: `{self.base_model}`.",
            "",
            "## Intended use",
            self.intended_use,
            "",
            "## Evaluation",
        ]
        if m:
            lines += [
                "| metric | value |",
                "| --- | --- |",
                *(
                    f"| {k} | {m[k]} |"
                    for k in ("precision", "recall", "f1", "overlap_f1", "wer", "n_posts", "n_gold", "n_pred")
                    if k in m
                ),
                "",
                f"Threshold (chosen on the evaluation set): **{self.threshold}**.",
            ]
            if m.get("recall_by_type"):
                lines += ["", "Recall by location type:", "", "| type | recall | n |", "| --- | --- | --- |"]
                lines += [f"| {t} | {v['recall']} | {v['n']} |" for t, v in m["recall_by_type"].items()]
        else:
            lines.append(f"No evaluation set was given. Threshold: {self.threshold}.")
        lines += cross_event_lines(m)
        lines += [
            "",
            "## Labels and inference settings",
            f"Labels: {', '.join(self.labels)}. Case markers: {'on' if self.case_markers else 'off'}.",
            *(f"- {k}: {v}" for k, v in self.inference.items()),
            "",
            "## Training data",
            *(
                f"- `{f['path']}` ({f['bytes']} bytes, sha256 `{f['sha256'][:16]}…`)"
                for f in self.data.get("train_files", [])
            ),
            *(f"- {k}: {v}" for k, v in self.data.items() if k not in ("train_files", "eval_files", "self_training")),
            *self_training_lines(self.data.get("self_training")),
            "",
            "## Hyperparameters",
            "```json",
            json.dumps(self.hyperparameters, indent=2),
            "```",
            "",
            "## Training",
            *(f"- {k}: {v}" for k, v in self.training.items() if k != "span_prior"),
            *span_prior_lines(self.training.get("span_prior")),
            *self._evaluations_table(),
            "",
            "## Limits",
            self.limits,
            "",
            "## Data licence",
            self.data_license,
            "",
        ]
        return "\n".join(lines)

    def _evaluations_table(self) -> list[str]:
        if not self.evaluations:
            return []
        cols = list(dict.fromkeys(k for row in self.evaluations for k in row))
        return [
            "",
            "Evaluations during training (on the evaluation set):",
            "",
            "| " + " | ".join(cols) + " |",
            "| " + " | ".join("---" for _ in cols) + " |",
            *("| " + " | ".join(str(row.get(c, "")) for c in cols) + " |" for row in self.evaluations),
        ]

    def save(self, directory: Path) -> None:
        (directory / "README.md").write_text(self.to_markdown(), encoding="utf-8")
        (directory / "card.json").write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")


def self_training_lines(st: dict[str, Any] | None) -> list[str]:
    """The card's lines on self-training (``--unlabeled``/``--teacher``), or none."""
    if not st:
        return []
    files = ", ".join(f"`{f['path']}`" for f in st.get("unlabeled_files", []))
    return [
        f"- self-training: {st['posts']} unlabeled posts labelled by `{st['teacher']}` at threshold "
        f"{st['threshold']} ({st['mentions']} mentions in {st['posts_with_mentions']} posts; "
        f"{st['dropped_duplicates']} repeats of selection or held-out posts dropped), from {files}",
    ]


def span_prior_lines(sp: dict[str, Any] | None) -> list[str]:
    """The card's lines on the span prior (``--span-prior``), or none."""
    if not sp:
        return []
    weights = ", ".join(f"{f} {w:+.3f}" for f, w in zip(sp["features"], sp["weights"], strict=True))
    return [
        f"- span prior (gazetteer, {sp['lexicon_names']:,} place-name keys; fitted on the selection set): selection "
        f"F1 {sp['selection_f1']} at threshold {sp['threshold']}, the model alone {sp['selection_f1_without']} at "
        f"{sp['threshold_without']}; weights {weights}, bias {sp['bias']:+.3f}",
    ]
