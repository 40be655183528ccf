"""lmr.readers: IDRISI, GLiNER JSON and CoNLL files, directories and globs, bad input named."""

import json
from pathlib import Path

import pytest

from lmr.errors import DataError
from lmr.readers import read_examples


def write(p: Path, lines: list[object]) -> Path:
    p.write_text("\n".join(json.dumps(x) for x in lines) + "\n", encoding="utf-8")
    return p


def test_idrisi_reader_maps_types_to_location(tmp_path: Path) -> None:
    text = "Flooding in Houston, Texas"
    f = write(
        tmp_path / "a.jsonl",
        [
            {
                "tweet_id": "7",
                "text": text,
                "location_mentions": [{"text": "Houston", "type": "City/town", "start_offset": 12, "end_offset": 19}],
            }
        ],
    )
    [ex] = read_examples([f])
    assert ex.id == "7" and ex.spans[0].label == "location" and ex.spans[0].type == "City/town"
    assert text[ex.spans[0].start : ex.spans[0].end] == "Houston"
    [fine] = read_examples([f], fine_types=True)
    assert fine.spans[0].label == "City/town"


def test_idrisi_utf16_offsets_are_repaired(tmp_path: Path) -> None:
    text = "Pray 🙏 for Texas"
    # UTF-16 offsets: the emoji counts as two units, so Texas is at 12..17 there, 11..16 in code points
    f = write(
        tmp_path / "a.jsonl",
        [
            {
                "text": text,
                "location_mentions": [{"text": "Texas", "type": "State", "start_offset": 12, "end_offset": 17}],
            }
        ],
    )
    [ex] = read_examples([f])
    assert text[ex.spans[0].start : ex.spans[0].end] == "Texas"


def test_seed_gliner_format(tmp_path: Path) -> None:
    f = tmp_path / "seed.json"
    f.write_text(
        json.dumps(
            [{"tokens": ["Rain", "in", "New", "York", "City"], "ner": [[2, 4, "location"]], "label": ["location"]}]
        )
    )
    [ex] = read_examples([f])
    assert ex.text == "Rain in New York City"
    assert ex.text[ex.spans[0].start : ex.spans[0].end] == "New York City"


def test_conll_bio_and_bilou(tmp_path: Path) -> None:
    f = tmp_path / "x.conll"
    f.write_text("Rain O\nin O\nNew B-LOC\nYork I-LOC\n\nTx U-LOC\nfloods O\nSan B-LOC\nMarcos L-LOC\n")
    a, b = read_examples([f])
    assert [a.text[s.start : s.end] for s in a.spans] == ["New York"]
    assert [b.text[s.start : s.end] for s in b.spans] == ["Tx", "San Marcos"]


def test_directory_and_glob(tmp_path: Path) -> None:
    (tmp_path / "ev1").mkdir()
    (tmp_path / "ev2").mkdir()
    write(tmp_path / "ev1" / "train.jsonl", [{"text": "a", "location_mentions": []}])
    write(tmp_path / "ev2" / "train.jsonl", [{"text": "b", "location_mentions": []}])
    assert len(read_examples([tmp_path])) == 2
    exs = read_examples([str(tmp_path / "*" / "train.jsonl")])
    assert {e.event for e in exs} == {"ev1", "ev2"}


def test_bad_inputs_name_the_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok", "location_mentions": []}\n{"text": \n')
    with pytest.raises(DataError, match=r"bad.jsonl:2: invalid JSON"):
        read_examples([bad])
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes('{"text": "Medell\xedn"}\n'.encode("latin-1"))
    with pytest.raises(DataError, match="not UTF-8"):
        read_examples([latin])
    with pytest.raises(DataError, match="No data file matches"):
        read_examples([str(tmp_path / "nope*.jsonl")])
    out = write(tmp_path / "o.jsonl", [{"text": "abc", "location_mentions": [{"start_offset": 2, "end_offset": 9}]}])
    with pytest.raises(DataError, match="outside the text"):
        read_examples([out])
