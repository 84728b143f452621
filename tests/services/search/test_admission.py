"""Admission control, page top-up and guarded writes: the service under load and from the network."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time

import pytest
from fastapi.testclient import TestClient
from logged import logged_lines

from bandit.reward import RewardConfig
from contracts.events import Engagement, FeedbackEvent, ImpressionEvent
from services.app import build_app
from services.ingest.ingestor import finalize
from services.search.admission import Admission, Overloaded


def _impressions(settings):
    return [json.loads(line) for line in logged_lines(settings) if '"impression"' in line]


# -- the FIFO queue -----------------------------------------------------------------------------------


def test_admission_hands_slots_to_waiters_in_arrival_order():
    async def scenario():
        admission = Admission(limit=1, timeout_s=5.0, max_waiting=10)
        await admission.acquire()
        order = []

        async def waiter(name):
            await admission.acquire()
            order.append(name)

        tasks = []
        for name in "abcd":
            tasks.append(asyncio.create_task(waiter(name)))
            await asyncio.sleep(0)  # each waiter queues before the next arrives
        assert admission.state().waiting == 4
        for _ in "abcd":
            admission.release()
            await asyncio.sleep(0.01)
        await asyncio.gather(*tasks)
        assert admission.state().running == 1, "each release handed the slot on; one holder remains"
        admission.release()
        return order, admission.state()

    order, state = asyncio.run(scenario())
    assert order == list("abcd")
    assert (state.running, state.waiting, state.refused) == (0, 0, 0)


def test_admission_refuses_after_the_timeout_and_when_the_queue_is_full():
    async def scenario():
        admission = Admission(limit=1, timeout_s=0.05, max_waiting=1)
        await admission.acquire()
        timed_out = asyncio.create_task(admission.acquire())
        await asyncio.sleep(0)
        with pytest.raises(Overloaded, match="LTRR_QUEUE_MAX_WAITING") as full:
            await admission.acquire()
        with pytest.raises(Overloaded, match="LTRR_QUEUE_TIMEOUT_MS") as late:
            await timed_out
        admission.release()
        await admission.acquire()  # the refused waiters left the queue: the slot is free again
        return admission.state(), full.value, late.value

    state, full, late = asyncio.run(scenario())
    assert state.refused == 2 and state.waiting == 0 and state.running == 1
    assert full.retry_after_s >= 1 and late.retry_after_s >= 1


# -- through HTTP -----------------------------------------------------------------------------------


def test_searches_beyond_the_queue_get_503_with_retry_after_and_the_rest_full_pages(settings, embedder):
    tight = settings.model_copy(update={"max_concurrent_searches": 1, "queue_timeout_ms": 1.0, "queue_max_waiting": 2})
    statuses: list[tuple[int, dict, dict]] = []
    with TestClient(build_app(tight, embedder=embedder), raise_server_exceptions=False) as client:
        client.post("/search", json={"query": "warm up", "k": 5})

        def one(index):
            response = client.post("/search", json={"query": f"jazz night {index}", "k": 5})
            statuses.append((response.status_code, dict(response.headers), response.json()))

        threads = [threading.Thread(target=one, args=(index,)) for index in range(24)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        # Every slot comes back (a search holds its slot until its retrievers have all finished).
        deadline = time.monotonic() + 10
        while (health := client.get("/healthz").json())["admission"]["running"] and time.monotonic() < deadline:
            time.sleep(0.05)
    codes = [status for status, _, _ in statuses]
    assert set(codes) <= {200, 503}, codes
    assert 503 in codes, "24 concurrent searches through one slot and a 1 ms queue: some must be refused"
    assert 200 in codes
    for status, headers, body in statuses:
        if status == 503:
            assert int(headers["retry-after"]) >= 1
            assert body["error"] == "overloaded" and ("LTRR_QUEUE_TIMEOUT_MS" in body["detail"][0]["message"] or "LTRR_QUEUE_MAX_WAITING" in body["detail"][0]["message"])
        else:
            assert body["results"], "never an empty page"
    assert health["admission"]["running"] == 0 and health["admission"]["waiting"] == 0


def test_a_page_the_plan_left_short_is_topped_up_from_the_fallback_and_charged(settings, embedder):
    memory_only = settings.model_copy(update={"policy": "fixed:memory=20"})
    with TestClient(build_app(memory_only, embedder=embedder), raise_server_exceptions=False) as client:
        body = client.post("/search", json={"query": "sad jazz songs", "k": 10}).json()
    assert len(body["results"]) == 10, "an unseen query: memory has nothing, the fallback fills the page"
    assert body["fallback"] == 10
    assert all([s["strategy"] for s in item["sources"]] == ["fallback"] for item in body["results"])

    logged = _impressions(memory_only)[-1]
    impression = ImpressionEvent.from_json(logged)
    assert impression.fallback and set(impression.fallback) == {item["id"] for item in body["results"]}
    config = RewardConfig(cost_per_candidate=0.01)
    click = FeedbackEvent("f1", impression.request_id, impression.page[0].entity_id, Engagement.CLICK, 1, impression.time + 1)
    rewarded = finalize(impression, [click], config)
    assert rewarded.reward == pytest.approx(1.0 - 0.01 * (20 + 10)), "charged for the plan's 20 and the 10 added"


def test_a_large_k_is_filled_beyond_what_the_plan_drew(settings, embedder):
    # dense has an answer for every entity, so it can fill any k (lexical only what matches the words)
    small_plan = settings.model_copy(update={"policy": "fixed:lexical=5+dense=5", "fallback_strategies": ["dense"]})
    with TestClient(build_app(small_plan, embedder=embedder), raise_server_exceptions=False) as client:
        body = client.post("/search", json={"query": "love", "k": 60}).json()
    assert len(body["results"]) == 60, body["candidates"]
    drawn = body["candidates"] - body["fallback"]
    assert drawn < 60 and body["fallback"] == 60 - drawn > 0, "the plan drew at most 10: the rest came from the fallback"
    assert sum(any(s["strategy"] == "fallback" for s in item["sources"]) for item in body["results"]) == body["fallback"]


def test_no_fallback_configured_leaves_the_page_as_the_plan_found_it(settings, embedder):
    plain = settings.model_copy(update={"policy": "fixed:memory=20", "fallback_strategies": []})
    with TestClient(build_app(plain, embedder=embedder), raise_server_exceptions=False) as client:
        body = client.post("/search", json={"query": "sad jazz songs", "k": 10}).json()
    assert body["results"] == [] and body["fallback"] == 0


# -- guarded writes -----------------------------------------------------------------------------------


def test_bodies_over_the_limit_get_413_before_parsing_and_unauthenticated_writes_401(settings, embedder):
    guarded = settings.model_copy(update={"api_key": "s3cret", "max_body_bytes": 65536})
    huge = b'{"query": "' + b"a" * 200_000 + b'"}'
    with TestClient(build_app(guarded, embedder=embedder), raise_server_exceptions=False) as client:
        response = client.post("/search", content=huge, headers={"content-type": "application/json"})
        assert response.status_code == 413
        assert response.json()["detail"][0]["field"] == "body" and "LTRR_MAX_BODY_BYTES" in response.json()["detail"][0]["message"]
        chunks = iter([b'{"query": "', b"a" * 40_000, b"a" * 40_000, b'"}'])
        streamed = client.post("/search", content=chunks, headers={"content-type": "application/json"})
        assert streamed.status_code == 413, "no Content-Length: refused once the bytes read pass the limit"
        entities = b'{"entities": [' + b"1," * 100_000 + b"1]}"
        refused = client.post("/entities", content=entities, headers={"content-type": "application/json"})
        assert refused.status_code == 401, "the key is checked before the body is read"
        assert client.post("/search", json={"query": "q " * 400, "k": 3}).status_code == 200, "a long query still fits"
        assert client.get("/").status_code == 200, "the search page works with a key set"
        wrong_method = client.put("/search", json={})
        assert wrong_method.status_code == 405 and "POST" in wrong_method.headers["allow"]


def test_a_feedback_key_guards_feedback_before_its_body_is_read_and_nothing_else(settings, embedder):
    """LTRR_FEEDBACK_KEY is for server-to-server clients: without the header, 401 naming it (before the body
    is parsed, so a malformed body still gets 401); with it, the usual request-bound checks apply."""
    guarded = settings.model_copy(update={"feedback_key": "relay-k3y"})
    with TestClient(build_app(guarded, embedder=embedder), raise_server_exceptions=False) as client:
        body = client.post("/search", json={"query": "jazz", "k": 3}).json()
        assert body["results"], "searches need no key"
        click = {"request_id": body["request_id"], "entity_id": body["results"][0]["id"], "event": "click"}
        for headers in ({}, {"X-Feedback-Key": "wrong"}, {"X-API-Key": "relay-k3y"}):
            refused = client.post("/feedback", json=click, headers=headers)
            assert refused.status_code == 401, headers
            assert refused.json()["detail"][0]["field"] == "X-Feedback-Key" and "LTRR_FEEDBACK_KEY" in refused.json()["detail"][0]["message"]
        assert client.post("/feedback", content=b"{not json", headers={"content-type": "application/json"}).status_code == 401
        accepted = client.post("/feedback", json=click, headers={"X-Feedback-Key": "relay-k3y"})
        assert accepted.status_code == 200 and accepted.json()["event_id"]
        unknown = client.post("/feedback", json={**click, "entity_id": "never-shown"}, headers={"X-Feedback-Key": "relay-k3y"})
        assert unknown.status_code == 422, "the key does not lift the page bound"
        assert client.get("/healthz").status_code == 200


def test_serve_refuses_a_network_address_without_a_key(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "services.cli", "serve", "--data-dir", str(tmp_path), "--host", "0.0.0.0", "--port", "18999"],
        capture_output=True, text=True, timeout=120, env={"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"},
    )
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "LTRR_API_KEY" in output and "LTRR_ALLOW_OPEN_WRITES" in output
    assert "Traceback" not in output
