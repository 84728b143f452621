"""A damaged model never takes the service down: every model file is checksummed, a new version is loaded
in a child process before it is swapped in, a broken CURRENT at start falls back to the newest good
version, and `ltrr models list/rollback` show and fix what is served. Real LightGBM, real VW."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from model_files import age_versions, publish_ranker, rewrite, truncate_mid_tree

import bandit.vw_policy
import ranker.lambdamart
from bandit.vw_policy import VWPolicy
from contracts import ArtifactError, ConfigError, Context, Plan
from contracts.artifacts import MANIFEST_FILE, ModelStore, file_checksums
from ranker.fusion import FusionRanker
from ranker.lambdamart import LambdaMartRanker
from services.app import build_app
from services.model_check import MODEL_FILES, ModelChecker, check_files, list_versions, rollback, serving_version, verify
from services.registry import make_policy, make_ranker, plans_from
from services.search.reload import reload_models
from services.settings import Settings

LTRR = str(Path(sys.executable).with_name("ltrr"))
PLANS = (Plan.of({"lexical": 20}), Plan.of({"dense": 20}), Plan.of({"lexical": 100, "memory": 20}))


def _publish_bandit(models: ModelStore, updates: int) -> str:
    policy = VWPolicy(seed=0, plans=PLANS)
    for number in range(updates):
        decision = policy.choose(Context({"hour": float(number)}), PLANS, 0.5)
        policy.learn(Context({"hour": float(number)}), decision, 1.0)
    version = models.save("bandit", policy.save)
    age_versions(models, "bandit")
    return version


def test_model_file_names_match_the_stages():
    assert MODEL_FILES == {"bandit": bandit.vw_policy.MODEL_FILE, "ranker": ranker.lambdamart.MODEL_FILE}


def test_every_model_file_is_checksummed_in_its_manifest(tmp_path):
    models = ModelStore(tmp_path / "models")
    for kind, version in (("ranker", publish_ranker(models, 1)), ("bandit", _publish_bandit(models, 3))):
        directory = models.directory(kind, version)
        manifest = json.loads((directory / MANIFEST_FILE).read_text())
        assert manifest["files"] == file_checksums(directory) and MODEL_FILES[kind] in manifest["files"]
        assert manifest["files"][MODEL_FILES[kind]] == manifest["model_sha256"]


def test_a_manifest_from_before_the_files_map_still_loads_and_is_still_checked(tmp_path):
    models = ModelStore(tmp_path / "models")
    directory = models.directory("ranker", publish_ranker(models, 1))
    manifest = json.loads((directory / MANIFEST_FILE).read_text())
    del manifest["files"]
    (directory / MANIFEST_FILE).write_text(json.dumps(manifest))
    assert LambdaMartRanker.load(directory).version == manifest["version"]
    truncate_mid_tree(directory, recompute_checksum=False)
    with pytest.raises(ArtifactError, match="does not match the checksum"):
        LambdaMartRanker.load(directory)


def test_a_file_the_manifest_lists_but_the_directory_lacks_is_refused(tmp_path):
    models = ModelStore(tmp_path / "models")
    directory = models.directory("bandit", _publish_bandit(models, 2))
    manifest = json.loads((directory / MANIFEST_FILE).read_text())
    manifest["files"]["vocabulary.bin"] = "0" * 64
    (directory / MANIFEST_FILE).write_text(json.dumps(manifest))
    verdict = check_files(directory, "bandit")
    assert not verdict.ok and "vocabulary.bin is listed" in verdict.reason


def test_a_truncated_ranker_published_while_serving_leaves_the_serving_ranker_in_place(settings, embedder, caplog):
    models = ModelStore(Path(settings.data_dir) / "models")
    good = publish_ranker(models, 1, tuple(settings.strategies))
    checker = ModelChecker()
    with TestClient(build_app(settings, embedder=embedder)) as client:
        pipeline = client.app.state.pipeline
        assert pipeline.ranker.version == good

        caught = publish_ranker(models, 2, tuple(settings.strategies))
        truncate_mid_tree(models.directory("ranker", caught), recompute_checksum=False)
        crashing = publish_ranker(models, 3, tuple(settings.strategies))
        truncate_mid_tree(models.directory("ranker", crashing), recompute_checksum=True)

        for bad in (caught, crashing):
            models.publish("ranker", bad)
            with caplog.at_level(logging.ERROR, logger="services.model_check"):
                reload_models(pipeline, models, settings, checker)
                started = time.monotonic()
                reload_models(pipeline, models, settings, checker)
                repeat_s = time.monotonic() - started
            assert pipeline.ranker.version == good, f"{bad} must not replace the serving ranker"
            logged = [record.getMessage() for record in caplog.records if bad in record.getMessage()]
            assert len(logged) == 1, f"a bad version is logged once, not every reload tick: {logged}"
            assert str(models.directory("ranker", bad).resolve()) in logged[0] and "ltrr models rollback ranker" in logged[0]
            assert repeat_s < 0.5, "the verdict is remembered: the next tick starts no child process"
            caplog.clear()
        assert "killed by SIG" in checker.check(models, "ranker", crashing).reason, "LightGBM crashed, in the child"

        response = client.post("/search", json={"query": "calm ambient music", "k": 5})
        assert response.status_code == 200 and response.json()["results"]

        fixed = publish_ranker(models, 4, tuple(settings.strategies))
        reload_models(pipeline, models, settings, checker)
        assert pipeline.ranker.version == fixed, "a good version published after a bad one is served"


def test_a_file_that_passes_its_checksum_but_lightgbm_rejects_is_refused_by_the_child(tmp_path):
    models = ModelStore(tmp_path / "models")
    directory = models.directory("ranker", publish_ranker(models, 1))
    rewrite(directory, "model.txt", b"this is not a LightGBM model\n", recompute_checksum=True)
    assert check_files(directory, "ranker").ok
    verdict = verify(directory, "ranker")
    assert verdict is not None and not verdict.ok
    assert "LightGBM cannot read" in verdict.reason and "retrain the ranker" in verdict.reason


def test_a_ranker_that_crashes_lightgbm_kills_only_the_child(tmp_path):
    models = ModelStore(tmp_path / "models")
    directory = models.directory("ranker", publish_ranker(models, 1))
    truncate_mid_tree(directory, recompute_checksum=True)
    verdict = verify(directory, "ranker")
    assert verdict is not None and not verdict.ok
    assert "killed by SIG" in verdict.reason and str(directory) in verdict.reason


def test_a_bandit_file_vw_cannot_read_is_refused_and_a_truncated_one_is_caught_by_its_checksum(tmp_path):
    models = ModelStore(tmp_path / "models")
    good = models.directory("bandit", _publish_bandit(models, 3))
    verdict = verify(good, "bandit")
    assert verdict is not None and verdict.ok
    unreadable = models.directory("bandit", _publish_bandit(models, 5))
    rewrite(unreadable, "model.vw", b"not a Vowpal Wabbit model" * 8, recompute_checksum=True)
    verdict = verify(unreadable, "bandit")
    assert verdict is not None and not verdict.ok and "Vowpal Wabbit cannot read" in verdict.reason
    # VW loads a file truncated after its header without complaint (the missing weights read as zero):
    # only the checksum tells.
    truncated = models.directory("bandit", _publish_bandit(models, 7))
    content = (truncated / "model.vw").read_bytes()
    rewrite(truncated, "model.vw", content[: len(content) * 3 // 4], recompute_checksum=False)
    verdict = verify(truncated, "bandit")
    assert verdict is not None and not verdict.ok and "does not match the checksum" in verdict.reason


def test_a_broken_current_at_start_serves_the_newest_good_version_with_a_warning(tmp_path, caplog):
    settings = Settings(data_dir=tmp_path, start_local_redis=False)
    models = ModelStore(tmp_path / "models")
    publish_ranker(models, 1)
    newest_good = publish_ranker(models, 2)
    broken = publish_ranker(models, 3)
    truncate_mid_tree(models.directory("ranker", broken), recompute_checksum=False)
    older_bandit = _publish_bandit(models, 2)
    good_bandit = _publish_bandit(models, 4)
    broken_bandit = _publish_bandit(models, 6)
    rewrite(models.directory("bandit", broken_bandit), "model.vw", b"", recompute_checksum=False)
    assert models.current("ranker") == broken and models.current("bandit") == broken_bandit

    with caplog.at_level(logging.WARNING, logger="services.model_check"):
        served = make_ranker(settings, models)
        policy = make_policy(settings, plans_from(settings), models)
    assert served.version == newest_good and policy.version == good_bandit != older_bandit
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert any(broken in text and f"serving {newest_good} instead" in text for text in warnings), warnings
    assert any(broken_bandit in text and f"serving {good_bandit} instead" in text for text in warnings), warnings
    assert models.current("ranker") == broken, "a starting process serves the fallback; only rollback moves CURRENT"


def test_a_current_naming_a_missing_version_falls_back_and_with_nothing_good_serves_fusion(tmp_path, caplog):
    settings = Settings(data_dir=tmp_path, start_local_redis=False)
    models = ModelStore(tmp_path / "models")
    only = publish_ranker(models, 1)
    models.publish("ranker", "lgbm-never-written")
    assert serving_version(models, "ranker") == only
    truncate_mid_tree(models.directory("ranker", only), recompute_checksum=False)
    with caplog.at_level(logging.WARNING, logger="services.model_check"):
        served = make_ranker(settings, models)
    assert isinstance(served, FusionRanker)
    assert "no other saved version verifies" in caplog.text and "lgbm-never-written" in caplog.text


def test_rollback_refuses_a_missing_or_bad_target_and_defaults_to_the_newest_good_older_version(tmp_path):
    models = ModelStore(tmp_path / "models")
    oldest = publish_ranker(models, 1)
    bad_older = publish_ranker(models, 2)
    truncate_mid_tree(models.directory("ranker", bad_older), recompute_checksum=True)
    current = publish_ranker(models, 3)
    with pytest.raises(ConfigError, match="--to: no ranker version 'lgbm-nope'"):
        rollback(models, "ranker", "lgbm-nope")
    with pytest.raises(ConfigError, match=f"--to: ranker version {bad_older} fails verification"):
        rollback(models, "ranker", bad_older)
    assert models.current("ranker") == current
    assert rollback(models, "ranker") == (current, oldest)
    assert models.current("ranker") == oldest
    with pytest.raises(ConfigError, match=r"KIND: no ranker version older than CURRENT"):
        rollback(models, "ranker")


def _ltrr(*args: str) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("LTRR_")}
    return subprocess.run([LTRR, *args], capture_output=True, text=True, env=env, timeout=300)


def test_models_list_and_rollback_on_the_command_line(tmp_path):
    models = ModelStore(tmp_path / "models")
    good = publish_ranker(models, 1)
    broken = publish_ranker(models, 2)
    truncate_mid_tree(models.directory("ranker", broken), recompute_checksum=False)
    bandit_version = _publish_bandit(models, 2)

    listed = _ltrr("models", "list", "--json", "--data-dir", str(tmp_path))
    assert listed.returncode == 0, listed.stderr
    rows = {(row["kind"], row["version"]): row for row in json.loads(listed.stdout)}
    assert set(rows) == {("ranker", good), ("ranker", broken), ("bandit", bandit_version)}
    assert rows[("ranker", broken)]["current"] and not rows[("ranker", broken)]["ok"]
    assert "does not match the checksum" in rows[("ranker", broken)]["reason"]
    assert rows[("ranker", good)]["ok"] and not rows[("ranker", good)]["current"] and rows[("ranker", good)]["created"]
    only_bandit = _ltrr("models", "list", "--json", "--kind", "bandit", "--data-dir", str(tmp_path))
    assert [row["version"] for row in json.loads(only_bandit.stdout)] == [bandit_version]

    missing = _ltrr("models", "rollback", "ranker", "--to", "lgbm-nope", "--data-dir", str(tmp_path))
    assert missing.returncode == 2 and "error: --to: no ranker version 'lgbm-nope'" in " ".join(missing.stderr.split())
    assert "Traceback" not in missing.stderr
    rolled = _ltrr("models", "rollback", "ranker", "--data-dir", str(tmp_path))
    assert rolled.returncode == 0, rolled.stderr
    assert rolled.stdout.strip() == f"ranker: CURRENT {broken} -> {good}"
    assert models.current("ranker") == good
    assert [info.ok for info in list_versions(models, ["ranker"]) if info.current] == [True]
