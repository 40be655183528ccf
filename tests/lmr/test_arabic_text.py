"""Arabic text: the readers' two offset spellings and type codes, word splitting, the matching form, the script."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lmr.errors import DataError
from lmr.language import SCRIPTS, match_form, script_of
from lmr.names import norm
from lmr.place_types import coarse_type
from lmr.readers import read_file
from lmr.words import split_words


def _write(path: Path, *records: dict[str, object]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def test_both_offset_spellings_read_the_same_spans_and_arabic_codes_map_to_coarse_types(tmp_path: Path) -> None:
    text = "استنفار حاليا بالكويت ورفع الحالة #سيول_الكويت"
    s = text.index("بالكويت")
    arabic = {"text": text, "location_mentions": [{"text": "بالكويت", "type": "CTRY", "startIdx": s, "endIdx": s + 7}]}
    english = {"text": text, "location_mentions": [{"text": "بالكويت", "type": "Country", "start_offset": s,
                                                    "end_offset": s + 7}]}  # fmt: skip
    (a,) = read_file(_write(tmp_path / "ar.jsonl", arabic), fine_types=True)
    (e,) = read_file(_write(tmp_path / "en.jsonl", english), fine_types=True)
    assert [(sp.start, sp.end, sp.text) for sp in a.spans] == [(sp.start, sp.end, sp.text) for sp in e.spans]
    assert coarse_type(a.spans[0].type) == coarse_type(e.spans[0].type) == "country"
    assert [coarse_type(c) for c in ("PROV", "DIST", "NBHD", "ST", "HPOI", "NPOI", "OTHR")] == [
        "admin", "admin", "city", "street", "poi", "natural", "other"]  # fmt: skip


def test_a_mention_without_offsets_names_both_spellings(tmp_path: Path) -> None:
    bad = {"text": "سيول الكويت", "location_mentions": [{"text": "الكويت", "type": "CTRY", "startIdx": "x"}]}
    with pytest.raises(DataError, match="startIdx/endIdx"):
        read_file(_write(tmp_path / "bad.jsonl", bad))


def test_arabic_hashtags_split_at_underscores_and_keep_offsets() -> None:
    text = "سيول #سيول_الكويت و#Kuwaitالكويت الكويـــت مُحافظة ٢٠١٨"
    words = split_words(text)
    assert [w.text for w in words] == ["سيول", "#", "سيول", "_", "الكويت", "و", "#", "Kuwait", "الكويت",
                                       "الكويـــت", "مُحافظة", "٢٠١٨"]  # fmt: skip
    assert all(text[w.start : w.end] == w.text for w in words)


def test_match_form_meets_spelling_variants_and_leaves_other_scripts_alone() -> None:
    for a, b in [("اَلْكُوَيْت", "الكويت"), ("الكويـــت", "الكويت"), ("أبوظبي", "ابوظبي"), ("إربد", "اربد"),
                 ("آل", "ال"), ("سلوى", "سلوي"), ("الفروانية", "الفروانيه")]:  # fmt: skip
        assert match_form(a) == match_form(b) == b
        assert norm(a) == norm(b)
    assert match_form("Kaikōura, N.C.") == "Kaikōura, N.C."


_ARABIC = st.text(st.characters(min_codepoint=0x0600, max_codepoint=0x06FF), max_size=30)


@settings(max_examples=200, deadline=None)
@given(st.one_of(_ARABIC, st.text(max_size=30), st.lists(st.sampled_from(["الكويت", "#", "_", " ", "Texas", "🌊"]))
       .map("".join)))  # fmt: skip
def test_match_form_is_idempotent_and_words_index_the_original(text: str) -> None:
    once = match_form(text)
    assert match_form(once) == once and len(once) <= len(text)
    assert not any(ch in once for ch in "\u0640\u064b\u064e\u0650\u0652أإآىة")
    assert script_of(text) in SCRIPTS
    for w in split_words(text):
        assert text[w.start : w.end] == w.text and not w.text.isspace()


def test_script_of_counts_letters_not_links() -> None:
    assert script_of("سيول في الكويت https://t.co/abcdefghij @someone_long_handle") == "arabic"
    assert script_of("Flooding in Houston #سيول") == "latin"
    assert script_of("大雨 東京") == "other"
    assert script_of("🌊 123 !!") == "none"
    assert unicodedata.category("\u064e") == "Mn"  # harakat are marks, never counted as letters


def test_mixed_references_train_both_languages_and_hold_out_a_whole_arabic_event(idrisi_dir: Path) -> None:
    from lmr.readers import read_examples
    from trainer.crossval import split_heldout

    train = read_examples(["idrisi:lmr/dev", "idrisi:ar/lmr/dev"])
    assert {script_of(e.text) for e in train} == {"latin", "arabic"}
    kept, _, held = split_heldout(train, [], ["kuwait_floods_2018"])
    assert held and {e.event for e in held} == {"kuwait_floods_2018"}
    assert all(script_of(e.text) == "arabic" for e in held)
    assert not any(e.event == "kuwait_floods_2018" for e in kept) and len(kept) + len(held) == len(train)
