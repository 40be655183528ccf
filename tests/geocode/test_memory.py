"""The place memory (geocode/memory.py): learned from annotated posts, saved, loaded, and answered by the resolver.

* :func:`learn`'s rule by hand: a name is kept where a strict majority of its annotations, at least
  ``min_support``, agree within 161 km; spellings with one lookup key share an entry;
* the memory file: a round trip keeps every field, every bad file is a ConfigError naming it;
* arbitrary annotated lines and arbitrary memory files (hypothesis): a clean error or a usable result;
* the real offline gazetteer with a memory: remembered names answered from it, others as before;
* ``lmr-geocode learn`` / ``evaluate --memory`` and ``lmr-trainer evaluate --geocoder-memory`` (CliRunner).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geocode import Resolution, build_resolver
from geocode.cli import main
from geocode.geo import ACC_KM, haversine_km
from geocode.memory import FORMAT, MIN_SUPPORT, PlaceMemory, Remembered, learn, learn_files, placed_mentions
from geocode.resolver import Resolver
from geocode.results import Candidate
from lmr.errors import ConfigError, DataError
from lmr.mentions import Mention
from tests.conftest import TINY_POSTS

PARIS_TX = (33.6609, -95.5555)  # Paris, Texas: the gazetteer's Paris is the French one
HOUSTON_MO = (37.3262, -91.9557)  # Houston, Missouri: the gazetteer's Houston is the Texan one


def _place(lat: float, lon: float, name: str = "x") -> Candidate:
    return Candidate(name, lat, lon, "city", "city", "US", "Texas", None, 0, 0.5, None, f"{name}, Texas", 1.0)


def _osm(lat: float | str, lon: float | str, name: str = "x", cc: str = "us") -> dict[str, Any]:
    return {"lat": str(lat), "lon": str(lon), "name": name, "addresstype": "city", "address": {"country_code": cc}}


def _post(text: str, *mentions: tuple[str, dict[str, Any] | None], pid: str = "1") -> dict[str, Any]:
    ms = []
    for word, osm in mentions:
        s = text.index(word)
        m: dict[str, Any] = {"text": word, "type": "City/town", "start_offset": s, "end_offset": s + len(word)}
        if osm is not None:
            m["osm_json"] = osm
        ms.append(m)
    return {"tweet_id": pid, "text": text, "location_mentions": ms}


def _write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def _km(c: Candidate | None, point: tuple[float, float]) -> float:
    assert c is not None
    return haversine_km(c.lat, c.lon, *point)


# ------------------------------------------------------------------ learning: the majority rule


def test_the_place_most_annotations_agree_on_is_kept() -> None:
    near = [_place(PARIS_TX[0] + d, PARIS_TX[1] - d) for d in (0.0, 0.1, 0.2)]  # within a few km of each other
    memory = learn([("Paris", c) for c in near] + [("Paris", _place(48.86, 2.35))])
    assert len(memory) == 1 and _km(memory.lookup("Paris"), PARIS_TX) < 30
    (r,) = memory
    assert (r.support, r.seen, r.text) == (3, 4, "Paris")


def test_a_tie_or_a_plurality_without_majority_is_not_kept() -> None:
    tie = learn([("Paris", _place(*PARIS_TX)), ("Paris", _place(48.86, 2.35))])
    assert len(tie) == 0 and tie.lookup("Paris") is None
    assert len(learn([("Paris", _place(*PARIS_TX)), ("Paris", _place(48.86, 2.35))], min_support=1)) == 0
    scattered = [_place(*PARIS_TX), _place(PARIS_TX[0] + 0.1, PARIS_TX[1]), _place(48.86, 2.35)]
    scattered += [_place(-33.9, 151.2), _place(35.7, 139.7)]  # two agree out of five: most, but not a majority
    for min_support in (1, 2):
        assert learn([("Paris", c) for c in scattered], min_support=min_support).lookup("Paris") is None
    assert learn([("Paris", c) for c in scattered[:4]], min_support=1).lookup("Paris") is None  # 2 of 4: a tie


def test_min_support_decides_on_singletons() -> None:
    pairs = [("Luling", _place(29.68, -97.65)), ("Victoria", _place(28.8, -97.0)), ("Victoria", _place(28.81, -97.0))]
    assert MIN_SUPPORT == 2
    default = learn(pairs)
    assert default.lookup("Luling") is None and _km(default.lookup("Victoria"), (28.8, -97.0)) < 5
    loose = learn(pairs, min_support=1)
    assert len(loose) == 2 and _km(loose.lookup("Luling"), (29.68, -97.65)) < 1
    with pytest.raises(ConfigError, match="pass 1 or more"):
        learn(pairs, min_support=0)
    with pytest.raises(ConfigError):
        PlaceMemory([], min_support=-1)


def test_spellings_with_one_key_share_an_entry() -> None:
    memory = learn([("St. Louis", _place(38.63, -90.2)), ("ST LOUIS", _place(38.64, -90.2)), ("#", _place(0, 0))])
    assert len(memory) == 1, "the two spellings add up to support 2; a name with an empty key is dropped"
    (r,) = memory
    assert (r.support, r.seen, r.text) == (2, 2, "St. Louis")
    for spelling in ("st louis", "St Louis", "ST. LOUIS"):
        assert _km(memory.lookup(spelling), (38.63, -90.2)) < 5
    assert memory.lookup("Louis") is None and memory.lookup("") is None


def test_learning_from_files_skips_mentions_without_a_usable_point(tmp_path: Path) -> None:
    """No osm_json, no lat/lon, an empty one, or fields no resolver can read (a NaN importance, a list as state)."""
    text = "Flooding in Paris and Houston, Texas"
    rows = [
        _post(text, ("Paris", _osm(*PARIS_TX, "Paris")), ("Houston", None), ("Texas", {"display_name": "Texas"})),
        _post(text, ("Paris", _osm(*PARIS_TX, "Paris")), ("Houston", _osm("", ""))),
        _post(text, ("Houston", {"lat": "29.76"}), ("Texas", _osm(31.0, -100.0, "Texas")), pid="3"),
        _post(text, ("Houston", {**_osm(29.76, -95.37), "importance": "nan"}), pid="3b"),
        _post(text, ("Houston", {**_osm(29.76, -95.37), "address": {"state": ["Texas"]}}), pid="3c"),
        {"tweet_id": "4", "text": "no mentions at all", "location_mentions": []},
        {"tweet_id": "5", "text": "mentions null", "location_mentions": None},
    ]
    f = _write(tmp_path / "lmd" / "storm" / "train.jsonl", rows)
    f.write_text(f.read_text(encoding="utf-8") + "\n   \n", encoding="utf-8")  # blank lines are skipped
    pairs = list(placed_mentions(f))
    assert [t for t, _ in pairs] == ["Paris", "Paris", "Texas"]
    assert pairs[0][1].country_code == "US" and pairs[0][1].name == "Paris"
    memory = learn_files([f])
    assert [r.text for r in memory] == ["Paris"] and memory.sources == ("storm/train.jsonl",)
    assert memory.lookup("Houston") is None


def test_a_mention_is_learned_under_the_name_its_post_gives_it(tmp_path: Path) -> None:
    """IDRISI counts some offsets in UTF-16 units: after an astral emoji the span is one character off, and the
    name must still be the mention's (not ``cuador`` for ``Ecuador``)."""
    text = "\U0001f30a\U0001f30a Earthquake in Ecuador, help"
    s = text.index("Ecuador") + 2  # two astral emoji before it: two UTF-16 units more
    m = {"text": "Ecuador", "type": "Country", "start_offset": s, "end_offset": s + 7, "osm_json": _osm(-1.3, -78.5)}
    f = _write(tmp_path / "lmd" / "quake" / "train.jsonl", [{"tweet_id": "1", "text": text, "location_mentions": [m]}])
    assert [t for t, _ in placed_mentions(f)] == ["Ecuador"]


