"""IDRISI, found or fetched in one place: the demo, the benchmarks, the tests and ``idrisi:`` references ask here.

Looked for, in this order (the first folder holding ``lmr/`` wins):

1. ``$LMR_IDRISI_DIR``;
2. ``../shared/data/idrisi`` beside the repository (beside the current directory when lmr is installed as a
   package rather than run from a checkout);
3. the user cache: ``$LMR_CACHE_DIR/idrisi``, else ``$XDG_CACHE_HOME/lmr/idrisi``, else ``~/.cache/lmr/idrisi``.

When none holds it and downloads are allowed, :func:`idrisi_dir` downloads the English and Arabic files listed
in ``idrisi.json`` (a pinned commit of github.com/rsuwaileh/IDRISI, each file's size and sha256) into the cache.
Layout: upstream ``LMR/data/EN/gold-random-json/<event>/<split>.jsonl`` becomes ``lmr/<event>/<split>.jsonl``,
``LMD/data/EN/<event>/<split>.jsonl`` becomes ``lmd/<event>/<split>.jsonl``, and the Arabic ones
(``LMR/data/AR/gold-random-json/...``, ``LMD/data/AR/...``) go under ``ar/`` the same way, byte for byte (no other
change: the checksums are those of the upstream files and of ``../shared/data/idrisi`` alike). The manifest marks
``held_out`` the events kept back for judging lmr on disasters it has never seen: users get the whole dataset,
and the project's own copy lacks exactly those files. Files go to a staging
folder, each renamed into place only once its size and sha256 match; the staging folder becomes the cache folder
in one rename when every file is there. An interrupted download never looks complete, and the next run keeps the
files already verified. ``LMR_OFFLINE=1`` forbids downloading; so does ``HF_HUB_OFFLINE=1`` when ``LMR_OFFLINE``
is unset. ``LMR_IDRISI_URL`` replaces the download address (a mirror; the tests' loopback server).

Short references name IDRISI files wherever a data path is accepted (:func:`lmr.readers.expand_paths`):
``idrisi:<task>/<split>`` or ``idrisi:<task>/<event>/<split>``, task ``lmr`` or ``lmd`` (English) or ``ar/lmr`` or
``ar/lmd`` (Arabic), split ``train``, ``dev`` or (English lmr only) ``test_unlabeled``, e.g. ``idrisi:lmr/train`` =
``<IDRISI>/lmr/*/train.jsonl`` and ``idrisi:ar/lmd/dev`` = ``<IDRISI>/ar/lmd/*/dev.jsonl``.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import re
import shutil
import sys
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeGuard

from lmr.errors import DataError, DatasetDownloadError, DatasetNotFoundError

IDRISI_DIR_ENV = "LMR_IDRISI_DIR"
CACHE_DIR_ENV = "LMR_CACHE_DIR"
OFFLINE_ENV = "LMR_OFFLINE"
HF_OFFLINE_ENV = "HF_HUB_OFFLINE"
URL_ENV = "LMR_IDRISI_URL"
REFERENCE_PREFIX = "idrisi:"
MANIFEST = Path(__file__).with_name("idrisi.json")
TIMEOUT_S = 10.0  # per connect and per read: a machine without internet fails within seconds
_CHUNK = 1 << 16
_TRUE = frozenset({"1", "true", "yes", "on"})
_REPO = Path(__file__).resolve().parent.parent
_REFERENCE = re.compile(
    r"(?P<lang>ar/)?(?P<task>lmr|lmd)/(?:(?P<event>[\w*?\[\]-]+)/)?(?P<split>train|dev|test_unlabeled)"
)
REFERENCES = (
    "idrisi:lmr/train",
    "idrisi:lmr/dev",
    "idrisi:lmr/test_unlabeled",
    "idrisi:lmd/train",
    "idrisi:lmd/dev",
    "idrisi:ar/lmr/train",
    "idrisi:ar/lmr/dev",
    "idrisi:ar/lmd/train",
    "idrisi:ar/lmd/dev",
)


@dataclass(frozen=True)
class RemoteFile:
    """One file of the dataset: where it goes (``lmr/<event>/<split>.jsonl``), where it comes from, its checksum."""

    path: str
    source: str
    size: int
    sha256: str
    held_out: bool = False  # an event kept back for judging lmr (never read while developing it)


@dataclass(frozen=True)
class Manifest:
    """The pinned upstream commit and the files taken from it (``lmr/idrisi.json``)."""

    repository: str
    commit: str
    url: str  # ``{commit}`` is replaced by the commit
    licence: str
    citation: str
    files: tuple[RemoteFile, ...]

    @classmethod
    def load(cls, path: Path = MANIFEST) -> Manifest:
        raw: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        files = tuple(RemoteFile(path=k, **v) for k, v in raw["files"].items())
        return cls(raw["repository"], raw["commit"], raw["url"], raw["licence"], raw["citation"], files)

    @property
    def base_url(self) -> str:
        return self.url.format(commit=self.commit)

    @property
    def notice(self) -> str:
        return f"IDRISI is licensed {self.licence}. Cite: {self.citation}"


def cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """lmr's cache folder: ``$LMR_CACHE_DIR``, else ``$XDG_CACHE_HOME/lmr``, else ``~/.cache/lmr``."""
    env = os.environ if environ is None else environ
    if env.get(CACHE_DIR_ENV):
        return Path(env[CACHE_DIR_ENV]).expanduser()
    xdg = env.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "lmr"


