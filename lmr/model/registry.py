"""Publishing and loading versioned models: the contract between trainer and worker.

A model reference is ``REGISTRY/NAME`` (follows ``LATEST``), ``REGISTRY/NAME/VERSION``, a GLiNER
directory, or ``hf:ORG/NAME`` for a Hugging Face hub model: the hub is used only when named so.

Layout::

    REGISTRY/NAME/VERSION/   GLiNER weights (safetensors), configs, tokenizer, lmr.json,
                             README.md (model card), training_config.json, manifest.json
    REGISTRY/NAME/LATEST     text file naming the newest complete version

A version is written into a hidden temporary directory, hashed, renamed into
place, and only then is ``LATEST`` replaced (atomically), so a reader never sees
a partial model.

Loading from a registry trusts nothing it has not checked: ``LATEST`` must name a
version directory inside that registry (a plain version name, no path; a version
directory that is a symlink may lead to another version of it, never outside), a
version directory must hold ``manifest.json`` (a directory next to a ``LATEST``
is never loaded as a plain GLiNER folder), and every file in the version
directory must be listed in the manifest with its sha256 (an unlisted file, such
as an extra ``tokenizer.json``, fails verification just as a modified one does).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lmr.errors import CorruptModelError, ModelNotFoundError

MANIFEST = "manifest.json"
LATEST = "LATEST"
SCHEMA_VERSION = 1
HUB_PREFIX = "hf:"  # a Hugging Face hub model is named explicitly: hf:ORG/NAME
EXAMPLE_HUB = "hf:urchade/gliner_large-v2.1"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")
_VERSION_NAME = re.compile(r"[A-Za-z0-9][\w.-]*")
_FIX = "re-publish the model (lmr-trainer run / lmr-trainer publish) or point at another version."


@dataclass(frozen=True)
class ModelRef:
    """Where a model reference points."""

    path: str  # local directory, or the hub id (without hf:) when kind == "hub"
    kind: str  # "version" (published), "plain" (GLiNER directory) or "hub"
    name: str
    version: str
    manifest: dict[str, Any] | None = None


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def git_commit() -> str:
    """The lmr source tree's git commit, or "" outside a checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        return out.stdout.strip() if out.returncode == 0 else ""
    except OSError:
        return ""


def _versions(model_dir: Path) -> list[str]:
    return sorted(
        (p.name for p in model_dir.iterdir() if p.is_dir() and (p / MANIFEST).is_file() and not p.name.startswith(".")),
        key=_version_key,
    )


def _version_key(v: str) -> tuple[int, str]:
    m = re.fullmatch(r"v(\d+)", v)
    return (int(m.group(1)), v) if m else (-1, v)


def next_version(model_dir: Path) -> str:
    nums = [_version_key(v)[0] for v in _versions(model_dir)] if model_dir.is_dir() else []
    return f"v{max([0, *nums]) + 1}"


