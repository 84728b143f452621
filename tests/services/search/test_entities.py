"""Real-time catalog updates through the API: searchable by every strategy at once, gone after delete."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from services.app import build_app

NEW_TRACK = {
    "id": "track:new-1",
    "type": "track",
    "title": "Quasar Lullaby Nocturne",
    "artist": "Zephyrine Okonkwo",
    "album": "Night Orbit",
    "genres": ["ambient"],
    "moods": ["dreamy", "calm"],
    "description": "A dreamy, calm ambient lullaby by Zephyrine Okonkwo about drifting between stars at night.",
    "popularity": 0.4,
}


def strategies_finding(client, query: str, entity_id: str) -> set[str]:
    found = set()
    for _ in range(3):  # the bandit samples a plan; ask until every strategy has had a turn
        body = client.post("/search", json={"query": query, "k": 50}).json()
        for item in body["results"]:
            if item["id"] == entity_id:
                found |= {source["strategy"] for source in item["sources"]}
    return found


@pytest.fixture
def all_strategies_settings(settings):
    # One plan that draws from every strategy, so each one's answer is visible in every response.
    return settings.model_copy(update={"plans": ["dense=100+lexical=100+memory=100"], "api_key": "s3cret"})


def test_upserted_entity_is_found_by_every_strategy_at_once_and_delete_removes_it(all_strategies_settings, embedder):
    with TestClient(build_app(all_strategies_settings, embedder=embedder)) as client:
        response = client.post("/entities", json={"entities": [NEW_TRACK]}, headers={"X-API-Key": "s3cret"})
        assert response.status_code == 200, response.text
        # No waiting: the write call returns only once every index can serve the entity.
        found = strategies_finding(client, "quasar lullaby nocturne", NEW_TRACK["id"])
        assert found == {"lexical", "dense", "memory"}, found
        assert "dense" in strategies_finding(client, "songs for drifting between the stars", NEW_TRACK["id"])

        deleted = client.delete(f"/entities/{NEW_TRACK['id']}", headers={"X-API-Key": "s3cret"})
        assert deleted.status_code == 200
        assert strategies_finding(client, "quasar lullaby nocturne", NEW_TRACK["id"]) == set()
        missing = client.delete(f"/entities/{NEW_TRACK['id']}", headers={"X-API-Key": "s3cret"})
        assert missing.status_code == 404 and missing.json()["detail"][0]["field"] == "id"


def test_entity_writes_survive_a_restart(all_strategies_settings, embedder):
    with TestClient(build_app(all_strategies_settings, embedder=embedder)) as client:
        assert client.post("/entities", json={"entities": [NEW_TRACK]}, headers={"X-API-Key": "s3cret"}).status_code == 200
    with TestClient(build_app(all_strategies_settings, embedder=embedder)) as client:
        assert {"lexical", "dense"} <= strategies_finding(client, "quasar lullaby nocturne", NEW_TRACK["id"])
        assert client.get("/healthz").json()["entities"] == 401


@pytest.mark.parametrize(
    "payload,field",
    [
        ({"entities": []}, "entities"),
        ({"entities": [{**NEW_TRACK, "type": "song"}]}, "entities.0.type"),
        ({"entities": [{**NEW_TRACK, "popularity": "high"}]}, "entities.0.popularity"),
        ({"entities": [{**NEW_TRACK, "genres": "ambient"}]}, "entities.0.genres"),
        ({"entities": [{**NEW_TRACK, "id": "  "}]}, "entities.0.id"),
    ],
)
def test_bad_entities_are_refused_naming_the_field(all_strategies_settings, embedder, payload, field):
    with TestClient(build_app(all_strategies_settings, embedder=embedder)) as client:
        response = client.post("/entities", json=payload, headers={"X-API-Key": "s3cret"})
        assert response.status_code == 422
        assert field in [detail["field"] for detail in response.json()["detail"]]


def test_entity_writes_need_the_api_key_when_one_is_configured(all_strategies_settings, embedder):
    with TestClient(build_app(all_strategies_settings, embedder=embedder)) as client:
        for headers in ({}, {"X-API-Key": "wrong"}):
            response = client.post("/entities", json={"entities": [NEW_TRACK]}, headers=headers)
            assert response.status_code == 401
            assert response.json()["detail"][0]["field"] == "X-API-Key"
        assert client.delete("/entities/track:000001").status_code == 401