def places(environ: Mapping[str, str] | None = None, repo: Path | None = None) -> list[tuple[str, Path | None]]:
    """The three places looked at, in order, each with a short description (``None``: the variable is unset)."""
    env = os.environ if environ is None else environ
    given = env.get(IDRISI_DIR_ENV)
    base = repo if repo is not None else (_REPO if (_REPO / "pyproject.toml").is_file() else Path.cwd())
    return [
        (f"${IDRISI_DIR_ENV}", Path(given).expanduser() if given else None),
        ("beside the repository", base.resolve().parent / "shared" / "data" / "idrisi"),
        ("the user cache", cache_dir(env) / "idrisi"),
    ]


def holds_idrisi(folder: Path | None) -> bool:
    return folder is not None and (folder / "lmr").is_dir()


def find_idrisi(environ: Mapping[str, str] | None = None, repo: Path | None = None) -> Path | None:
    """The first place holding IDRISI, or ``None``; never downloads."""
    return next((p for _, p in places(environ, repo) if p is not None and holds_idrisi(p)), None)


def offline(environ: Mapping[str, str] | None = None) -> bool:
    """``LMR_OFFLINE`` when set, else ``HF_HUB_OFFLINE``: 1/true/yes/on forbid downloading."""
    env = os.environ if environ is None else environ
    value = env.get(OFFLINE_ENV) or env.get(HF_OFFLINE_ENV) or ""
    return value.strip().lower() in _TRUE


def idrisi_dir(
    *,
    download: bool = True,
    environ: Mapping[str, str] | None = None,
    repo: Path | None = None,
    base_url: str | None = None,
    manifest: Manifest | None = None,
    progress: bool | None = None,
) -> Path:
    """Where IDRISI is; downloads it into the user cache when it is nowhere and downloading is allowed.

    Raises :class:`DatasetNotFoundError` naming the three places looked at and what to do.
    """
    env = os.environ if environ is None else environ
    found = find_idrisi(env, repo)
    if found is not None:
        return found
    where = places(env, repo)
    looked = "".join(f"\n  {name}: {path if path is not None else 'unset'}" for name, path in where)
    m = manifest or Manifest.load()
    by_hand = (
        f"or download lmr/ and lmd/ by hand from {m.repository}/tree/{m.commit} "
        "(LMR/data/EN/gold-random-json/<event>/ -> lmr/<event>/, LMD/data/EN/<event>/ -> lmd/<event>/; "
        "LMR/data/AR/gold-random-json/<event>/ -> ar/lmr/<event>/, LMD/data/AR/<event>/ -> ar/lmd/<event>/) "
        f"and set {IDRISI_DIR_ENV} to the folder holding them."
    )
    if not download or offline(env):
        why = "downloading is off" if not download else f"downloading is forbidden ({_offline_setting(env)})"
        raise DatasetNotFoundError(
            f"IDRISI not found; looked at:{looked}\n{why}.\n",
            f"unset {OFFLINE_ENV} and {HF_OFFLINE_ENV} (or set {OFFLINE_ENV}=0) to let lmr download it, {by_hand}",
        )
    target = where[-1][1]
    assert target is not None  # the cache is always a path
    try:
        return download_idrisi(target, manifest=m, base_url=base_url or env.get(URL_ENV), progress=progress)
    except DatasetDownloadError as exc:
        raise DatasetNotFoundError(
            f"IDRISI not found; looked at:{looked}\ndownloading it failed: {exc.problem}\n",
            f"check the network connection (a proxy is read from https_proxy) and rerun, {by_hand}",
        ) from exc


def _offline_setting(env: Mapping[str, str]) -> str:
    name = OFFLINE_ENV if env.get(OFFLINE_ENV) else HF_OFFLINE_ENV
    return f"{name}={env.get(name)}"


def download_idrisi(
    target: Path,
    *,
    manifest: Manifest | None = None,
    base_url: str | None = None,
    progress: bool | None = None,
    out: IO[str] | None = None,
) -> Path:
    """Download every file of ``manifest`` into ``target``, verified, atomically (see the module docstring)."""
    m = manifest or Manifest.load()
    url = (base_url or m.base_url).rstrip("/") + "/"
    say = out or sys.stderr
    if holds_idrisi(target):
        return target
    staging, lock = target.with_name(target.name + ".partial"), target.with_name(target.name + ".lock")
    try:
        staging.mkdir(parents=True, exist_ok=True)
        lock.touch()
    except OSError as exc:
        raise DatasetDownloadError(f"cannot write {staging} ({exc}); set {CACHE_DIR_ENV} to a writable one.") from exc
    with _exclusive(lock):  # one download per cache folder at a time
        if holds_idrisi(target):  # another process finished it while this one waited
            return target
        staging.mkdir(parents=True, exist_ok=True)  # (a failed download before may have removed it)
        return _download(target, staging, m, url, say, progress)


