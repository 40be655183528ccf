"""lmr.datasets: where IDRISI is looked for, and its download against a real HTTP server on 127.0.0.1.

The server serves a small fake upstream tree (IDRISI's layout, made-up posts); it can corrupt a file or cut the
connection halfway through one. The real network is never used.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lmr import datasets
from lmr.datasets import Manifest, RemoteFile, find_idrisi, idrisi_dir, places, resolve_reference
from lmr.errors import DataError, DatasetNotFoundError
from lmr.readers import expand_paths, read_examples
from tests.conftest import tiny_idrisi_records

UPSTREAM = {  # local path -> upstream path, as in lmr/idrisi.json
    "lmr/flood_2020/train.jsonl": "LMR/data/EN/gold-random-json/flood_2020/train.jsonl",
    "lmr/flood_2020/dev.jsonl": "LMR/data/EN/gold-random-json/flood_2020/dev.jsonl",
    "lmr/quake_2021/train.jsonl": "LMR/data/EN/gold-random-json/quake_2021/train.jsonl",
    "ar/lmr/sayl_2018/train.jsonl": "LMR/data/AR/gold-random-json/sayl_2018/train.jsonl",
    "lmd/flood_2020/dev.jsonl": "LMD/data/EN/flood_2020/dev.jsonl",
}
ARABIC_POST = {  # the Arabic files' spelling: startIdx/endIdx and short type codes
    "tweet_id": "2000",
    "text": "استنفار حاليا بالكويت #سيول_الكويت",
    "location_mentions": [{"text": "بالكويت", "type": "CTRY", "startIdx": 14, "endIdx": 21}],
}


def _tree() -> dict[str, bytes]:
    recs = tiny_idrisi_records()
    lines = [(json.dumps(r) + "\n").encode() for r in recs]
    arabic = (json.dumps(ARABIC_POST, ensure_ascii=False) + "\n").encode()
    bodies = [b"".join(lines[:4]), b"".join(lines[4:6]), b"".join(lines[6:]) * 200, arabic, b"".join(lines[:2])]
    return {src: body for src, body in zip(UPSTREAM.values(), bodies, strict=True)}


class Upstream(ThreadingHTTPServer):
    """Serves ``files`` under ``/<commit>/``; ``corrupt`` paths get other bytes, ``cut`` paths stop halfway."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files = _tree()
        self.corrupt: set[str] = set()
        self.cut: set[str] = set()
        self.requests: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/abc123/"


class _Handler(BaseHTTPRequestHandler):
    server: Upstream

    def do_GET(self) -> None:
        srv = self.server
        path = self.path.removeprefix("/abc123/")
        srv.requests.append(path)
        body = srv.files.get(path)
        if body is None:
            self.send_error(404)
            return
        if path in srv.corrupt:
            body = body.replace(b"Houston", b"Hooston")
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if path in srv.cut:
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)  # the connection drops mid-file
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def upstream() -> Iterator[Upstream]:
    srv = Upstream()
    th = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    th.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()


def _manifest(tree: dict[str, bytes]) -> Manifest:
    files = tuple(
        RemoteFile(path=local, source=src, size=len(tree[src]), sha256=hashlib.sha256(tree[src]).hexdigest())
        for local, src in UPSTREAM.items()
    )
    return Manifest("https://example.invalid/IDRISI", "abc123", "https://example.invalid/{commit}/",
                    "CC BY 4.0 (test)", "Suwaileh, Elsayed, Imran (test)", files)  # fmt: skip


@pytest.fixture()
def home(tmp_path: Path) -> dict[str, str]:
    """An environment with nothing in any of the three places: a bare clone, an empty cache."""
    (tmp_path / "clone").mkdir()
    return {"XDG_CACHE_HOME": str(tmp_path / "cache")}


def _fetch(env: dict[str, str], tmp_path: Path, srv: Upstream) -> Path:
    return idrisi_dir(environ=env, repo=tmp_path / "clone", base_url=srv.url, manifest=_manifest(_tree()),
                      progress=False)  # fmt: skip


