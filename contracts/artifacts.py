"""Saved models: one place for manifests, checksums, atomic version directories and the ``CURRENT`` pointer.

A saved model is a plain directory ``<root>/<kind>/<version>/`` holding ``manifest.json`` (version,
format, the SHA-256 of its native model file, library versions, …) and native files. A model is written
into a staging sibling and renamed into place, then ``CURRENT`` is flipped, so a reader never sees a
half-written model. Loaders verify the checksum before handing a file to a native library: a truncated
file is an ``ArtifactError``, never a crash inside LightGBM or VW.
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
            version = json.loads((staging / MANIFEST_FILE).read_text())["version"]
            replace_directory(staging, self.directory(kind, version))
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        self.publish(kind, version)
        self.prune(kind)
        return version

    def prune(self, kind: str) -> list[str]:
        """Remove all but the newest ``keep`` version directories of ``kind`` (never the current one);
        returns the versions removed."""
        current = self.current(kind)
        directories = [path for path in (self.root / kind).iterdir() if path.is_dir() and not path.name.startswith(".")]
        directories.sort(key=lambda path: path.stat().st_mtime_ns, reverse=True)
        removed = []
        for path in directories[self.keep :]:
            if path.name != current:
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path.name)
        return removed
