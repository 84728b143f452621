"""Verifying a saved model before a process serves it.

The checksums in the manifest are checked in this process (cheap); then a child process
(``python -m services.model_check KIND DIRECTORY``) loads the model with its native library and scores a
tiny input, so a file that crashes LightGBM or VW kills the child, never the service. ``ModelChecker``
remembers each version's verdict, so a reload loop does not start a child for the same bad version every
tick. ``serving_version`` picks what a starting process serves when ``CURRENT`` is broken; ``list_versions``
and ``rollback`` back ``ltrr models``.
"""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

from contracts import ArtifactError, ConfigError
from contracts.artifacts import ModelStore, read_manifest, verify_files

logger = logging.getLogger(__name__)

KINDS = ("bandit", "ranker")
# The stages' MODEL_FILE constants (a test keeps them equal); importing those modules here would load
# LightGBM into every bandit check and into `ltrr models list`.
MODEL_FILES = {"bandit": "model.vw", "ranker": "model.txt"}
CHILD_TIMEOUT_S = 120.0
_VERDICT_PREFIX = "model-check verdict: "
_PROJECT_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str = ""


@dataclass(frozen=True)
class VersionInfo:
    """One saved version as ``ltrr models list`` shows it (``created`` is the directory's mtime, None
    when ``CURRENT`` names a directory that does not exist)."""

    kind: str
    version: str
    created: float | None
    current: bool
    ok: bool
    reason: str

    def to_json(self) -> dict[str, Any]:
        created = None if self.created is None else datetime.fromtimestamp(self.created, timezone.utc).isoformat(timespec="seconds")
        return {"kind": self.kind, "version": self.version, "created": created, "current": self.current, "ok": self.ok, "reason": self.reason}


def check_kind(kind: str, field: str = "KIND") -> str:
    if kind not in KINDS:
        raise ConfigError(f"{field}: expected one of {', '.join(KINDS)}, got {kind!r}")
    return kind


def check_files(directory: Path, kind: str) -> Verdict:
    """The manifest is readable and every file it lists matches its checksum (no native library involved)."""
    what = f"{kind} model"
    model_file = MODEL_FILES[check_kind(kind)]
    try:
        manifest = read_manifest(directory, what, "copy the directory again, retrain, or `ltrr models rollback`", [model_file])
        # ranker format 1 was saved before manifests carried a checksum
        verify_files(directory, manifest, what, model_file, required=not (kind == "ranker" and manifest.get("format") == 1))
    except ArtifactError as error:
        return Verdict(False, str(error))
    return Verdict(True)