def test_download_lays_out_the_readers_tree_and_credits_the_authors(
    upstream: Upstream, home: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _fetch(home, tmp_path, upstream)
    assert root == tmp_path / "cache" / "lmr" / "idrisi"
    tree = _tree()
    for local, src in UPSTREAM.items():
        assert (root / local).read_bytes() == tree[src]
    assert not (root.parent / "idrisi.partial").exists() and not list(root.rglob("*.part"))
    err = capsys.readouterr().err
    assert "CC BY 4.0 (test)" in err and "Suwaileh, Elsayed, Imran (test)" in err
    assert "CC BY 4.0 (test)" in (root / "README.md").read_text()
    train = read_examples([resolve_reference("idrisi:lmr/train", root)])
    assert {e.event for e in train} == {"flood_2020", "quake_2021"}
    (arabic,) = read_examples([resolve_reference("idrisi:ar/lmr/train", root)], fine_types=True)
    assert arabic.event == "sayl_2018" and [(s.text, s.type) for s in arabic.spans] == [("بالكويت", "CTRY")]
    n = len(upstream.requests)
    assert _fetch(home, tmp_path, upstream) == root and len(upstream.requests) == n  # found in the cache


def test_two_downloads_at_once_fetch_each_file_once_and_both_find_the_data(
    upstream: Upstream, home: dict[str, str], tmp_path: Path
) -> None:
    results: list[Path | BaseException] = []

    def one() -> None:
        try:
            results.append(_fetch(home, tmp_path, upstream))
        except BaseException as exc:  # reported below
            results.append(exc)

    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    root = tmp_path / "cache" / "lmr" / "idrisi"
    assert results == [root, root]
    assert sorted(upstream.requests) == sorted(UPSTREAM.values()), "the second waited and found the data"


def test_corrupted_file_is_rejected_and_the_rest_kept_for_the_next_run(
    upstream: Upstream, home: dict[str, str], tmp_path: Path
) -> None:
    bad = UPSTREAM["lmd/flood_2020/dev.jsonl"]  # the last one: the others arrive first
    upstream.corrupt.add(bad)
    with pytest.raises(DatasetNotFoundError, match="sha256") as info:
        _fetch(home, tmp_path, upstream)
    assert bad in str(info.value) and "LMR_IDRISI_DIR" in str(info.value)
    cache = tmp_path / "cache" / "lmr"
    assert find_idrisi(home, tmp_path / "clone") is None and not (cache / "idrisi").exists()
    assert not (cache / "idrisi.partial" / "lmd" / "flood_2020" / "dev.jsonl").exists()
    upstream.corrupt.clear()
    upstream.requests.clear()
    assert _fetch(home, tmp_path, upstream) == cache / "idrisi"
    assert upstream.requests == [bad]  # the files already verified are not fetched again


def test_connection_cut_halfway_leaves_nothing_that_looks_complete(
    upstream: Upstream, home: dict[str, str], tmp_path: Path
) -> None:
    upstream.cut.add(UPSTREAM["lmr/quake_2021/train.jsonl"])
    with pytest.raises(DatasetNotFoundError, match="downloading it failed") as info:
        _fetch(home, tmp_path, upstream)
    assert "quake_2021/train.jsonl" in str(info.value)
    cache = tmp_path / "cache" / "lmr"
    assert find_idrisi(home, tmp_path / "clone") is None
    assert not list(cache.rglob("*.part")) and not list(cache.rglob("quake_2021/*.jsonl"))
    upstream.cut.clear()
    assert holds(_fetch(home, tmp_path, upstream))


def holds(root: Path) -> bool:
    return all((root / p).is_file() for p in UPSTREAM)


@pytest.mark.parametrize(
    ("setting", "allowed"),
    [({"LMR_OFFLINE": "1"}, False), ({"HF_HUB_OFFLINE": "1"}, False), ({"LMR_OFFLINE": "true"}, False),
     ({"HF_HUB_OFFLINE": "1", "LMR_OFFLINE": "0"}, True), ({}, True)],
)  # fmt: skip
def test_offline_forbids_the_download_and_names_the_three_places(
    upstream: Upstream, home: dict[str, str], tmp_path: Path, setting: dict[str, str], allowed: bool
) -> None:
    env = {**home, **setting}
    if allowed:
        assert holds(_fetch(env, tmp_path, upstream))
        return
    with pytest.raises(DatasetNotFoundError) as info:
        _fetch(env, tmp_path, upstream)
    msg = str(info.value)
    assert upstream.requests == []
    assert "$LMR_IDRISI_DIR: unset" in msg
    assert str(tmp_path / "shared" / "data" / "idrisi") in msg and str(tmp_path / "cache" / "lmr" / "idrisi") in msg
    assert "forbidden" in msg and "Fix:" in msg


def test_unreachable_server_fails_with_what_to_do(home: dict[str, str], tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/"
    env = {**home, "LMR_IDRISI_URL": url}
    with pytest.raises(DatasetNotFoundError, match="downloading it failed") as info:
        idrisi_dir(environ=env, repo=tmp_path / "clone", manifest=_manifest(_tree()), progress=False)
    assert "network" in str(info.value) and "LMR_IDRISI_DIR" in str(info.value)
    assert not (tmp_path / "cache" / "lmr" / "idrisi.partial").exists()  # nothing verified, nothing left behind


def test_places_are_searched_in_order(tmp_path: Path) -> None:
    env_dir, clone = tmp_path / "mine", tmp_path / "work" / "clone"
    shared = tmp_path / "work" / "shared" / "data" / "idrisi"
    cache = tmp_path / "xdg" / "lmr" / "idrisi"
    clone.mkdir(parents=True)
    env = {"LMR_IDRISI_DIR": str(env_dir), "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    assert [p for _, p in places(env, clone)] == [env_dir, shared, cache]
    assert find_idrisi(env, clone) is None
    for d in (cache, shared, env_dir):
        (d / "lmr").mkdir(parents=True)
        assert find_idrisi(env, clone) == d  # each one found beats the ones after it
    assert places({"LMR_CACHE_DIR": str(tmp_path / "c")}, clone)[2][1] == tmp_path / "c" / "idrisi"


def test_references_resolve_through_the_readers(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for local, body in zip(UPSTREAM, _tree().values(), strict=True):
        (tmp_path / local).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / local).write_bytes(body)
    monkeypatch.setenv("LMR_IDRISI_DIR", str(tmp_path))
    assert expand_paths(["idrisi:lmr/train"]) == sorted(tmp_path.glob("lmr/*/train.jsonl"))
    assert expand_paths(["idrisi:lmr/quake_2021/train"]) == [tmp_path / "lmr" / "quake_2021" / "train.jsonl"]
    assert expand_paths(["idrisi:lmd/dev"]) == [tmp_path / "lmd" / "flood_2020" / "dev.jsonl"]
    with pytest.raises(DataError, match="No data file matches idrisi:lmr/test_unlabeled"):
        expand_paths(["idrisi:lmr/test_unlabeled"])


_PARTS = st.tuples(
    st.sampled_from(["lmr", "lmd", "ar/lmr", "ar/lmd", "AR/lmr", "ar", "LMR", "", ".."]),
    st.one_of(st.none(), st.sampled_from(["flood_2020", "*", "..", ""]), st.text(max_size=12)),
    st.sampled_from(["train", "dev", "test_unlabeled", "test", "train.jsonl"]),
).map(lambda p: "/".join(x for x in p if x is not None))


@settings(max_examples=150, deadline=None)
@given(st.one_of(st.text(max_size=40), _PARTS))
def test_any_reference_is_a_glob_under_idrisi_or_a_clear_error(body: str) -> None:
    root = Path("/idrisi")
    try:
        glob = resolve_reference("idrisi:" + body, root)
    except DataError as exc:
        assert "idrisi:lmr/train" in str(exc)  # the fix lists the valid references
        return
    arabic = body.startswith("ar/")
    task, *event, split = body.removeprefix("ar/").split("/")
    folder = root / "ar" if arabic else root
    assert Path(glob) == folder / task / (event[0] if event else "*") / f"{split}.jsonl"
    assert task in ("lmr", "lmd") and ".." not in Path(glob).parts and split in ("train", "dev", "test_unlabeled")
    assert (task, split) != ("lmd", "test_unlabeled") and not (arabic and split == "test_unlabeled")


def test_manifest_is_the_pinned_upstream_layout_and_matches_the_local_copy() -> None:
    m = Manifest.load()
    assert len(m.commit) == 40 and m.commit in m.base_url and "CC BY 4.0" in m.licence and "Suwaileh" in m.citation
    for f in m.files:
        lang = "AR" if f.path.startswith("ar/") else "EN"
        task, event, name = f.path.removeprefix("ar/").split("/")
        up = f"LMR/data/{lang}/gold-random-json/{event}/{name}" if task == "lmr" else f"LMD/data/{lang}/{event}/{name}"
        assert f.source == up and len(f.sha256) == 64
    assert {f.path[:3] == "ar/" for f in m.files} == {True, False}, "both languages are pinned"
    root = find_idrisi()
    if root is None:
        pytest.skip("IDRISI not found here: the checksums are checked against upstream only at download")
    kept = [f for f in m.files if not f.held_out]  # the held-out files are never read here
    mismatched = [f.path for f in kept if not datasets._verified(root / f.path, f)]
    assert mismatched == [], "the local IDRISI copy differs from the pinned upstream files"
    local = {p.relative_to(root).as_posix() for p in root.rglob("*.jsonl")}
    assert local == {f.path for f in kept}, "every local file is pinned, and only the held-out ones are missing"


def test_manifest_pins_every_held_out_file_by_path_size_and_checksum() -> None:
    root = find_idrisi()
    listing = root / "held-out-files.json" if root is not None else None
    if listing is None or not listing.is_file():
        pytest.skip("no held-out-files.json beside the local IDRISI copy")
    held = json.loads(listing.read_text(encoding="utf-8"))
    m = Manifest.load()
    assert held["commit"] == m.commit
    pinned = {f.path: {"source": f.source, "size": f.size, "sha256": f.sha256} for f in m.files if f.held_out}
    assert pinned == held["files"]
    assert not any((root / p).exists() for p in pinned), "a held-out file is in the development copy"


def test_demo_without_idrisi_stops_with_what_to_do(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from demo.__main__ import main

    clone = tmp_path / "clone"
    clone.mkdir()
    (clone / "pyproject.toml").write_text("")
    monkeypatch.setattr(datasets, "_REPO", clone)  # a fresh clone with nothing beside it
    for var in ("LMR_IDRISI_DIR", "LMR_CACHE_DIR", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("LMR_OFFLINE", "0")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        monkeypatch.setenv("LMR_IDRISI_URL", f"http://127.0.0.1:{s.getsockname()[1]}/")
    assert main([]) == 2
    err = capsys.readouterr().err
    assert "IDRISI not found" in err and "downloading it failed" in err and "LMR_IDRISI_DIR" in err


def test_module_command_prints_where_or_why(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "mine" / "lmr").mkdir(parents=True)
    monkeypatch.setenv("LMR_IDRISI_DIR", str(tmp_path / "mine"))
    assert datasets.main() == 0 and capsys.readouterr().out.strip() == str(tmp_path / "mine")
    (tmp_path / "clone").mkdir()
    (tmp_path / "clone" / "pyproject.toml").write_text("")
    monkeypatch.setattr(datasets, "_REPO", tmp_path / "clone")  # a checkout with nothing beside it
    monkeypatch.setenv("LMR_IDRISI_DIR", str(tmp_path / "missing"))
    monkeypatch.setenv("LMR_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("LMR_OFFLINE", "1")
    assert datasets.main() == 2
    out = capsys.readouterr()
    assert out.out == "" and str(tmp_path / "missing") in out.err and "LMR_OFFLINE=1" in out.err


def test_unwritable_cache_names_the_setting(upstream: Upstream, tmp_path: Path) -> None:
    (tmp_path / "clone").mkdir()
    (tmp_path / "a-file").write_text("")
    env = {"LMR_CACHE_DIR": str(tmp_path / "a-file")}  # not a folder: nothing can be written under it
    with pytest.raises(DatasetNotFoundError, match="LMR_CACHE_DIR to a writable one"):
        _fetch(env, tmp_path, upstream)
    assert upstream.requests == []
