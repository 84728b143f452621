"""The HTTP door against a real stack: search, feedback, health, the OpenAPI schema, and bad input."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from logged import logged_lines

from services.app import build_app


def _events(settings):
    """The log as written: one JSON object a line, with the field names readers depend on."""
    return [json.loads(line) for line in logged_lines(settings)]


def test_search_returns_ranked_results_with_provenance_and_plan(client, small_catalog, settings):
    track = next(e for e in small_catalog if e.type == "track")
    response = client.post("/search", json={"query": track.title, "k": 5, "user_id": "u1"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert 1 <= len(body["results"]) <= 5
    assert body["plan"]["probability"] == pytest.approx(body["plan"]["distribution"][body["plan"]["name"]], abs=1e-6)
    assert sum(body["plan"]["distribution"].values()) == pytest.approx(1.0, abs=1e-3)
    assert len(body["plan"]["distribution"]) == 26
    for item in body["results"]:
        assert item["sources"], "every result names the strategies that found it"
        assert {s["strategy"] for s in item["sources"]} <= {"lexical", "dense", "memory", "fallback"}
    scores = [item["score"] for item in body["results"]]
    assert scores == sorted(scores, reverse=True)
    assert set(body["model_versions"]) == {"policy", "ranker"}

    impression = [e for e in _events(settings) if e["kind"] == "impression"][-1]
    assert impression["request_id"] == body["request_id"]
    assert impression["probability"] == body["plan"]["probability"]
    assert [p["entity_id"] for p in impression["page"]] == [r["id"] for r in body["results"]]
    assert all(len(c["features"]) == len(impression["candidates"][0]["features"]) for c in impression["candidates"])


def test_feedback_is_logged_and_unknown_request_refused_also_after_restart(client, settings, embedder):
    body = client.post("/search", json={"query": "jazz", "k": 3}).json()
    entity_id = body["results"][0]["id"]
    ok = client.post("/feedback", json={"request_id": body["request_id"], "entity_id": entity_id, "event": "play", "position": 1})
    assert ok.status_code == 200, ok.text
    feedback = [e for e in _events(settings) if e["kind"] == "feedback"]
    assert feedback[-1]["entity_id"] == entity_id and feedback[-1]["event"] == "play"

    unknown = client.post("/feedback", json={"request_id": "nope", "entity_id": entity_id, "event": "click"})
    assert unknown.status_code == 404
    assert unknown.json()["detail"][0]["field"] == "request_id"

    with TestClient(build_app(settings, embedder=embedder)) as restarted:
        again = restarted.post("/feedback", json={"request_id": body["request_id"], "entity_id": entity_id, "event": "click"})
        assert again.status_code == 200, "a request logged before the restart is still known"
        refused = restarted.post("/feedback", json={"request_id": "still-unknown", "entity_id": entity_id, "event": "click"})
        assert refused.status_code == 404


def test_healthz_reports_each_backend(client):
    health = client.get("/healthz").json()
    assert health["status"] == "ok"
    assert health["backends"]["lexical"] == "ok"
    assert health["backends"]["dense"] == "ok"
    assert health["backends"]["memory_index"]["backend"] == "redis"
    assert health["entities"] == 400


def test_openapi_schema_documents_requests_and_errors(client):
    schema = client.get("/openapi.json").json()
    search = schema["paths"]["/search"]["post"]
    assert "SearchBody" in json.dumps(search["requestBody"])
    assert "SearchResponse" in json.dumps(search["responses"]["200"])
    assert "ErrorResponse" in json.dumps(search["responses"]["422"])
    assert "/feedback" in schema["paths"] and "/healthz" in schema["paths"]
    assert client.get("/docs").status_code == 200


def test_search_page_is_served(client):
    page = client.get("/")
    assert page.status_code == 200
    assert 'id="search-form"' in page.text


BAD_SEARCHES = [
    ("empty query", {"query": ""}, "query"),
    ("whitespace query", {"query": "  \t\n "}, "query"),
    ("10,000-character query", {"query": "a" * 10_000}, "query"),
    ("k is zero", {"query": "jazz", "k": 0}, "k"),
    ("k is negative", {"query": "jazz", "k": -3}, "k"),
    ("k above 1000", {"query": "jazz", "k": 1001}, "k"),
    ("query is a number", {"query": 5}, "query"),
    ("query missing", {"k": 3}, "query"),
    ("k is a string", {"query": "jazz", "k": "10"}, "k"),
    ("k is a float", {"query": "jazz", "k": 2.5}, "k"),
    ("k is a boolean", {"query": "jazz", "k": True}, "k"),
    ("user_id is a number", {"query": "jazz", "user_id": 7}, "user_id"),
    ("session_id is a list", {"query": "jazz", "session_id": ["a"]}, "session_id"),
    ("context is a string", {"query": "jazz", "context": "mobile"}, "context"),
    ("context value is an object", {"query": "jazz", "context": {"device": {"a": 1}}}, "context"),
    ("unknown field", {"query": "jazz", "limit": 3}, "limit"),
    ("only punctuation", {"query": "?!..."}, "query"),
]


@pytest.mark.parametrize("case,payload,field", BAD_SEARCHES, ids=[case for case, _, _ in BAD_SEARCHES])
def test_bad_search_input_gets_4xx_naming_the_field(client, case, payload, field):
    response = client.post("/search", json=payload)
    assert 400 <= response.status_code < 500, (case, response.status_code, response.text)
    fields = [detail["field"] for detail in response.json()["detail"]]
    assert any(f == field or f.startswith(field + ".") for f in fields), (case, fields)
    assert "Traceback" not in response.text


RAW_BODIES = [
    ("malformed JSON", b'{"query": "jazz", ', "body"),
    ("invalid UTF-8", b'{"query": "\xff\xfe jazz"}', "body"),
    ("lone surrogate", b'{"query": "\\ud800"}', "query"),
    ("lone surrogate in user_id", b'{"query": "jazz", "user_id": "\\udfff"}', "user_id"),
    ("not an object", b'["jazz"]', "body"),
]


@pytest.mark.parametrize("case,raw,field", RAW_BODIES, ids=[case for case, _, _ in RAW_BODIES])
def test_bad_raw_bodies_get_4xx_naming_the_field(client, case, raw, field):
    response = client.post("/search", content=raw, headers={"content-type": "application/json"})
    assert 400 <= response.status_code < 500, (case, response.status_code, response.text)
    fields = [detail["field"] for detail in response.json()["detail"]]
    assert field in fields, (case, fields)


BAD_FEEDBACK = [
    ("event not allowed", {"event": "like"}, "event"),
    ("position zero", {"event": "click", "position": 0}, "position"),
    ("position is a string", {"event": "click", "position": "1"}, "position"),
    ("entity unknown", {"event": "click", "entity_id": "track:none"}, "entity_id"),
    ("request_id is a number", {"event": "click", "request_id": 12}, "request_id"),
]


@pytest.mark.parametrize("case,overrides,field", BAD_FEEDBACK, ids=[case for case, _, _ in BAD_FEEDBACK])
def test_bad_feedback_gets_4xx_naming_the_field(client, case, overrides, field):
    body = client.post("/search", json={"query": "rock", "k": 1}).json()
    payload = {"request_id": body["request_id"], "entity_id": body["results"][0]["id"], **overrides}
    response = client.post("/feedback", json=payload)
    assert 400 <= response.status_code < 500, (case, response.status_code, response.text)
    assert field in [detail["field"] for detail in response.json()["detail"]]


def test_a_torn_last_line_is_closed_before_the_next_event(settings, embedder):
    settings = settings.model_copy(update={"redis_url": None})  # the file log is the sink without Redis
    log = settings.data_dir / "events" / "events.jsonl"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_bytes(b'{"kind":"impression","request_id":"torn')
    with TestClient(build_app(settings, embedder=embedder)) as client:
        assert client.post("/search", json={"query": "jazz", "k": 1}).status_code == 200
    lines = log.read_bytes().split(b"\n")
    assert lines[0] == b'{"kind":"impression","request_id":"torn' and json.loads(lines[1])["kind"] == "impression"


def test_a_full_disk_answers_503_not_a_search_whose_impression_is_lost(settings, embedder):
    settings = settings.model_copy(update={"redis_url": None})
    log = settings.data_dir / "events" / "events.jsonl"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.symlink_to("/dev/full")  # every write fails with ENOSPC, as on a full disk
    with TestClient(build_app(settings, embedder=embedder), raise_server_exceptions=False) as client:
        response = client.post("/search", json={"query": "jazz", "k": 3})
    assert response.status_code == 503, response.text
    detail = response.json()["detail"][0]
    assert detail["field"] == "service" and "free disk space" in detail["message"]
    assert "Traceback" not in response.text and str(settings.data_dir) not in response.text


def test_impressions_log_candidates_down_to_fifty_below_the_page(settings, embedder):
    wide = settings.model_copy(update={"policy": "fixed:dense=100+lexical=100"})
    with TestClient(build_app(wide, embedder=embedder)) as client:
        body = client.post("/search", json={"query": "jazz", "k": 3}).json()
    impression = [event for event in _events(wide) if event["kind"] == "impression"][-1]
    assert body["candidates"] > 53, "the union is wider than what is logged"
    logged = [candidate["entity_id"] for candidate in impression["candidates"]]
    assert len(logged) == 53 and logged[:3] == [item["id"] for item in body["results"]]
