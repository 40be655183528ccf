"""``lmr-worker run --geocoder-memory``: names annotators placed come out at their place (file mode, tiny real model,
real offline gazetteer); a missing or broken memory file stops the worker with a clear error before it reads."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from geocode.memory import PlaceMemory, learn
from geocode.results import Candidate
from tests.conftest import tiny_idrisi_records
from worker.cli import main
from worker.settings import WorkerSettings

HOUSTON_MO = (37.3262, -91.9557)  # a made-up annotators' Houston: Missouri, 700 km from the gazetteer's


def _memory(path: Path) -> Path:
    place = Candidate("Houston", *HOUSTON_MO, "city", "city", "US", "Missouri", None, 0, 0.5, None, "Houston, MO")
    learn([("Houston", place), ("#Houston", place)]).save(path)
    return path


def _run(tiny_model: Path, tmp_path: Path, *extra: str) -> tuple[int, str, list[dict[str, object]]]:
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in tiny_idrisi_records()) + "\n", encoding="utf-8")
    args = ["run", "--model", str(tiny_model), "--source", f"file:{src}", "--sink", f"file:{out}"]
    res = CliRunner().invoke(main, [*args, "--geocoder", "offline", "--threshold", "0.05", *extra])
    events = [json.loads(x) for x in out.read_text().splitlines()] if out.exists() else []
    return res.exit_code, res.output, events


def test_remembered_names_come_out_at_the_memory_place(tiny_model: Path, tmp_path: Path) -> None:
    code, output, events = _run(tiny_model, tmp_path, "--geocoder-memory", str(_memory(tmp_path / "places.json")))
    assert code == 0, output
    assert len(events) == len(tiny_idrisi_records())
    geos = [(loc["text"], loc["geo"]) for ev in events for loc in ev["locations"]]  # type: ignore[attr-defined]
    houston = [g for text, g in geos if text == "Houston"]
    assert houston, f"the tiny model finds Houston at 0.05; it said {[t for t, _ in geos]}"
    for g in houston:
        assert g["resolved"] and g["backend"] == "memory" and (g["lat"], g["lon"]) == HOUSTON_MO
    named = {"Texas", "Florida", "Ecuador", "Guayaquil", "Beaumont", "Redding", "Victoria"}
    others = [g for text, g in geos if text in named and g and g["resolved"]]
    assert others and {g["backend"] for g in others} == {"offline"}, "names not remembered: the gazetteer's"


def test_a_missing_or_broken_memory_file_is_a_clear_error(tiny_model: Path, tmp_path: Path) -> None:
    missing = tmp_path / "missing.json"
    code, output, events = _run(tiny_model, tmp_path, "--geocoder-memory", str(missing))
    assert code != 0 and f"Cannot read the place memory {missing}" in output and not events
    broken = tmp_path / "broken.json"
    broken.write_text('{"format": "lmr-place-memory/1", "min_support": 2, "places": [{"text": "x"}]}')
    code, output, events = _run(tiny_model, tmp_path, "--geocoder-memory", str(broken))
    assert code != 0 and str(broken) in output and "lmr-geocode learn" in output and not events
    assert output.count("Fix:") == 1, output


def test_the_memory_setting_reaches_the_resolver(tmp_path: Path, tiny_model: Path) -> None:
    path = _memory(tmp_path / "places.json")
    s = WorkerSettings.from_params({"model": str(tiny_model), "geocoder": "offline", "geocoder_memory": str(path)})
    assert s.geocoder_memory == str(path) and WorkerSettings(model=str(tiny_model)).geocoder_memory is None
    from worker.resolve import build_geo_stage

    stage = build_geo_stage(s.geocoder, memory=s.geocoder_memory)
    assert stage.stats()["memory_places"] == len(PlaceMemory.load(path)) == 1