def test_an_analysts_own_points_are_learned_as_end_to_end_gold_takes_them(tmp_path: Path) -> None:
    """Mentions with their own lat/lon (and optional kind, country_code, display_name): no Nominatim needed."""
    text = "Water at Camp Zamzam and at the Field Hospital"

    def own(word: str, **point: Any) -> dict[str, Any]:
        s = text.index(word)
        return {"text": word, "start_offset": s, "end_offset": s + len(word), **point}

    pins = [
        own("Camp Zamzam", lat=13.48, lon=25.30, kind="city", country_code="sd", display_name="Zamzam camp"),
        own("Field Hospital", lat="13.6", lon="25.35", kind="hospital"),  # a kind lmr has no level for
        own("Field Hospital", lat=None, lon=25.35),  # no point: skipped
    ]
    f = _write(tmp_path / "pins.jsonl", [{"text": text, "location_mentions": pins}] * 2)
    memory = learn_files([f])
    camp, hospital = memory.lookup("camp zamzam"), memory.lookup("Field Hospital")
    assert camp is not None and (camp.kind, camp.country_code, camp.display_name) == ("city", "SD", "Zamzam camp")
    assert hospital is not None and hospital.kind == "poi" and hospital.display_name == "Field Hospital"
    assert _km(hospital, (13.6, 25.35)) < 1


