"""Saved models: one place for manifests, checksums, atomic version directories and the ``CURRENT`` pointer.

A saved model is a plain directory ``<root>/<kind>/<version>/`` holding ``manifest.json`` (version,
format, ``files``: the SHA-256 of every native file in the directory, library versions, …) and native files. A model is written
into a staging sibling and renamed into place, then ``CURRENT`` is flipped, so a reader never sees a
half-written model. Loaders verify the checksums before handing a file to a native library: a truncated
file is an ``ArtifactError``, never a crash inside LightGBM or VW. Manifests written before ``files``
existed carry one ``model_sha256`` for the model file, which is still checked.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any, Callable, Iterable

from contracts.errors import ArtifactError

MANIFEST_FILE = "manifest.json"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(directory: Path, manifest: dict[str, Any]) -> None:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True))


def read_manifest(directory: Path, what: str, fix: str, files: Iterable[str] = ()) -> dict[str, Any]:
    """The manifest of ``directory`` after checking that it and ``files`` exist; ``ArtifactError`` says
    which file is missing or unreadable, what the model is (``what``) and what to do (``fix``)."""
    directory = Path(directory)
    for name in (MANIFEST_FILE, *files):
        if not (directory / name).is_file():
            raise ArtifactError(f"{what}: {directory / name} is missing; {fix}")
    path = directory / MANIFEST_FILE
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ArtifactError(f"{what}: cannot read {path} ({error}); {fix}") from error
    if not isinstance(manifest, dict):
        raise ArtifactError(f"{what}: {path} is not a JSON object; {fix}")
    return manifest


def verify_checksum(path: Path, expected: object, what: str) -> None:
    """``ArtifactError`` unless ``path``'s SHA-256 is ``expected`` (a truncated or partial copy)."""
    if not isinstance(expected, str) or sha256_of(path) != expected:
        raise ArtifactError(
            f"{what}: {path} does not match the checksum in its manifest; the copy is corrupt or partial, "
            "copy the directory again or retrain"
        )


def file_checksums(directory: Path) -> dict[str, str]:
    """``{name: SHA-256}`` of every file in ``directory`` but the manifest (what ``files`` records)."""
    directory = Path(directory)
    return {
        path.name: sha256_of(path)
        for path in sorted(directory.iterdir())
        if path.is_file() and path.name != MANIFEST_FILE and not path.name.startswith(".")
    }


def seal_manifest(directory: Path) -> None:
    """Record ``files`` (the checksum of every native file) in ``directory``'s manifest."""
    directory = Path(directory)
    manifest = json.loads((directory / MANIFEST_FILE).read_text())
    manifest["files"] = file_checksums(directory)
    write_manifest(directory, manifest)


def verify_files(directory: Path, manifest: dict[str, Any], what: str, model_file: str, required: bool = True) -> None:
    """``ArtifactError`` unless every file the manifest's ``files`` lists (``model_file`` among them) is
    present with its checksum; a manifest older than ``files`` has its ``model_sha256`` checked against
    ``model_file``. ``required=False`` lets a manifest with neither pass (formats saved before checksums)."""
    directory = Path(directory)
    path = directory / MANIFEST_FILE
    files = manifest.get("files")
    legacy = manifest.get("model_sha256")
    if files is None:
        if legacy is not None or required:
            verify_checksum(directory / model_file, legacy, what)
        return
    if not isinstance(files, dict) or model_file not in files:
        raise ArtifactError(f"{what}: {path} field files does not list {model_file}; the manifest is damaged, copy the directory again or retrain")
    if legacy is not None and files[model_file] != legacy:
        raise ArtifactError(f"{what}: {path} fields files[{model_file}] and model_sha256 disagree; the manifest is damaged, copy the directory again or retrain")
    for name, expected in files.items():
        if not isinstance(name, str) or Path(name).name != name or name in ("", ".", ".."):
            raise ArtifactError(f"{what}: {path} field files names {name!r}, not a file of the directory; the manifest is damaged, retrain")
        if not (directory / name).is_file():
            raise ArtifactError(f"{what}: {directory / name} is listed in {path} but missing; copy the directory again or retrain")
        verify_checksum(directory / name, expected, what)


def replace_directory(staging: Path, target: Path) -> None:
    """Move a fully written ``staging`` directory to ``target`` (replacing it)."""
    if target.exists():
        shutil.rmtree(target)
    os.replace(staging, target)


class ModelStore:
    """``<root>/<kind>/<version>/`` directories and the ``<root>/<kind>/CURRENT`` file naming the one served.

    ``save`` keeps the newest ``keep`` versions of a kind (the served one always among them) and removes
    older ones, so a learner publishing every few seconds does not fill the disk."""

    def __init__(self, root: Path, keep: int = 20) -> None:
        if keep < 2:
            raise ArtifactError(f"keep: expected at least 2 versions (the served one and its successor), got {keep}")
        self.root = Path(root)
        self.keep = keep

    def directory(self, kind: str, version: str) -> Path:
        return self.root / kind / version

    def current(self, kind: str) -> str | None:
        pointer = self.root / kind / "CURRENT"
        if not pointer.exists():
            return None
        version = pointer.read_text().strip()
        return version or None

    def current_directory(self, kind: str) -> Path | None:
        version = self.current(kind)
        return None if version is None else self.directory(kind, version)

    def publish(self, kind: str, version: str) -> None:
        pointer = self.root / kind / "CURRENT"
        pointer.parent.mkdir(parents=True, exist_ok=True)
        staging = pointer.with_suffix(".tmp")
        staging.write_text(version + "\n")
        os.replace(staging, pointer)

    def save(self, kind: str, write: Callable[[Path], None]) -> str:
        """Write a model with ``write(directory)``, name its directory after ``manifest.json``'s version and
        publish it. Returns the version."""
        staging = self.root / kind / f".staging-{uuid.uuid4().hex}"
        staging.mkdir(parents=True)
        try:
            write(staging)
            seal_manifest(staging)
            version = json.loads((staging / MANIFEST_FILE).read_text())["version"]
            replace_directory(staging, self.directory(kind, version))
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        self.publish(kind, version)
        self.prune(kind)
        return version

    def versions(self, kind: str) -> list[str]:
        """The version directories of ``kind``, newest first (by modification time, as ``prune`` orders them)."""
        parent = self.root / kind
        if not parent.is_dir():
            return []
        directories = [path for path in parent.iterdir() if path.is_dir() and not path.name.startswith(".")]
        directories.sort(key=lambda path: path.stat().st_mtime_ns, reverse=True)
        return [path.name for path in directories]

    def prune(self, kind: str) -> list[str]:
        """Remove all but the newest ``keep`` version directories of ``kind`` (never the current one);
        returns the versions removed."""
        current = self.current(kind)
        removed = []
        for version in self.versions(kind)[self.keep :]:
            if version != current:
                shutil.rmtree(self.directory(kind, version), ignore_errors=True)
                removed.append(version)
        return removed