def check_in_child(directory: Path, kind: str, timeout_s: float = CHILD_TIMEOUT_S) -> Verdict | None:
    """Load and score the model in a child process; None when it did not finish within ``timeout_s``
    (a slow machine, not a verdict on the model)."""
    directory = Path(directory).resolve()
    command = [sys.executable, "-m", "services.model_check", check_kind(kind), str(directory)]
    try:
        completed = subprocess.run(command, cwd=_PROJECT_ROOT, capture_output=True, text=True, errors="replace", timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return None
    for line in reversed(completed.stdout.splitlines()):
        if line.startswith(_VERDICT_PREFIX):
            payload = json.loads(line[len(_VERDICT_PREFIX):])
            return Verdict(bool(payload["ok"]), str(payload["reason"]))
    code = completed.returncode
    how = f"was killed by {_signal_name(-code)}" if code < 0 else f"exited with code {code}"
    tail = next((line.strip() for line in reversed(completed.stderr.splitlines()) if line.strip()), "")
    detail = f" ({tail[:200]})" if tail else ""
    return Verdict(False, f"{kind} model: loading {directory} {how} in a child process{detail}; the file is damaged or was "
                          "written by an incompatible library, retrain or roll back")


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def verify(directory: Path, kind: str, timeout_s: float = CHILD_TIMEOUT_S) -> Verdict | None:
    """Checksums, then a load in a child process (skipped when the checksums already fail)."""
    verdict = check_files(directory, kind)
    return check_in_child(directory, kind, timeout_s) if verdict.ok else verdict


def _fingerprint(directory: Path) -> tuple[tuple[str, int, int], ...] | None:
    """Names, sizes and mtimes of the directory's files: a remembered verdict holds while these do."""
    if not directory.is_dir():
        return None
    files = [(path.name, path.stat()) for path in directory.iterdir() if path.is_file()]
    return tuple(sorted((name, stat.st_size, stat.st_mtime_ns) for name, stat in files))


class ModelChecker:
    """``verify`` with the verdict remembered per (kind, version directory) until its files change; a
    failed version is logged once, when it is first checked."""

    def __init__(self, timeout_s: float = CHILD_TIMEOUT_S) -> None:
        self.timeout_s = timeout_s
        self._verdicts: dict[tuple[str, Path], tuple[object, Verdict]] = {}
        self._lock = threading.Lock()

    def check(self, models: ModelStore, kind: str, version: str) -> Verdict:
        directory = models.directory(kind, version).resolve()
        with self._lock:
            fingerprint = _fingerprint(directory)
            cached = self._verdicts.get((kind, directory))
            if cached is not None and cached[0] == fingerprint:
                return cached[1]
            verdict = verify(directory, kind, self.timeout_s)
            if verdict is None:
                logger.warning("%s %s: verification did not finish within %.0f s; not serving it yet, the next reload tries again",
                               kind, version, self.timeout_s)
                return Verdict(False, f"verification did not finish within {self.timeout_s:.0f} s")
            self._verdicts[(kind, directory)] = (fingerprint, verdict)
        if not verdict.ok:
            logger.error("%s %s at %s fails verification and is not served: %s. Fix: `ltrr models rollback %s` points CURRENT at "
                         "the newest good version, or delete %s", kind, version, directory, verdict.reason, kind, directory)
        return verdict


CHECKER = ModelChecker()


def serving_version(models: ModelStore, kind: str, checker: ModelChecker = CHECKER) -> str | None:
    """The version a starting process serves: ``CURRENT`` when it verifies, else the newest saved version
    that does (with a warning), else None (serve what the code serves without a model)."""
    current = models.current(kind)
    if current is None or checker.check(models, kind, current).ok:
        return current
    for version in models.versions(kind):
        if version != current and checker.check(models, kind, version).ok:
            logger.warning("%s CURRENT names %s, which fails verification; serving %s instead, the newest version that verifies "
                           "(`ltrr models rollback %s --to %s` makes that CURRENT)", kind, current, version, kind, version)
            return version
    logger.warning("%s CURRENT names %s, which fails verification, and no other saved version verifies; serving without a "
                   "%s model until a new one is published", kind, current, kind)
    return None


def list_versions(models: ModelStore, kinds: Sequence[str] = KINDS) -> list[VersionInfo]:
    """Every saved version of ``kinds``, newest first, with its checksum verdict (no child process)."""
    infos = []
    for kind in kinds:
        current = models.current(kind)
        versions = models.versions(kind)
        if current is not None and current not in versions:
            reason = f"CURRENT names {current}, but {models.directory(kind, current)} does not exist; run `ltrr models rollback {kind}`"
            infos.append(VersionInfo(kind, current, None, True, False, reason))
        for version in versions:
            directory = models.directory(kind, version)
            verdict = check_files(directory, kind)
            infos.append(VersionInfo(kind, version, directory.stat().st_mtime, version == current, verdict.ok, verdict.reason))
    return infos


def rollback(models: ModelStore, kind: str, to: str | None = None, checker: ModelChecker = CHECKER) -> tuple[str | None, str]:
    """Point ``CURRENT`` at ``to`` (default: the newest version older than ``CURRENT`` that verifies) after
    verifying it in a child process; returns (the previous ``CURRENT``, the new one)."""
    check_kind(kind)
    current = models.current(kind)
    versions = models.versions(kind)
    if to is not None:
        if to not in versions:
            raise ConfigError(f"--to: no {kind} version {to!r} under {models.root / kind}; `ltrr models list --kind {kind}` lists the saved versions")
        verdict = checker.check(models, kind, to)
        if not verdict.ok:
            raise ConfigError(f"--to: {kind} version {to} fails verification ({verdict.reason}); pick another from `ltrr models list --kind {kind}`")
        target = to
    else:
        older = versions[versions.index(current) + 1:] if current in versions else versions
        good = next((version for version in older if checker.check(models, kind, version).ok), None)
        if good is None:
            where = f"older than CURRENT ({current})" if current in versions else "saved"
            raise ConfigError(f"KIND: no {kind} version {where} verifies; `ltrr models list --kind {kind}` shows why, or retrain with `ltrr ingest`")
        target = good
    models.publish(kind, target)
    return current, target


def _load_and_score(kind: str, directory: Path) -> None:
    """What the child does: exactly the serving load, then one score (a crash here is the point of the child)."""
    import numpy as np

    verdict = check_files(directory, kind)
    if not verdict.ok:
        raise ArtifactError(verdict.reason)
    if kind == "ranker":
        from ranker.lambdamart import LambdaMartRanker

        ranker = LambdaMartRanker.load(directory)
        scores = ranker.score_features(np.zeros((2, len(ranker.feature_names))))
        if not np.all(np.isfinite(scores)):
            raise ArtifactError(f"ranker model: {directory} scores a zero row as {scores.tolist()}; retrain the ranker")
        return
    from bandit.vw_policy import VWPolicy
    from contracts import Context, Plan

    policy = VWPolicy.load(directory, seed=0)
    plans = policy.plans or (Plan.of({"lexical": 10}), Plan.of({"dense": 10}))
    policy.distribution(Context({"model_check": 1.0}), plans)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if len(arguments) != 2 or arguments[0] not in KINDS:
        print(f"usage: python -m services.model_check {{{','.join(KINDS)}}} DIRECTORY", file=sys.stderr)
        return 2
    kind, directory = arguments[0], Path(arguments[1])
    try:
        _load_and_score(kind, directory)
        verdict = Verdict(True)
    except Exception as error:  # any failure of the load is the verdict, reported to the parent
        verdict = Verdict(False, str(error) if isinstance(error, ArtifactError) else f"{kind} model: loading {directory} failed "
                                 f"({error.__class__.__name__}: {error}); retrain or roll back")
    print(_VERDICT_PREFIX + json.dumps({"ok": verdict.ok, "reason": verdict.reason}), flush=True)
    return 0 if verdict.ok else 1


if __name__ == "__main__":
    sys.exit(main())
