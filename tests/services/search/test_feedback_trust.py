"""Feedback is taken on trust no longer: only shown entities, within the window, once per (request, entity,
event), at most 3·k per request; the ledger is shared by two service processes on one Redis."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from logged import logged_lines

from services.app import build_app
from services.search.ledger import Claim, LocalLedger, RedisLedger, ShownPage


def _feedback_lines(settings) -> list[dict]:
    lines = logged_lines(settings)
    return [json.loads(line) for line in lines if '"kind":"feedback"' in line]


def test_an_entity_that_was_not_shown_is_refused_and_not_logged(client, settings, small_catalog):
    body = client.post("/search", json={"query": "jazz", "k": 3}).json()
    shown = {item["id"] for item in body["results"]}
    outsider = next(entity.id for entity in small_catalog if entity.id not in shown)
    response = client.post("/feedback", json={"request_id": body["request_id"], "entity_id": outsider, "event": "play"})
    assert response.status_code == 422
    detail = response.json()["detail"][0]
    assert detail["field"] == "entity_id" and "was not on the page" in detail["message"]
    assert _feedback_lines(settings) == []


def test_a_repeat_returns_the_first_event_id_and_counts_once(client, settings):
    body = client.post("/search", json={"query": "jazz", "k": 2}).json()
    payload = {"request_id": body["request_id"], "entity_id": body["results"][0]["id"], "event": "click", "position": 1}
    first = client.post("/feedback", json=payload).json()["event_id"]
    again = client.post("/feedback", json=payload)
    assert again.status_code == 200 and again.json()["event_id"] == first
    play = client.post("/feedback", json={**payload, "event": "play"}).json()["event_id"]
    assert play != first
    assert [(line["event_id"], line["event"]) for line in _feedback_lines(settings)] == [(first, "click"), (play, "play")]


def test_at_most_three_events_per_requested_result(client, settings):
    body = client.post("/search", json={"query": "rock", "k": 1}).json()
    entity = body["results"][0]["id"]
    statuses = [
        client.post("/feedback", json={"request_id": body["request_id"], "entity_id": entity, "event": event}).status_code
        for event in ("click", "favorite", "play")
    ]
    assert statuses == [200, 200, 200]
    assert len(_feedback_lines(settings)) == 3


def test_the_local_ledger_enforces_the_cap_and_forgets_old_requests():
    ledger = LocalLedger(window_s=300.0)
    ledger.record("r1", ShownPage(0.0, 1, ("a",)))
    assert ledger.claim("r1", "a|click", "e1", 2) == (Claim.NEW, "e1")
    assert ledger.claim("r1", "a|click", "e9", 2) == (Claim.REPEAT, "e1")
    assert ledger.claim("r1", "a|play", "e2", 2) == (Claim.NEW, "e2")
    assert ledger.claim("r1", "a|favorite", "e3", 2) == (Claim.OVER_LIMIT, "")
    ledger.record("r2", ShownPage(2 * 300.0 + 1.0, 1, ("b",)))
    assert ledger.page("r1") is None and ledger.page("r2") is not None, "kept only for the window and its grace"


def test_feedback_after_the_attribution_window_says_so(settings, embedder):
    now = [1_000_000.0]
    with TestClient(build_app(settings, embedder=embedder, clock=lambda: now[0])) as client:
        body = client.post("/search", json={"query": "jazz", "k": 1}).json()
        now[0] += settings.attribution_window_s + 1
        late = client.post("/feedback", json={"request_id": body["request_id"], "entity_id": body["results"][0]["id"], "event": "click"})
    assert late.status_code == 422
    assert "attribution window of this request closed" in late.json()["detail"][0]["message"]


def test_a_retry_of_acknowledged_feedback_gets_its_event_id_even_after_the_window(settings, embedder):
    now = [1_000_000.0]
    with TestClient(build_app(settings, embedder=embedder, clock=lambda: now[0])) as client:
        body = client.post("/search", json={"query": "jazz", "k": 1}).json()
        payload = {"request_id": body["request_id"], "entity_id": body["results"][0]["id"], "event": "click"}
        first = client.post("/feedback", json=payload).json()["event_id"]
        now[0] += settings.attribution_window_s + 1
        retry = client.post("/feedback", json=payload)
    assert retry.status_code == 200 and retry.json()["event_id"] == first


def test_feedback_that_cannot_be_logged_is_not_acknowledged_and_may_be_retried(client, settings):
    pipeline = client.app.state.pipeline
    body = client.post("/search", json={"query": "jazz", "k": 1}).json()
    payload = {"request_id": body["request_id"], "entity_id": body["results"][0]["id"], "event": "play"}
    healthy = pipeline.event_log.append

    def disk_full(event):
        raise OSError(28, "No space left on device")

    pipeline.event_log.append = disk_full
    try:
        assert client.post("/feedback", json=payload).status_code == 500
    finally:
        pipeline.event_log.append = healthy
    retried = client.post("/feedback", json=payload)
    assert retried.status_code == 200
    assert [line["event_id"] for line in _feedback_lines(settings)] == [retried.json()["event_id"]]


def test_two_service_processes_share_the_ledger_through_redis(settings, embedder, redis_url):
    second = settings.model_copy(update={"worker_id": 1})  # each process its own worker id (and spool)
    with TestClient(build_app(settings, embedder=embedder)) as one, TestClient(build_app(second, embedder=embedder)) as two:
        body = one.post("/search", json={"query": "jazz", "k": 2}).json()
        payload = {"request_id": body["request_id"], "entity_id": body["results"][0]["id"], "event": "click"}
        first = two.post("/feedback", json=payload)
        assert first.status_code == 200, "the other worker knows the request"
        assert one.post("/feedback", json=payload).json()["event_id"] == first.json()["event_id"]
    ledger = RedisLedger(redis_url, settings.attribution_window_s)
    shown = ledger.page(body["request_id"])
    assert shown is not None and shown.k == 2 and shown.entity_ids[0] == payload["entity_id"]
    import redis

    ttl = redis.Redis.from_url(redis_url).ttl(f"ltrr:request:page:{body['request_id']}")
    assert 0 < ttl <= 2 * settings.attribution_window_s + 1, "request state expires after two windows; it does not grow without end"


@pytest.mark.parametrize("k", [1, 4])
def test_the_redis_ledger_claims_atomically(redis_url, k):
    ledger = RedisLedger(redis_url, 300.0)
    ledger.record("r", ShownPage(0.0, k, ("a",)))
    outcomes = [ledger.claim("r", f"a|{n}", f"e{n}", 3 * k)[0] for n in range(3 * k + 1)]
    assert outcomes == [Claim.NEW] * (3 * k) + [Claim.OVER_LIMIT]
    assert ledger.claim("r", "a|0", "other", 3 * k) == (Claim.REPEAT, "e0")
