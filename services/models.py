"""Where saved models live: ``<data_dir>/models/<kind>/<version>/`` plus a ``CURRENT`` file naming the
serving version. Ingest writes a version directory first and flips ``CURRENT`` last, so a reader never
sees a half-written model."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Callable


class ModelStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

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
            version = json.loads((staging / "manifest.json").read_text())["version"]
            target = self.directory(kind, version)
            if target.exists():
                shutil.rmtree(target)
            os.replace(staging, target)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        self.publish(kind, version)
        return version
