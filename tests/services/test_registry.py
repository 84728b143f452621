"""Configuration picks the backends: strategies by name, OpenSearch by setting, errors that name the setting."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from fastapi.testclient import TestClient

from contracts import ArtifactError, ConfigError
from contracts.artifacts import ModelStore
from memory_index.local_store import LocalMemoryStore
from ranker.features import feature_names
from ranker.fusion import FusionRanker
from ranker.train import TrainingGroup, train_and_gate
from services.app import build_app
from services.registry import make_ranker, open_retrievers, ranker_from_directory


def test_unknown_strategy_is_a_config_error_naming_the_setting(settings):
    broken = settings.model_copy(update={"strategies": ["lexical", "telepathy"]})
    with pytest.raises(ConfigError, match="LTRR_STRATEGIES: unknown strategy 'telepathy'"):
        open_retrievers(broken, LocalMemoryStore())


def test_opensearch_backend_without_url_names_the_missing_setting(settings):
    broken = settings.model_copy(update={"backend": "opensearch", "opensearch_url": None})
    with pytest.raises(ConfigError, match="LTRR_OPENSEARCH_URL"):
        open_retrievers(broken, LocalMemoryStore())


def test_explore_strategy_is_served_through_the_api(settings, embedder):
    explore = settings.model_copy(
        update={"strategies": ["lexical", "dense", "memory", "explore"], "plans": ["explore=20+lexical=0"]}
    )
    with TestClient(build_app(explore, embedder=embedder)) as client:
        body = client.post("/search", json={"query": "calm ambient music", "k": 10}).json()
        assert body["plan"]["quotas"] == {"explore": 20, "lexical": 0}
        assert body["results"] and all(s["strategy"] == "explore" for r in body["results"] for s in r["sources"])
        retrievers = client.app.state.pipeline.retrievers
        assert retrievers["explore"].dense is retrievers["dense"], "explore shares the dense index that catalog writes update"


def test_a_saved_ranker_from_an_older_feature_table_is_refused_and_fusion_served_meanwhile(settings, tmp_path, caplog):
    rng = np.random.default_rng(0)
    width = len(feature_names(settings.strategies))
    groups = [TrainingGroup(rng.random((10, width)), (np.arange(10) == g % 10).astype(int), float(g)) for g in range(40)]
    models = ModelStore(tmp_path / "models")
    result = train_and_gate(groups[:30], groups[30:], None, models.root / "ranker", seed=0, strategies=settings.strategies)
    models.publish("ranker", result.version)
    assert make_ranker(settings, models).version == result.version
    manifest_path = result.directory / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["feature_names"] = manifest["feature_names"][:-1] + ["a_feature_this_code_dropped"]
    manifest_path.write_text(json.dumps(manifest))
    with caplog.at_level(logging.WARNING):
        assert isinstance(make_ranker(settings, models), FusionRanker), "a start never fails on a saved model"
    assert "its features differ from this code's feature table" in caplog.text and "retrain the ranker" in caplog.text
    assert f"CURRENT names {result.version}, which fails verification" in caplog.text
    with pytest.raises(ArtifactError, match=r"retrain the ranker.*delete .*ranker/CURRENT"):
        ranker_from_directory(result.directory, models)


def test_memory_half_life_reaches_every_store_the_registry_builds(settings):
    from services.ingest.jobs import open_ingest_job
    from services.registry import local_store, redis_store

    decaying = settings.model_copy(update={"memory_half_life_s": 3600.0})
    assert local_store(decaying).half_life_s == 3600.0
    assert redis_store(decaying, decaying.redis_url).half_life_s == 3600.0
    job = open_ingest_job(decaying)
    assert job.ingestor.memory.half_life_s == 3600.0, "ltrr ingest with Redis honours LTRR_MEMORY_HALF_LIFE_S"


def test_bad_half_life_names_the_setting_not_the_parameter(settings):
    from services.registry import local_store

    with pytest.raises(ConfigError, match="^LTRR_MEMORY_HALF_LIFE_S: expected a half-life in seconds > 0"):
        local_store(settings.model_copy(update={"memory_half_life_s": -1.0}))


def test_simulator_builds_its_retrievers_through_the_registry(settings, embedder):
    from services.evaluation.simulate import RunSpec, run_one

    four = settings.model_copy(update={"strategies": ["lexical", "dense", "memory", "explore"], "plan_levels": [0, 20],
                                       "memory_half_life_s": 7200.0})
    result = run_one(four, RunSpec("uniform", "uniform"), queries=40, seed=2, ingest_every=20, embedder=embedder)
    events = (four.data_dir / "simulations" / "seed2" / "uniform" / "events" / "events.jsonl").read_text().splitlines()
    impressions = [json.loads(line) for line in events if '"kind":"impression"' in line]
    assert len(result["rewards"]) == 40 and len(impressions) == 40
    assert result["memory_half_life_s"] == 7200.0, "the simulator's memory store honours LTRR_MEMORY_HALF_LIFE_S"
    assert any(event["plan"].get("explore", 0) > 0 for event in impressions), "the explore strategy is drawn from"
    assert len(impressions[0]["distribution"]) == 2**4 - 1
    with pytest.raises(ConfigError, match="LTRR_OPENSEARCH_URL"):
        run_one(settings.model_copy(update={"backend": "opensearch"}), RunSpec("uniform", "uniform"), 5, 2, 5, embedder=embedder)


def test_a_fixed_plan_may_omit_strategies_and_use_any_quota(settings, embedder):
    fixed = settings.model_copy(update={"policy": "fixed:dense=50"})
    with TestClient(build_app(fixed, embedder=embedder)) as client:
        assert client.get("/healthz").status_code == 200
        response = client.post("/search", json={"query": "calm ambient music", "k": 5})
        assert response.status_code == 200, response.text
        plan = response.json()["plan"]
        assert plan["quotas"] == {"dense": 50, "lexical": 0, "memory": 0} and plan["probability"] == 1.0
        assert len(response.json()["results"]) == 5


def test_a_fixed_plan_with_an_unconfigured_strategy_fails_at_start(settings, embedder):
    from services.search.stack import open_stack

    with pytest.raises(ConfigError, match=r"^LTRR_POLICY: fixed plan uses telepathy, not in LTRR_STRATEGIES"):
        open_stack(settings.model_copy(update={"policy": "fixed:telepathy=20"}), embedder=embedder)


SERVING_IMPORTS = """
import json, sys
from fastapi.testclient import TestClient
from services.app import build_app
from services.settings import Settings
settings = Settings(data_dir=sys.argv[1], redis_url=sys.argv[2], reload_interval_s=0, start_local_redis=False)
with TestClient(build_app(settings)) as client:
    assert client.post("/search", json={"query": "jazz", "k": 3}).status_code == 200
    body = client.post("/search", json={"query": "jazz", "k": 3}).json()
    assert client.post("/feedback", json={"request_id": body["request_id"], "entity_id": body["results"][0]["id"], "event": "click"}).status_code == 200
