"""Configuration picks the backends: strategies by name, OpenSearch by setting, errors that name the setting."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from contracts import ConfigError
from memory_index.local_store import LocalMemoryStore
from services.server import build_app
from services.wiring import open_retrievers


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
