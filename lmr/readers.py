"""Readers for labelled posts, auto-detected, all producing :class:`Example`.

Formats:

* IDRISI JSONL: ``text`` + ``location_mentions`` with ``start_offset``/``end_offset`` (the Arabic files:
  ``startIdx``/``endIdx``, and short type codes such as ``CITY``, see :data:`IDRISI_AR_TYPES`);
* GLiNER JSON/JSONL (the seed's format): ``tokenized_text`` or ``tokens`` + ``ner`` =
  ``[[start_token, end_token, label], ...]`` (end inclusive), optional ``label``;
* CoNLL-style columns: one token per line, the tag (BIO/BIOES/BILOU) in the last column,
  blank lines between posts.

A path may be a file, a directory (searched recursively), a glob, or a short IDRISI reference such as
``idrisi:lmr/train`` (see :mod:`lmr.datasets`).
"""

from __future__ import annotations

import glob
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lmr.datasets import is_reference, resolve_reference
from lmr.errors import DataError
from lmr.posts import post_id

DEFAULT_LABEL = "location"

IDRISI_TYPES = (
    "Country",
    "State",
    "County",
    "City/town",
    "District",
    "Neighborhood",
    "Road/street",
    "Island",
    "Continent",
    "Natural Point-of-Interest",
    "Human-made Point-of-Interest",
    "Other locations",
)
#: The Arabic files' short type codes (their coarse types: :data:`lmr.place_types.COARSE_OF`).
IDRISI_AR_TYPES = ("CTRY", "PROV", "CITY", "DIST", "NBHD", "ST", "HPOI", "NPOI", "OTHR")
#: The spellings of a mention's offsets, ``(start, end)`` keys: IDRISI's English files, then its Arabic ones.
OFFSET_KEYS = (("start_offset", "end_offset"), ("startIdx", "endIdx"))


@dataclass(frozen=True)
class Span:
    """A gold or predicted mention: character offsets ``[start, end)`` into the post."""

    start: int
    end: int
    label: str = DEFAULT_LABEL
    type: str = ""  # fine type from the source (e.g. IDRISI "City/town"), kept for per-type recall
    text: str = ""


@dataclass
class Example:
    """One post with its gold spans."""

    text: str
    spans: list[Span]
    id: str = ""
    source: str = ""  # file the post came from
    event: str = ""  # IDRISI event (parent directory name) or ""
    created_at: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files named by ``paths``: files, directories (recursive), globs or ``idrisi:`` references; de-duplicated."""
    out: list[Path] = []
    for ref in paths:
        raw = resolve_reference(ref) if is_reference(ref) else ref
        p = Path(raw)
        if p.is_dir():
            out.extend(
                sorted(
                    q
                    for q in p.rglob("*")
                    if q.is_file() and q.suffix in (".jsonl", ".json", ".conll", ".txt", ".bio", ".tsv")
                )
            )
        elif p.is_file():
            out.append(p)
        else:
            matches = sorted(Path(m) for m in glob.glob(str(raw), recursive=True))
            if not matches:
                where = f"{ref!s} ({raw})" if raw != ref else f"{ref!s}"
                raise DataError(f"No data file matches {where}.", "pass an existing file, directory or glob.")
            out.extend(m for m in matches if m.is_file())
    seen: set[Path] = set()
    return [p for p in out if not (p in seen or seen.add(p))]  # type: ignore[func-returns-value]


def event_of(path: Path) -> str:
    """The IDRISI event of a data file: IDRISI keeps one folder per event (``lmr/<event>/train.jsonl``)."""
    return path.parent.name


def _utf16_to_cp(text: str, unit: int) -> int:
    pos = 0
    for i, ch in enumerate(text):
        if pos >= unit:
            return i
        pos += 2 if ord(ch) > 0xFFFF else 1
    return len(text)


def _repair_offsets(text: str, s: int, e: int, mention: Any) -> tuple[int, int]:
    """Offsets as code points; some sources count UTF-16 units (astral emoji count twice)."""
    if not isinstance(mention, str) or not mention or (e <= len(text) and text[s:e] == mention):
        return s, e
    cs, ce = _utf16_to_cp(text, s), _utf16_to_cp(text, e)
    if text[cs:ce] == mention:
        return cs, ce
    hits = [m.start() for m in re.finditer(re.escape(mention), text)]
    if hits:
        best = min(hits, key=lambda h: abs(h - s))
        return best, best + len(mention)
    return s, e


def mention_offsets(mention: Any) -> tuple[int, int]:
    """A mention's ``(start, end)`` under either spelling of :data:`OFFSET_KEYS`; ``ValueError`` when it has none."""
    if isinstance(mention, dict):
        for start_key, end_key in OFFSET_KEYS:
            if start_key in mention and end_key in mention:
                try:
                    return int(mention[start_key]), int(mention[end_key])
                except (TypeError, ValueError, OverflowError) as exc:
                    raise ValueError(f"{start_key}/{end_key} are not integers") from exc
    raise ValueError("no start_offset/end_offset (or startIdx/endIdx)")