@contextlib.contextmanager
def _exclusive(lock: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``lock`` (POSIX ``flock``; elsewhere no lock)."""
    try:
        import fcntl
    except ImportError:  # not POSIX
        yield
        return
    with lock.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _download(target: Path, staging: Path, m: Manifest, url: str, say: IO[str], progress: bool | None) -> Path:
    """The download itself, under the lock: verified files into ``staging``, then one rename to ``target``."""
    todo = [f for f in m.files if not _verified(staging / f.path, f)]
    total = sum(f.size for f in todo)
    print(f"Downloading IDRISI ({len(todo)} files, {total / 1e6:.1f} MB) from {url} into {target}", file=say)
    print(m.notice, file=say, flush=True)
    try:
        with _bar(total, say, progress) as advance:
            for f in todo:
                _fetch(url + f.source, staging / f.path, f, advance)
    except DatasetDownloadError:
        _remove_empty_folders(staging)  # keeps the verified files for the next run
        raise
    (staging / "README.md").write_text(
        f"# IDRISI (English and Arabic)\n\nDownloaded by lmr from {m.repository} at commit {m.commit}.\n\n{m.notice}\n",
        encoding="utf-8",
    )
    try:
        staging.rename(target)
    except OSError:
        if not holds_idrisi(target):  # another process may have finished first; anything else is an error
            raise
        shutil.rmtree(staging, ignore_errors=True)
    print(f"IDRISI ready in {target}", file=say, flush=True)
    return target


def _remove_empty_folders(root: Path) -> None:
    for d in [*sorted((p for p in root.rglob("*") if p.is_dir()), reverse=True), root]:
        if not any(d.iterdir()):
            d.rmdir()


@contextlib.contextmanager
def _bar(total: int, out: IO[str], progress: bool | None) -> Iterator[Callable[[int], object]]:
    """A byte progress bar (``progress=None``: only on a terminal); none without tqdm.

    ``make demo`` runs this module with the system Python before the virtualenv (and tqdm) exists.
    """
    try:
        from tqdm.auto import tqdm
    except ImportError:
        yield lambda n: None
        return
    disable = None if progress is None else not progress
    with tqdm(total=total, unit="B", unit_scale=True, desc="IDRISI", file=out, disable=disable) as bar:
        yield bar.update


def _verified(path: Path, f: RemoteFile) -> bool:
    if not path.is_file() or path.stat().st_size != f.size:
        return False
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest() == f.sha256


def _fetch(url: str, dest: Path, f: RemoteFile, advance: Callable[[int], object]) -> None:
    """One file into ``dest`` via ``dest.<pid>.part``; renamed only when its size and sha256 match."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(f"{dest.name}.{os.getpid()}.part")
    h, n = hashlib.sha256(), 0
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as resp, part.open("wb") as fh:
            while chunk := resp.read(_CHUNK):
                fh.write(chunk)
                h.update(chunk)
                n += len(chunk)
                advance(len(chunk))
    except (OSError, http.client.HTTPException) as exc:
        part.unlink(missing_ok=True)
        reason = getattr(exc, "reason", None) or exc
        raise DatasetDownloadError(f"{url}: {type(exc).__name__}: {reason} (after {n} of {f.size} bytes).") from exc
    if n != f.size or h.hexdigest() != f.sha256:
        part.unlink(missing_ok=True)
        what = (
            f"{n} bytes instead of {f.size} (cut short?)"
            if n != f.size
            else f"sha256 {h.hexdigest()} instead of {f.sha256}"
        )
        raise DatasetDownloadError(f"{url}: got {what}; the file was discarded.")
    os.replace(part, dest)


def is_reference(raw: object) -> TypeGuard[str]:
    return isinstance(raw, str) and raw.startswith(REFERENCE_PREFIX)


def resolve_reference(ref: str, root: Path | None = None) -> str:
    """``idrisi:lmr/train`` -> ``<IDRISI>/lmr/*/train.jsonl`` (a glob); finds (or fetches) IDRISI unless ``root``."""
    m = _REFERENCE.fullmatch(ref[len(REFERENCE_PREFIX) :]) if is_reference(ref) else None
    if m is None or (m["split"] == "test_unlabeled" and (m["task"] == "lmd" or m["lang"])):
        raise DataError(
            f"{ref!r} is not an IDRISI reference.",
            f"write one of {', '.join(REFERENCES)}, or idrisi:lmr/<event>/train for one event (a glob may stand "
            "for the event).",
        )
    base = root if root is not None else idrisi_dir()
    folder = base / "ar" if m["lang"] else base
    return str(folder / m["task"] / (m["event"] or "*") / f"{m['split']}.jsonl")


def main() -> int:
    """``python -m lmr.datasets``: print where IDRISI is, downloading it first when it is nowhere."""
    from lmr.errors import LmrError

    try:
        print(idrisi_dir())
    except LmrError as exc:
        print(exc, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