print(json.dumps(sorted(name for name in sys.modules if name.split(".")[0] in ("ranx", "numba") or name == "ranker.train" or name.startswith("services.ingest") or name.startswith("services.evaluation"))))
"""


def test_the_running_service_never_imports_training_ranx_or_numba(settings):
    import subprocess
    import sys

    completed = subprocess.run(
        [sys.executable, "-c", SERVING_IMPORTS, str(settings.data_dir), settings.redis_url],
        capture_output=True, text=True, timeout=300, env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"},
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert json.loads(completed.stdout.strip().splitlines()[-1]) == []


def test_a_published_bandit_serves_with_the_configured_probability_floor(tmp_path):
    """The floor is a serving transform: a bandit saved without one (or with another) serves with
    LTRR_BANDIT_PROBABILITY_FLOOR, through the start-up load and the reloader's load alike."""
    from bandit import VWPolicy, plan_space
    from contracts import Context
    from contracts.artifacts import ModelStore
    from services.registry import make_policy, policy_from_directory
    from services.settings import Settings

    plans = plan_space(["lexical", "dense", "memory"])
    saved = VWPolicy(seed=1, epsilon=0.0, exploration="epsilon", plans=plans)
    for number in range(50):
        context = Context({"hour": float(number % 3)})
        saved.learn(context, saved.choose(context, plans, 0.5), 1.0)
    models = ModelStore(tmp_path / "models")
    models.publish("bandit", models.save("bandit", saved.save))
    settings = Settings(data_dir=tmp_path, start_local_redis=False, bandit_probability_floor=0.02)
    for loaded in (make_policy(settings, plans, models), policy_from_directory(models.current_directory("bandit"), settings)):
        assert min(loaded.distribution(Context({"hour": 1.0}), plans)) == pytest.approx(0.02)
    assert min(saved.distribution(Context({"hour": 1.0}), plans)) < 0.02, "without the floor a plan falls below it"