def test_files_without_placed_mentions_or_in_another_shape_are_data_errors(tmp_path: Path) -> None:
    unplaced = _write(tmp_path / "lmr" / "storm" / "train.jsonl", [_post("Rain in Paris", ("Paris", None))])
    with pytest.raises(DataError, match="no placed mention") as exc:
        learn_files([unplaced])
    assert exc.value.fix is not None and "lmd" in exc.value.fix
    with pytest.raises(DataError, match="does not exist"):
        list(placed_mentions(tmp_path / "nope.jsonl"))
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(_post("Rain in Paris", ("Paris", _osm(*PARIS_TX)))) + "\n{oops\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad\.jsonl:2: invalid JSON") as exc:
        list(placed_mentions(bad))
    assert exc.value.fix
    placed = {"text": "Paris", "start_offset": 0, "end_offset": 5, "osm_json": _osm(*PARIS_TX)}
    for n, shape in enumerate([
        [1, 2],
        {"text": ["Paris"], "location_mentions": [placed]},
        {"text": "Paris", "location_mentions": [5]},
        {"text": "Paris", "location_mentions": [{**placed, "start_offset": "one"}]},
        {"text": "Paris", "location_mentions": [{**placed, "end_offset": float("inf")}]},
        {"text": "Paris", "location_mentions": [{**placed, "osm_json": {**_osm(1, 2), "place_rank": float("inf")}}]},
    ]):  # fmt: skip
        wrong = tmp_path / f"shape{n}.jsonl"
        wrong.write_text(json.dumps(_post("Rain in Paris", ("Paris", _osm(*PARIS_TX)))) + "\n" + json.dumps(shape))
        with pytest.raises(DataError, match=rf"shape{n}\.jsonl:2 is not an annotated post") as exc:
            list(placed_mentions(wrong))
        assert exc.value.fix is not None and "osm_json" in exc.value.fix
    latin1 = tmp_path / "latin1.jsonl"
    latin1.write_bytes(json.dumps(_post("Rain in Paris", ("Paris", _osm(*PARIS_TX)))).encode() + b"\n\xe9\xff\n")
    with pytest.raises(DataError, match="UTF-8"):
        list(placed_mentions(latin1))


# ------------------------------------------------------------------ the memory file


def test_save_and_load_keep_every_field(tmp_path: Path) -> None:
    box = (33.6, -95.6, 33.7, -95.5)
    paris = Candidate("Paris", *PARIS_TX, "city", "town", "US", "Texas", "Lamar County", 25000, 0.61, box,
                      "Paris, Lamar County, Texas, United States", 1.0)  # fmt: skip
    arabic = Candidate("القصر العيني", 30.03, 31.23, "poi", "hospital", "EG", None, None, 0, 0.3, None, "", 1.0)
    memory = PlaceMemory([Remembered("Paris", paris, 3, 4), Remembered("القصر العيني", arabic, 2, 2)],
                         min_support=2, sources=["storm/train.jsonl", "ar/train.jsonl"])  # fmt: skip
    path = tmp_path / "places.json"
    memory.save(path)
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["format"] == FORMAT == "lmr-place-memory/1"
    assert "القصر" in path.read_text(encoding="utf-8"), "names are written as they are, not escaped"
    back = PlaceMemory.load(path)
    assert back.min_support == 2 and back.sources == memory.sources
    assert sorted(back, key=lambda r: r.text) == sorted(memory, key=lambda r: r.text)
    assert back.lookup("paris") == paris and back.lookup("القصر العيني") == arabic
    with pytest.raises(ConfigError, match="writable"):
        memory.save(tmp_path / "no-such-dir" / "places.json")


