"""Saved models for the tests: real LambdaMART rankers published into a ``ModelStore``, and the damage an
operator might push (a file rewritten, a tree cut in half) with or without a checksum that agrees."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from contracts.artifacts import MANIFEST_FILE, ModelStore, file_checksums
from ranker.features import feature_names
from ranker.train import TrainingGroup, train_and_gate

STRATEGIES = ("lexical", "dense", "memory")


def publish_ranker(models: ModelStore, seed: int, strategies=STRATEGIES) -> str:
    """Train a real LambdaMART ranker on rows where the first feature marks the engaged candidate (it beats
    fusion, so the gate accepts it), save and publish it, and age it so later versions sort newer."""
    rng = np.random.default_rng(seed)
    width = len(feature_names(strategies))
    groups = []
    for number in range(60):
        rows = rng.random((10, width))
        groups.append(TrainingGroup(rows, (rows[:, 0] == rows[:, 0].max()).astype(int), float(number)))
    result = train_and_gate(groups[:45], groups[45:], None, models.root / "ranker", seed=seed, strategies=strategies)
    assert result.accepted, result.reason
    models.publish("ranker", result.version)
    age_versions(models, "ranker")
    return result.version


def age_versions(models: ModelStore, kind: str) -> None:
    """Make every version but the newest one a second older, so 'newest' does not hinge on mtime resolution."""
    for age, version in enumerate(models.versions(kind)):
        directory = models.directory(kind, version)
        stamp = directory.stat().st_mtime_ns - age * 10**9
        os.utime(directory, ns=(stamp, stamp))


def rewrite(directory: Path, name: str, content: bytes, recompute_checksum: bool) -> None:
    """Replace a model file; with ``recompute_checksum`` the manifest agrees with the damaged file (a
    damaged model that was saved as such), without it the checksum catches the damage."""
    (directory / name).write_bytes(content)
    if recompute_checksum:
        manifest = json.loads((directory / MANIFEST_FILE).read_text())
        manifest["files"] = file_checksums(directory)
        manifest["model_sha256"] = manifest["files"][name]
        (directory / MANIFEST_FILE).write_text(json.dumps(manifest))


def truncate_mid_tree(directory: Path, recompute_checksum: bool) -> None:
    text = (directory / "model.txt").read_bytes()
    rewrite(directory, "model.txt", text[: len(text) // 2], recompute_checksum)