def write_manifest(
    directory: Path, labels: list[str], threshold: float, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    files = {
        str(p.relative_to(directory)): {"sha256": sha256_file(p), "bytes": p.stat().st_size}
        for p in sorted(directory.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    }
    manifest = {
        "schema_version": SCHEMA_VERSION,
        "labels": labels,
        "threshold": threshold,
        "files": files,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "lmr_git_commit": git_commit(),
        **(extra or {}),
    }
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def publish(
    registry: str | Path,
    name: str,
    write: Callable[[Path], None],
    *,
    labels: list[str],
    threshold: float,
    version: str | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Publish a model: ``write(tmpdir)`` fills the files, then the version is sealed and made LATEST."""
    if not re.fullmatch(r"[A-Za-z0-9][\w.-]*", name):
        raise ValueError(f"Model name {name!r} must be letters, digits, '.', '_' or '-'.")
    model_dir = Path(registry) / name
    model_dir.mkdir(parents=True, exist_ok=True)
    version = version or next_version(model_dir)
    final = model_dir / version
    if final.exists():
        raise FileExistsError(f"{final} already exists; versions are immutable. Choose another --version.")
    tmp = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=model_dir))
    try:
        write(tmp)
        write_manifest(tmp, labels, threshold, {"name": name, "version": version, **(extra or {})})
        share(tmp)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    set_latest(model_dir, version)
    return final


def share(tree: Path) -> None:
    """Give ``tree`` the permissions of files made under the umask (temporary files are owner-only).

    A registry is written by the trainer and read by workers that may run as another user (a
    container's UID): a published version is as readable as any other file its publisher creates.
    """
    umask = os.umask(0)
    os.umask(umask)
    for path in (tree, *tree.rglob("*")):
        path.chmod((0o777 if path.is_dir() else 0o666) & ~umask)


def set_latest(model_dir: Path, version: str) -> None:
    """Point ``LATEST`` at ``version`` atomically."""
    fd, tmp = tempfile.mkstemp(prefix=".LATEST-", dir=model_dir)
    with os.fdopen(fd, "w") as f:
        f.write(version + "\n")
        f.flush()
        os.fsync(f.fileno())
    share(Path(tmp))
    os.replace(tmp, model_dir / LATEST)


def read_latest(model_dir: str | Path) -> str | None:
    """The version ``REGISTRY/NAME/LATEST`` names, or None when there is no LATEST.

    Raises :class:`CorruptModelError` when LATEST is not UTF-8 or names anything but a plain version
    directory inside ``model_dir`` (``../x``, ``/abs/path``, ``v1/sub``); other read errors
    (permissions, a stale network mount) propagate as :class:`OSError`.
    """
    f = Path(model_dir) / LATEST
    try:
        raw = f.read_bytes()
    except FileNotFoundError:
        return None
    try:
        version = raw.decode("utf-8").strip()
    except UnicodeDecodeError as exc:
        raise CorruptModelError(f"{f} is not UTF-8 text.", "write the version name, e.g. `v3`, into it.") from exc
    if not version:
        return None
    if not _VERSION_NAME.fullmatch(version):
        raise CorruptModelError(
            f"{f} names {version[:80]!r}, which is not a version of this registry.",
            "LATEST must hold a version directory name such as `v3` (no path); re-publish or fix it.",
        )
    return version


def _check_listed(directory: Path, files: dict[str, Any]) -> None:
    """Every file in the version directory must be in the manifest (an unlisted file could change behaviour)."""
    for p in sorted(directory.rglob("*")):
        if p.is_dir() or (p.name == MANIFEST and p.parent == directory):
            continue
        rel = p.relative_to(directory).as_posix()
        if rel not in files:
            raise CorruptModelError(
                f"{directory}: file {rel} is not listed in {MANIFEST} (added after publishing?).",
                "remove it, or re-publish the model so the manifest covers every file.",
            )


def verify(directory: Path) -> dict[str, Any]:
    """Check ``manifest.json``, every listed file's sha256 and that no unlisted file is present.

    Raises CorruptModelError if anything is off.
    """
    mf = directory / MANIFEST
    try:
        manifest = json.loads(mf.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise CorruptModelError(f"{directory} has no {MANIFEST}: the version is partial.", _FIX) from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CorruptModelError(f"{mf} is not valid JSON: {exc}.", _FIX) from exc
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict) or not files or manifest.get("schema_version") != SCHEMA_VERSION:
        raise CorruptModelError(f"{mf} lacks a file list or has an unknown schema_version.", _FIX)
    root = directory.resolve()
    for rel, meta in files.items():
        p = directory / rel
        if not p.resolve().is_relative_to(root):
            raise CorruptModelError(f"{mf} lists {rel!r}, outside the version directory.", _FIX)
        if not p.is_file():
            raise CorruptModelError(f"{directory}: file {rel} listed in the manifest is missing.", _FIX)
        if not isinstance(meta, dict) or sha256_file(p) != meta.get("sha256"):
            raise CorruptModelError(f"{directory}: file {rel} fails its sha256 check (corrupt or modified).", _FIX)
    _check_listed(directory, files)
    return manifest


def in_registry(directory: Path) -> bool:
    """Whether ``directory`` is a version slot of a registry (its parent holds ``LATEST``)."""
    return (directory.parent / LATEST).is_file()


def _check_inside(model_dir: Path, version_dir: Path) -> None:
    """A version directory must lie inside its registry entry: a symlink may point to another version of it,
    never elsewhere (what a registry writer vouched for is what loads)."""
    if version_dir.is_symlink() and not version_dir.resolve().is_relative_to(model_dir.resolve()):
        raise CorruptModelError(
            f"{version_dir} is a symlink to {version_dir.resolve()}, outside {model_dir}.",
            "copy the version into the registry (lmr-trainer publish) instead of linking to it.",
        )


def version_ref(model_dir: Path, version: str) -> ModelRef:
    """The published version ``version`` of ``REGISTRY/NAME``: it must be a directory with a manifest."""
    if not _VERSION_NAME.fullmatch(version):
        raise CorruptModelError(f"{version[:80]!r} is not a version name of {model_dir}.", _FIX)
    d = model_dir / version
    _check_inside(model_dir, d)
    if not d.is_dir():
        raise CorruptModelError(f"{model_dir}/{LATEST} names {version}, but {d} does not exist.", _FIX)
    if not (d / MANIFEST).is_file():
        raise CorruptModelError(
            f"{d} has no {MANIFEST}: a registry version is loaded only once it is sealed (partial copy?).", _FIX
        )
    return ModelRef(str(d), "version", model_dir.name, version)


def resolve(ref: str) -> ModelRef:
    """Resolve ``REGISTRY/NAME`` (latest), ``REGISTRY/NAME/VERSION``, a GLiNER directory, or ``hf:ORG/NAME``.

    A Hugging Face hub model is only ever named explicitly (``hf:``): a local path that does not exist is an
    error, never a hub download of a name that happens to look like ``ORG/NAME``.
    """
    if ref.startswith(HUB_PREFIX):
        hub_id = ref[len(HUB_PREFIX) :]
        if not _HUB_ID.match(hub_id):
            raise ModelNotFoundError(
                f"{ref!r} is not a Hugging Face hub model name.", f"write {HUB_PREFIX}ORG/NAME, e.g. {EXAMPLE_HUB}."
            )
        return ModelRef(hub_id, "hub", hub_id, "")
    p = Path(ref)
    if p.is_dir():
        if (p / MANIFEST).is_file():
            if in_registry(p):
                _check_inside(p.parent, p)
            return ModelRef(str(p), "version", p.parent.name, p.name)
        latest = read_latest(p)
        if latest is not None:
            return version_ref(p, latest)
        if in_registry(p):
            return version_ref(p.parent, p.name)  # refuses a version directory without a manifest
        if (p / "gliner_config.json").is_file():
            return ModelRef(str(p), "plain", p.name, "")
        if any(c.name.startswith(".v") for c in p.iterdir()) or any(
            (c / "gliner_config.json").is_file() for c in p.iterdir() if c.is_dir()
        ):
            raise CorruptModelError(
                f"{p} holds no complete version (no {LATEST}).", "wait for the publish to finish or re-run it."
            )
        raise ModelNotFoundError(
            f"{p} is neither a published model (REGISTRY/NAME[/VERSION]) nor a GLiNER directory.",
            f"train one with `lmr-trainer run`, or name a hub model explicitly: {EXAMPLE_HUB}.",
        )
    what = "is not a directory" if p.exists() else "does not exist"
    raise ModelNotFoundError(
        f"No model at {ref!r}: the path {what} (a Hugging Face hub model is named {HUB_PREFIX}ORG/NAME).",
        f"pass an existing REGISTRY/NAME, REGISTRY/NAME/VERSION or GLiNER directory, or {EXAMPLE_HUB} to "
        "download from the hub.",
    )