def _memory_doc(**change: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"format": FORMAT, "min_support": 2, "sources": []}
    doc["places"] = [Remembered("Paris", _place(*PARIS_TX), 2, 2).to_dict()]
    return doc | change


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (None, "Cannot read"),
        ("{not json", "Cannot read"),
        (b"\xff\xfe\x00", "Cannot read"),
        ([1, 2], "is not a place memory"),
        ({"places": []}, "is not a place memory"),
        ({"format": "lmr-place-memory/0", "min_support": 2, "places": []}, "is not a place memory"),
        ({"format": FORMAT, "min_support": 2}, "bad entry"),
        ({"format": FORMAT, "places": []}, "bad entry"),
        (_memory_doc(places=[{"text": "Paris"}]), "bad entry"),
        (_memory_doc(places=[{"text": "Paris", "support": 2, "seen": 2, "place": {"lat": 1}}]), "bad entry"),
        (_memory_doc(places=[{**_memory_doc()["places"][0], "support": "two"}]), "bad entry"),
        (_memory_doc(places=[{**_memory_doc()["places"][0], "place": {**_place(1, 2).to_dict(), "lat": "north"}}]),
         "bad entry"),
        (_memory_doc(places=[{**_memory_doc()["places"][0], "place": {**_place(1, 2).to_dict(), "lat": 91.0}}]),
         "bad entry"),
        (_memory_doc(min_support=0), "bad entry"),
        (_memory_doc(min_support=float("inf")), "bad entry"),
        (_memory_doc(sources=["a.jsonl", 1]), "bad entry"),
        (_memory_doc(sources="a.jsonl"), "bad entry"),
        (_memory_doc(places={"Paris": {}}), "bad entry"),
        (_memory_doc(places=[{**_memory_doc()["places"][0], "support": float("inf")}]), "bad entry"),
        (_memory_doc(places=[{**_memory_doc()["places"][0], "seen": -1}]), "bad entry"),
        (_memory_doc(places=[{**_memory_doc()["places"][0], "text": None}]), "bad entry"),
        (_memory_doc(places=[{**_memory_doc()["places"][0], "place": {**_place(1, 2).to_dict(), "bbox": [1, 2]}}]),
         "bad entry"),
        (_memory_doc(places=[{**_memory_doc()["places"][0], "place": {**_place(1, 2).to_dict(), "name": 7}}]),
         "bad entry"),
        (_memory_doc(places=[{**_memory_doc()["places"][0], "place": {**_place(1, 2).to_dict(), "extra": 1}}]),
         "bad entry"),
    ],
)  # fmt: skip
def test_a_bad_memory_file_is_a_config_error_naming_it(tmp_path: Path, content: Any, said: str) -> None:
    path = tmp_path / "places.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    elif content is not None:
        path.write_text(json.dumps(content), encoding="utf-8")
    with pytest.raises(ConfigError, match=said) as exc:
        PlaceMemory.load(path)
    assert str(path) in exc.value.problem and exc.value.fix


# ------------------------------------------------------------------ the outside world (hypothesis)

_KEYS = st.sampled_from(
    ["text", "location_mentions", "osm_json", "lat", "lon", "start_offset", "end_offset", "startIdx", "endIdx",
     "address", "country_code", "addresstype", "place_rank", "boundingbox", "importance", "name", "display_name",
     "format", "min_support", "sources", "places", "place", "support", "seen", "kind", "feature_type", "bbox"]
)  # fmt: skip
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(_KEYS | st.text(max_size=3), kids, max_size=6),
    max_leaves=20,
)


def _mention_like() -> st.SearchStrategy[dict[str, Any]]:
    osm = st.fixed_dictionaries(
        {"lat": _json, "lon": _json},
        optional={"address": _json, "place_rank": _json, "boundingbox": _json, "addresstype": _json},
    )
    offset = st.integers(-3, 40) | _json
    return st.fixed_dictionaries(
        {"text": st.text(max_size=8) | _json, "start_offset": offset, "end_offset": offset},
        optional={"osm_json": osm | _json},
    )


_rows = st.one_of(
    _json,
    st.fixed_dictionaries({"text": st.text(max_size=20) | _json, "location_mentions": st.lists(_mention_like())}),
)
_lines = st.lists(st.one_of(_rows.map(lambda r: json.dumps(r)), st.text(max_size=30)), max_size=5)


