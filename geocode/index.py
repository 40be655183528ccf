"""The offline gazetteer's SQLite index: where it lives, when it is current, how it is written.

:func:`build_index` builds it on first use under :func:`cache_dir`
(``$LMR_CACHE_DIR``, else ``$XDG_CACHE_HOME/lmr``, else ``~/.cache/lmr``) and
rebuilds it when the builder code, the alias tables or a source package change
(:func:`sources_signature`). The file is written beside the target and moved
into place atomically, so readers never see a partial index.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import threading
from importlib import metadata
from pathlib import Path

from geocode.build import SOURCES, Builder, Place, build_places
from lmr import datasets, language, names
from lmr.errors import DataError

log = logging.getLogger(__name__)

INDEX_VERSION = "lmr-gazetteer-4"
_CODE_FILES = ("build.py", "aliases.py", "aliases.json", "index.py", "text.py", "arabic.py", "skeleton.py")
_KEY_MODULES = (names, language)  # the name keys are theirs: a change there rebuilds too
_build_lock = threading.Lock()


def cache_dir() -> Path:
    """Where lmr keeps built indexes and caches (one rule for every cache: :func:`lmr.datasets.cache_dir`)."""
    return datasets.cache_dir()


def default_index_path() -> Path:
    return cache_dir() / "gazetteer-4.sqlite"


def sources_signature() -> str:
    """Index format, builder code, alias tables and source package versions: any change rebuilds the index."""
    here = Path(__file__).parent
    files = [here / f for f in _CODE_FILES] + [Path(str(m.__file__)) for m in _KEY_MODULES]
    code = hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()[:16]
    parts = [INDEX_VERSION, code]
    for pkg in SOURCES:
        try:
            parts.append(f"{pkg}={metadata.version(pkg)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{pkg}=missing")
    return ";".join(parts)


def display_name(p: Place, countries: dict[str, str]) -> str:
    """``"Luling, Caldwell County, Texas, United States"``: the place and what contains it."""
    parts = [p.name, p.admin2 if p.kind == "city" else None, p.admin1 if p.kind != "admin1" else None]
    parts.append(countries.get(p.cc or "", p.cc) if p.kind != "country" else None)
    return ", ".join(dict.fromkeys(x for x in parts if x))


_SCHEMA = """
PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;
CREATE TABLE meta(k TEXT PRIMARY KEY, v TEXT);
CREATE TABLE places(id INTEGER PRIMARY KEY, name TEXT, kind TEXT, ftype TEXT, cc TEXT, admin1 TEXT,
                    admin2 TEXT, lat REAL, lon REAL, pop INTEGER, bbox TEXT, display TEXT);
CREATE TABLE names(key TEXT, place INTEGER, quality REAL, caps INTEGER);
CREATE TABLE fuzzy(key TEXT, place INTEGER);
"""


def write_index(path: Path, b: Builder) -> None:
    """Write the built places atomically (temporary file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    if tmp.exists():
        tmp.unlink()
    con = sqlite3.connect(tmp)
    try:
        con.executescript(_SCHEMA)
        con.executemany(
            "INSERT INTO places VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                (
                    i,
                    p.name,
                    p.kind,
                    p.ftype,
                    p.cc,
                    p.admin1,
                    p.admin2,
                    p.lat,
                    p.lon,
                    p.pop,
                    json.dumps([round(x, 5) for x in p.bbox]) if p.bbox else None,
                    display_name(p, b.country_names),
                )
                for i, p in enumerate(b.places, start=1)
            ),
        )
        best: dict[tuple[str, int], tuple[float, int]] = {}
        for key, pid, q, caps in b.names:
            old = best.get((key, pid))
            if old is None or q > old[0]:
                best[(key, pid)] = (q, caps)
        con.executemany(
            "INSERT INTO names VALUES (?,?,?,?)", ((k, pid, q, caps) for (k, pid), (q, caps) in best.items())
        )
        con.execute("CREATE INDEX names_key ON names(key)")
        con.executemany("INSERT INTO fuzzy VALUES (?,?)", sorted(b.fuzzy))
        con.execute("CREATE INDEX fuzzy_key ON fuzzy(key)")
        con.execute("INSERT INTO meta VALUES ('signature', ?)", (sources_signature(),))
        con.execute("INSERT INTO meta VALUES ('places', ?)", (str(len(b.places)),))
        con.commit()
    finally:
        con.close()
    os.replace(tmp, path)


def is_current(path: Path) -> bool:
    """Whether the index at ``path`` was built by this code from these package versions."""
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            row = con.execute("SELECT v FROM meta WHERE k='signature'").fetchone()
        finally:
            con.close()
    except sqlite3.Error:
        return False
    return bool(row) and row[0] == sources_signature()


def build_index(path: Path | None = None, *, force: bool = False) -> Path:
    """Build the index at ``path`` (default under :func:`cache_dir`) unless a current one exists."""
    target = Path(path) if path else default_index_path()
    with _build_lock:
        if not force and target.exists() and is_current(target):
            return target
        log.info("building offline gazetteer index at %s (once)", target)
        try:
            write_index(target, build_places())
        except ImportError as exc:
            raise DataError(
                f"The offline gazetteer needs the package {exc.name!r}, which is not installed.",
                "install lmr with its dependencies: pip install -e .",
            ) from exc
    return target
