"""Configuration picks the backends: strategies by name, OpenSearch by setting, errors that name the setting."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fastapi.testclient import TestClient

from contracts import ArtifactError, ConfigError
from memory_index.local_store import LocalMemoryStore
from ranker.features import feature_names
from ranker.train import TrainingGroup, train_and_gate
from services.models import ModelStore
from services.registry import make_ranker, open_retrievers
from services.search.server import build_app


def test_unknown_strategy_is_a_config_error_naming_the_setting(settings):
    broken = settings.model_copy(update={"strategies": ["lexical", "telepathy"]})
    with pytest.raises(ConfigError, match="LTRR_STRATEGIES: unknown strategy 'telepathy'"):
        open_retrievers(broken, LocalMemoryStore())


def test_opensearch_backend_without_url_names_the_missing_setting(settings):
    broken = settings.model_copy(update={"backend": "opensearch", "opensearch_url": None})
    with pytest.raises(ConfigError, match="LTRR_OPENSEARCH_URL"):
        open_retrievers(broken, LocalMemoryStore())
    with pytest.raises(ConfigError, match="LTRR_BACKEND"):
        open_retrievers(settings.model_copy(update={"backend": "solr"}), LocalMemoryStore())


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


def test_a_saved_ranker_from_an_older_feature_table_says_how_to_serve_fusion_meanwhile(settings, tmp_path):
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
    with pytest.raises(ArtifactError, match=r"retrain the ranker.*delete .*ranker/CURRENT"):
        make_ranker(settings, models)