@given(_lines)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_annotated_file_gives_placed_names_or_a_data_error(tmp_path: Path, lines: list[str]) -> None:
    path = tmp_path / "any.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    try:
        pairs = list(placed_mentions(path))
    except DataError as exc:
        assert str(path) in exc.problem and exc.fix
        return
    for text, place in pairs:
        assert isinstance(text, str) and isinstance(place, Candidate)
        assert -90 <= place.lat <= 90 and -180 <= place.lon <= 180, "only points on the Earth are learned"
    memory = learn(pairs, min_support=1)
    for r in memory:
        assert memory.lookup(r.text) == r.place and 2 * r.support > r.seen >= r.support >= 1
    memory.save(tmp_path / "any.json")
    assert list(PlaceMemory.load(tmp_path / "any.json")) == sorted(memory, key=lambda r: (-r.support, r.text))


_coordinate = st.one_of(
    st.floats(), st.integers(-400, 400), st.floats(-200, 200).map(str), st.sampled_from(["nan", "-inf", "1e999", ""])
)


def _on_earth(lat: Any, lon: Any) -> bool:
    try:
        y, x = float(lat), float(lon)
    except ValueError:
        return False
    return -90 <= y <= 90 and -180 <= x <= 180


@given(st.lists(st.tuples(_coordinate, _coordinate), min_size=1, max_size=6))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_only_annotated_points_on_the_earth_are_learned(tmp_path: Path, points: list[tuple[Any, Any]]) -> None:
    """An annotator's osm_json may hold any number (NaN, 1e999, 400): a point off the Earth is no place."""
    text = "Flooding in Paris"
    rows = [_post(text, ("Paris", {"lat": lat, "lon": lon}), pid=str(i)) for i, (lat, lon) in enumerate(points)]
    path = _write(tmp_path / "any.jsonl", rows)
    pairs = list(placed_mentions(path))
    expected = [(float(lat), float(lon)) for lat, lon in points if _on_earth(lat, lon)]
    assert [(c.lat, c.lon) for _, c in pairs] == expected
    assert all(t == "Paris" for t, _ in pairs)


@given(_json)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_memory_file_loads_as_a_memory_or_a_config_error(tmp_path: Path, doc: Any) -> None:
    if isinstance(doc, dict) and "format" not in doc and doc.get("places") is not None:
        doc["format"] = FORMAT  # reach the entries more often
    path = tmp_path / "any.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    try:
        memory = PlaceMemory.load(path)
    except ConfigError as exc:
        assert exc.fix
        return
    assert memory.min_support >= 1 and all(isinstance(s, str) for s in memory.sources)
    for r in memory:
        c = memory.lookup(r.text)
        assert c is not None and math.isfinite(c.lat) and math.isfinite(c.lon)
        assert -90 <= c.lat <= 90 and -180 <= c.lon <= 180


def _degrees(limit: int) -> st.SearchStrategy[float]:
    return st.integers(-limit * 10_000, limit * 10_000).map(lambda n: n / 10_000)  # four decimals, as the medoid rounds


@given(st.lists(st.tuples(st.sampled_from(["Paris", "paris", "Houston", "St. Louis"]),
                          _degrees(89), _degrees(179)), max_size=12),
       st.integers(1, 4))  # fmt: skip
@settings(max_examples=200, deadline=None)
def test_a_kept_place_is_an_annotated_one_with_its_support_around_it(
    rows: list[tuple[str, float, float]], min_support: int
) -> None:
    pairs = [(name, _place(lat, lon)) for name, lat, lon in rows]
    memory = learn(pairs, min_support=min_support)
    for r in memory:
        same = [c for t, c in pairs if t.lower() == r.text.lower()]
        assert r.place in same and r.seen == len(same)
        around = sum(haversine_km(c.lat, c.lon, r.place.lat, r.place.lon) <= ACC_KM for c in same)
        assert r.support == around >= min_support and 2 * r.support > r.seen


# ------------------------------------------------------------------ the resolver with the real gazetteer


@pytest.fixture(scope="module")
def memory() -> PlaceMemory:
    paris = [("Paris", _place(*PARIS_TX, "Paris")), ("PARIS", _place(PARIS_TX[0] + 0.01, PARIS_TX[1], "Paris"))]
    return learn(paris)


