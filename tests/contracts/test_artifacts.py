"""Saved-model directories: atomic saves publish CURRENT, old versions are pruned, the served one never."""

from __future__ import annotations

import json
import os

from contracts.artifacts import ModelStore


def _writer(version: str):
    def write(directory):
        (directory / "manifest.json").write_text(json.dumps({"version": version}))

    return write


def test_save_publishes_and_keeps_only_the_newest_versions(tmp_path):
    store = ModelStore(tmp_path, keep=3)
    for number in range(6):
        assert store.save("bandit", _writer(f"v{number}")) == f"v{number}"
        os.utime(store.directory("bandit", f"v{number}"), ns=(number * 10**9, number * 10**9))
    assert store.current("bandit") == "v5"
    remaining = sorted(path.name for path in (tmp_path / "bandit").iterdir() if path.is_dir())
    assert remaining == ["v3", "v4", "v5"]


def test_the_served_version_survives_pruning_even_when_old(tmp_path):
    store = ModelStore(tmp_path, keep=2)
    store.save("ranker", _writer("served"))
    os.utime(store.directory("ranker", "served"), ns=(0, 0))
    (tmp_path / "ranker" / "newer-a").mkdir()
    (tmp_path / "ranker" / "newer-b").mkdir()
    assert store.prune("ranker") == [], "only the served version is beyond the newest two, and it stays"
    assert store.directory("ranker", "served").is_dir() and store.current("ranker") == "served"