def mention_span(text: str, mention: Any) -> tuple[int, int]:
    """A mention's offsets in ``text`` as code points: :func:`mention_offsets`, repaired where the source counted
    UTF-16 units (the mention's ``text`` is found one character off after an astral emoji)."""
    s, e = mention_offsets(mention)
    return _repair_offsets(text, s, e, mention.get("text"))


def _from_idrisi(obj: dict[str, Any], path: Path, line: int, fine_types: bool) -> Example:
    text = obj.get("text", obj.get("full_text"))
    if not isinstance(text, str):
        raise DataError(f"{path}:{line}: 'text' is missing or not a string.", "give every post a string 'text' field.")
    spans = []
    for m in obj.get("location_mentions") or []:
        try:
            s, e = mention_span(text, m)
        except ValueError as exc:
            raise DataError(
                f"{path}:{line}: a mention lacks integer offsets ({exc}).",
                "give each mention start_offset/end_offset (or startIdx/endIdx).",
            ) from exc
        if not 0 <= s < e <= len(text):
            raise DataError(
                f"{path}:{line}: mention offsets [{s}:{e}] fall outside the text.", "fix the mention offsets."
            )
        typ = str(m.get("type", ""))
        spans.append(Span(s, e, typ if fine_types and typ else DEFAULT_LABEL, typ, text[s:e]))
    pid = post_id(obj) or f"{path.name}:{line}"
    return Example(text, spans, pid, str(path), event_of(path), str(obj.get("created_at", "")), {})


def _from_gliner(obj: dict[str, Any], path: Path, line: int, fine_types: bool) -> Example:
    tokens = obj.get("tokenized_text", obj.get("tokens"))
    if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
        raise DataError(f"{path}:{line}: 'tokens' must be a list of strings.", "fix the GLiNER example.")
    text_parts: list[str] = []
    offsets: list[tuple[int, int]] = []
    pos = 0
    for t in tokens:
        if text_parts:
            text_parts.append(" ")
            pos += 1
        offsets.append((pos, pos + len(t)))
        text_parts.append(t)
        pos += len(t)
    text = "".join(text_parts)
    spans = []
    for item in obj.get("ner") or []:
        if len(item) < 2:
            raise DataError(f"{path}:{line}: a 'ner' entry must be [start, end, label].", "fix the GLiNER example.")
        s, e = int(item[0]), int(item[1])
        if not 0 <= s <= e < len(tokens):
            raise DataError(f"{path}:{line}: 'ner' token span [{s}, {e}] is outside the tokens.", "fix the span.")
        label = str(item[2]) if len(item) > 2 else str(obj.get("label", DEFAULT_LABEL))
        cs, ce = offsets[s][0], offsets[e][1]
        spans.append(Span(cs, ce, label if fine_types else DEFAULT_LABEL, label, text[cs:ce]))
    pid = post_id(obj) or f"{path.name}:{line}"
    return Example(text, spans, pid, str(path), event_of(path), "", {})