def _mentions(post: str, *texts: str) -> list[Mention]:
    return [Mention(t, post.index(t), post.index(t) + len(t), 0.9) for t in texts]


def test_a_remembered_name_is_answered_from_memory_and_others_from_the_gazetteer(memory: PlaceMemory) -> None:
    plain = build_resolver("offline")
    with_memory = build_resolver("offline", memory=memory)
    post = "Storm damage in Paris, people shelter in Houston"
    before = plain.resolve(_mentions(post, "Paris"), post)[0]
    assert isinstance(before, Resolution) and before.country_code == "FR" and before.backend == "offline"
    assert "memory_places" not in plain.stats()

    paris, houston = with_memory.resolve(_mentions(post, "Paris", "Houston"), post)
    assert isinstance(paris, Resolution) and isinstance(houston, Resolution)
    assert paris.backend == "memory" and (paris.lat, paris.lon) == PARIS_TX
    assert (paris.start, paris.end, paris.text, paris.country_code) == (16, 21, "Paris", "US")
    assert houston.backend == "offline" and houston.admin1 == "Texas"
    s = with_memory.stats()
    assert (s["memory_places"], s["memory_answers"], s["resolved"]) == (1, 1, 2)

    (ranked_paris, ranked_houston) = with_memory.rank(_mentions(post, "Paris", "Houston"), post, k=3)
    assert [(r.backend, r.lat, r.lon) for r in ranked_paris] == [("memory", *PARIS_TX)], "the only candidate"
    assert ranked_houston and {r.backend for r in ranked_houston} == {"offline"}
    assert with_memory.stats()["memory_answers"] == 1, "rank() is no answer"


def test_a_memory_file_path_builds_the_same_resolver(memory: PlaceMemory, tmp_path: Path) -> None:
    path = tmp_path / "places.json"
    memory.save(path)
    r: Resolver = build_resolver("offline", memory=str(path))
    assert r.memory is not None and len(r.memory) == 1
    post = "Tornado warning for paris tonight"
    (res,) = r.resolve(_mentions(post, "paris"), post)
    assert isinstance(res, Resolution) and res.backend == "memory" and res.country_code == "US"
    with pytest.raises(ConfigError, match="place memory"):
        build_resolver("offline", memory=tmp_path / "missing.json")


# ------------------------------------------------------------------ the command line


def _lmd(tmp_path: Path) -> tuple[Path, Path]:
    """Annotations placing Paris in Texas twice (train) and a dev file where the gazetteer's Paris is wrong."""
    train = _write(tmp_path / "lmd" / "storm" / "train.jsonl", [
        _post("Storm in Paris overnight", ("Paris", _osm(*PARIS_TX, "Paris")), pid="1"),
        _post("Shelters open in Paris", ("Paris", _osm(PARIS_TX[0], PARIS_TX[1] + 0.02, "Paris")), pid="2"),
        _post("Flooding across Texas", ("Texas", _osm(31.26, -98.54, "Texas")), pid="3"),
    ])  # fmt: skip
    dev = _write(tmp_path / "lmd" / "storm" / "dev.jsonl", [
        _post("Roads closed in Paris", ("Paris", _osm(*PARIS_TX, "Paris")), pid="4"),
        _post("Rescue boats in Houston", ("Houston", _osm(29.76, -95.37, "Houston")), pid="5"),
    ])  # fmt: skip
    return train, dev