def json_records(path: Path) -> Iterable[tuple[int, Any]]:
    """(line, record) of a JSON array or JSONL file (blank lines skipped), in file order."""
    try:
        raw = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} is not UTF-8 (byte {exc.start}).", "re-encode the file as UTF-8.") from exc
    stripped = raw.lstrip()
    if stripped.startswith("["):
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}.", "fix the JSON syntax.") from exc
        yield from enumerate(data, 1)
        return
    for i, line in enumerate(raw.splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield i, json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"{path}:{i}: invalid JSON: {exc.msg}.", "fix or remove that line (JSONL: one object per line)."
            ) from exc


def _read_json(path: Path, fine_types: bool) -> list[Example]:
    out = []
    for line, obj in json_records(path):
        if not isinstance(obj, dict):
            raise DataError(f"{path}:{line}: expected a JSON object per post.", "write one object per line.")
        if "tokenized_text" in obj or "tokens" in obj:
            out.append(_from_gliner(obj, path, line, fine_types))
        elif "text" in obj or "full_text" in obj:
            out.append(_from_idrisi(obj, path, line, fine_types))
        else:
            raise DataError(
                f"{path}:{line}: unknown record shape (keys: {', '.join(sorted(obj)[:8])}).",
                "use IDRISI ('text' + 'location_mentions') or GLiNER ('tokens' + 'ner') records.",
            )
    return out


def _read_conll(path: Path, fine_types: bool) -> list[Example]:
    out: list[Example] = []
    tokens: list[str] = []
    tags: list[str] = []

    def flush() -> None:
        if not tokens:
            return
        ner: list[list[Any]] = []
        start: int | None = None
        label = ""
        for i, tag in enumerate([*tags, "O"]):
            prefix, _, lab = tag.partition("-")
            prefix = prefix.upper()
            if start is not None and (prefix in ("O", "B", "S", "U") or (prefix in ("I", "E", "L") and lab != label)):
                ner.append([start, i - 1, label])
                start = None
            if prefix in ("B", "S", "U") or (prefix in ("I", "E", "L") and start is None):
                start, label = i, lab or DEFAULT_LABEL
            if prefix in ("E", "L", "S", "U") and start is not None:
                ner.append([start, i, label])
                start = None
        obj = {"tokens": list(tokens), "ner": ner, "id": f"{path.name}:{len(out) + 1}"}
        out.append(_from_gliner(obj, path, len(out) + 1, fine_types))
        tokens.clear()
        tags.clear()

    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} is not UTF-8.", "re-encode the file as UTF-8.") from exc
    for n, line in enumerate(lines, 1):
        if not line.strip() or line.startswith("-DOCSTART-"):
            flush()
            continue
        cols = line.split()
        if len(cols) < 2:
            raise DataError(f"{path}:{n}: expected 'token ... tag' columns.", "separate token and tag by whitespace.")
        tokens.append(cols[0])
        tags.append(cols[-1])
    flush()
    return out


def is_json_file(path: Path) -> bool:
    """Whether :func:`read_file` reads ``path`` as JSON/JSONL (else as CoNLL columns)."""
    if path.suffix in (".conll", ".bio", ".tsv", ".txt"):
        return False
    return path.read_bytes()[:2048].lstrip()[:1] in (b"{", b"[")


def read_file(path: Path, fine_types: bool = False) -> list[Example]:
    """Read one file, detecting its format from its content."""
    return _read_json(path, fine_types) if is_json_file(path) else _read_conll(path, fine_types)


def read_examples(paths: Sequence[str | Path], fine_types: bool = False) -> list[Example]:
    """Read every file named by ``paths`` (files, directories, globs)."""
    files = expand_paths(paths)
    if not files:
        raise DataError(f"No data files found in {', '.join(map(str, paths))}.", "pass .jsonl/.json/.conll files.")
    out: list[Example] = []
    for f in files:
        out.extend(read_file(f, fine_types))
    return out