def test_learn_writes_a_memory_that_evaluate_uses(tmp_path: Path) -> None:
    train, dev = _lmd(tmp_path)
    out = tmp_path / "places.json"
    runner = CliRunner()
    res = runner.invoke(main, ["learn", str(train), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert f"place memory: {out} (1 name from 1 file)" in res.output  # Texas, annotated once, is not kept
    memory = PlaceMemory.load(out)
    assert _km(memory.lookup("Paris"), PARIS_TX) < 5 and memory.lookup("Texas") is None
    res = runner.invoke(main, ["learn", str(train), "--out", str(tmp_path / "all.json"), "--min-support", "1"])
    assert res.exit_code == 0 and "(2 names from 1 file)" in res.output

    scores = {}
    for name, extra in (("plain", []), ("memory", ["--memory", str(out)])):
        result = tmp_path / f"{name}.json"
        res = runner.invoke(main, ["evaluate", str(dev), "--json", "--result", str(result), *extra])
        assert res.exit_code == 0, res.output
        scores[name] = json.loads(res.stdout)
        scores[name]["row"] = json.loads(result.read_text(encoding="utf-8"))["rows"][0]["name"]
    assert scores["plain"]["n"] == scores["memory"]["n"] == 2
    assert scores["memory"]["acc_161"] > scores["plain"]["acc_161"]
    assert scores["memory"]["acc_161"] == 1.0, "Paris from the memory, Houston from the gazetteer: both right"
    assert scores["memory"]["settings"]["memory"] == str(out) and "memory places.json" in scores["memory"]["row"]
    assert "memory" not in scores["plain"]["row"]


def test_learn_and_memory_flags_refuse_bad_input(tmp_path: Path) -> None:
    runner = CliRunner()
    help_text = runner.invoke(main, ["learn", "--help"])
    assert help_text.exit_code == 0 and "--min-support" in help_text.output and "Example" in help_text.output
    train, dev = _lmd(tmp_path)
    res = runner.invoke(main, ["learn", str(train), "--out", str(tmp_path / "m.json"), "--min-support", "0"])
    assert res.exit_code != 0 and "--min-support" in res.output
    unplaced = _write(tmp_path / "lmr.jsonl", [_post("Rain in Paris", ("Paris", None))])
    res = runner.invoke(main, ["learn", str(unplaced), "--out", str(tmp_path / "m.json")])
    assert res.exit_code != 0 and "no placed mention" in res.output and not (tmp_path / "m.json").exists()
    missing = tmp_path / "missing.json"
    res = runner.invoke(main, ["evaluate", str(dev), "--memory", str(missing)])
    assert res.exit_code != 0 and f"Cannot read the place memory {missing}" in res.output
    res = runner.invoke(main, ["resolve", "Storm in Paris", "-m", "Paris", "--memory", str(dev), "--json"])
    assert res.exit_code != 0 and "place memory" in res.output and str(dev) in res.output


def test_resolve_answers_from_a_memory(tmp_path: Path) -> None:
    train, _ = _lmd(tmp_path)
    out = tmp_path / "places.json"
    learn_files([train]).save(out)
    res = CliRunner().invoke(main, ["resolve", "Storm in Paris", "-m", "Paris", "--memory", str(out), "--json"])
    assert res.exit_code == 0, res.output
    row = json.loads(res.output.splitlines()[0])
    assert row["backend"] == "memory" and haversine_km(row["lat"], row["lon"], *PARIS_TX) < 5


# ------------------------------------------------------------------ lmr-trainer evaluate --geocoder-memory


def test_trainer_evaluate_places_remembered_names_end_to_end(tiny_model: Path, tmp_path: Path) -> None:
    """The tiny model finds Houston in the first post at 0.05; its annotators placed it in Missouri (a made-up
    annotation): the gazetteer's Houston is a miss, the memory's is found."""
    from trainer.cli import main as trainer

    text = TINY_POSTS[0][0]
    gold = _write(tmp_path / "idrisi" / "lmd" / "tiny_event" / "dev.jsonl",
                  [_post(text, ("Houston", _osm(*HOUSTON_MO, "Houston")), pid="0")])  # fmt: skip
    train = _write(tmp_path / "train" / "lmd" / "old_event" / "train.jsonl",
                   [_post(text, ("Houston", _osm(*HOUSTON_MO, "Houston")), pid=str(i)) for i in range(2)])  # fmt: skip
    memory = tmp_path / "places.json"
    learn_files([train]).save(memory)
    args = ["evaluate", str(tiny_model), str(gold), "--threshold", "0.05", "--geocoder", "offline", "--json"]
    e2e = {}
    for name, extra in (("plain", []), ("memory", ["--geocoder-memory", str(memory)])):
        res = CliRunner().invoke(trainer, [*args, *extra])
        assert res.exit_code == 0, res.output
        e2e[name] = json.loads(res.stdout.splitlines()[-1])["end_to_end"]
    assert e2e["memory"]["recall"] == 1.0 > e2e["plain"]["recall"]
    missing = tmp_path / "missing.json"
    res = CliRunner().invoke(trainer, [*args, "--geocoder-memory", str(missing)])
    assert res.exit_code != 0 and f"Cannot read the place memory {missing}" in res.output
