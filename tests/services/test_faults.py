"""Faults against real processes: `ltrr serve` as a subprocess on a redis-server this test starts, kills
and restarts (append-only file, fsync always, so Redis itself loses nothing it acknowledged).

Every search and feedback the service acknowledged must reach the event stream and be applied by
`ltrr ingest`, whatever happened in between."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.error
import urllib.request

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families
from service_process import LTRR, OwnRedis, Service

from services.eventstream import STREAM
from services.failpoints import SERVE_POINTS, SERVE_VARIABLE

QUERIES = ("jazz", "calm piano", "rock anthems", "sad songs", "night drive", "summer hits", "blues guitar")


@pytest.fixture
def own_redis(tmp_path):
    server = OwnRedis(tmp_path)
    server.start()
    yield server
    server.stop()


class Acknowledged:
    """What the service said yes to: impressions by request id, feedback by event id."""

    def __init__(self) -> None:
        self.searches: list[dict] = []
        self.feedback: set[str] = set()

    def search(self, service: Service, index: int) -> dict:
        status, body = service.post("/search", {"query": f"{QUERIES[index % len(QUERIES)]} {index % 5}", "k": 5})
        assert status == 200, body
        assert body["results"], "never an empty page while a strategy has an answer"
        self.searches.append(body)
        return body

    def click(self, service: Service, body: dict, rank: int = 0) -> str:
        status, answer = service.post("/feedback", {"request_id": body["request_id"], "entity_id": body["results"][rank]["id"], "event": "click"})
        assert status == 200, answer
        self.feedback.add(answer["event_id"])
        return answer["event_id"]


def _stream_events(url: str) -> list[dict]:
    client = redis.Redis.from_url(url, decode_responses=True)
    return [json.loads(fields["e"]) for _, fields in client.xrange(STREAM)]


def _wait_for(predicate, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def _ingest_stats(service: Service, url: str) -> dict:
    env = {**service.env, "LTRR_ATTRIBUTION_WINDOW_S": "300"}
    flushed = subprocess.run([LTRR, "ingest", "--flush"], env=env, capture_output=True, text=True, timeout=300)
    assert flushed.returncode == 0, flushed.stdout + flushed.stderr
    stats = subprocess.run([LTRR, "stats", "--json"], env=env, capture_output=True, text=True, timeout=120)
    assert stats.returncode == 0, stats.stderr
    return json.loads(stats.stdout)


def _assert_all_arrived(acknowledged: Acknowledged, url: str) -> None:
    events = _stream_events(url)
    impressions = {event["request_id"] for event in events if event["kind"] == "impression"}
    feedback = {event["event_id"] for event in events if event["kind"] == "feedback"}
    assert {body["request_id"] for body in acknowledged.searches} <= impressions
    assert acknowledged.feedback <= feedback
    positions = {event.get("request_id"): index for index, event in enumerate(events) if event["kind"] == "impression"}
    for index, event in enumerate(events):
        if event["kind"] == "feedback":
            assert positions[event["request_id"]] < index, "a spool delivers in order: a click follows its search"


def test_search_and_feedback_outlive_a_redis_restart_and_nothing_acknowledged_is_lost(data_dir, own_redis):
    service = Service(data_dir, own_redis.url)
    service.start()
    acknowledged = Acknowledged()
    try:
        before = [acknowledged.search(service, index) for index in range(10)]
        for body in before[:5]:
            acknowledged.click(service, body)

        own_redis.kill()
        during = [acknowledged.search(service, index) for index in range(10, 30)]
        clicked_during = [acknowledged.click(service, body) for body in during[::2]]
        for body in before[5:]:
            acknowledged.click(service, body)  # a search from before the outage: this process remembers its page
        status, report = service.health()
        assert status == 200
        health = json.loads(report)
        assert health["status"] == "degraded" and health["backends"]["memory_index"]["state"] == "unreachable"
        assert health["spool"]["bytes"] > 0
        assert str(own_redis.port) not in report and "redis://" not in report, "no URL in a response"
        assert all(not body["plan"]["skipped"] or set(body["plan"]["skipped"]) == {"memory"} for body in during)
        assert all(body["degraded"] == ["memory_index", "event_stream"] for body in during), "each answer says what it lacked"

        own_redis.start()
        _wait_for(lambda: json.loads(service.health()[1])["spool"]["bytes"] == 0)
        after = [acknowledged.search(service, index) for index in range(30, 35)]
        acknowledged.click(service, after[0])
        assert json.loads(service.health()[1])["status"] == "ok"
        assert after[-1]["degraded"] == []
        time.sleep(2)  # the ledger copies the pages it served during the outage to Redis
        service.stop()
        service.start()  # a new process: it knows the outage's pages only through Redis
        acknowledged.click(service, during[1])
        assert acknowledged.click(service, during[0]) == clicked_during[0], "a retry of feedback from the outage is a repeat"
    finally:
        log = service.stop()
    assert "Traceback" not in log, log[-3000:]
    _assert_all_arrived(acknowledged, own_redis.url)
    stats = _ingest_stats(service, own_redis.url)
    assert stats["impressions_applied"] == len(acknowledged.searches)
    assert stats["feedback_applied"] == len(acknowledged.feedback)


def test_a_killed_service_delivers_its_spool_after_restart_and_old_requests_still_take_feedback(data_dir, own_redis):
    service = Service(data_dir, own_redis.url)
    service.start()
    acknowledged = Acknowledged()
    try:
        before = [acknowledged.search(service, index) for index in range(5)]
        own_redis.kill()
        for index in range(5, 15):
            acknowledged.click(service, acknowledged.search(service, index))
        service.stop(signal.SIGKILL)
        own_redis.start()
        service.start()
        _wait_for(lambda: json.loads(service.health()[1]).get("spool", {}).get("bytes", 1) == 0)
        acknowledged.click(service, before[0])  # made before the crash, with Redis up: the shared ledger has it
    finally:
        service.stop()
    _assert_all_arrived(acknowledged, own_redis.url)
    stats = _ingest_stats(service, own_redis.url)
    assert stats["impressions_applied"] == len(acknowledged.searches)
    assert stats["feedback_applied"] == len(acknowledged.feedback)


def test_queued_searches_keep_their_full_retriever_budget(data_dir, own_redis):
    """100 clients at once through one search slot: the later ones wait far longer than the 1 s retriever
    budget in the queue, and still no retriever is skipped (the budget starts at admission). The budget is
    generous for one admitted search (tens of ms) so that only queueing, not a loaded machine, could exceed it."""
    from concurrent.futures import ThreadPoolExecutor

    service = Service(data_dir, own_redis.url)
    service.env.update({"LTRR_MAX_CONCURRENT_SEARCHES": "1", "LTRR_RETRIEVER_TIMEOUT_MS": "1000"})
    service.start()
    try:
        service.post("/search", {"query": "warm up", "k": 5})
        with ThreadPoolExecutor(100) as pool:
            answers = list(pool.map(lambda index: service.post("/search", {"query": f"{QUERIES[index % 7]} {index}", "k": 5}), range(100)))
        with urllib.request.urlopen(service.base + "/metrics", timeout=10) as response:
            metrics = response.read().decode()
    finally:
        service.stop()
    assert all(status == 200 for status, _ in answers), [status for status, _ in answers]
    short = [(body["plan"]["name"], body["plan"]["skipped"], len(body["results"])) for _, body in answers
             if not body["results"] or body["plan"]["skipped"]]
    assert not short, f"searches with skipped retrievers or empty pages: {short}"
    queue = {sample.labels["le"]: sample.value for family in text_string_to_metric_families(metrics) for sample in family.samples
             if sample.name == "ltrr_stage_seconds_bucket" and sample.labels["stage"] == "queue"}
    assert queue["1.0"] < queue["+Inf"], f"no search waited longer than the retriever budget: {queue}"


def test_a_service_started_while_redis_is_down_serves_degraded_and_catches_up(data_dir, tmp_path):
    """No crash loop: it starts, says degraded, answers from lexical and dense, spools, and delivers once
    Redis answers. The user-id salt lives in Redis: ids are left out of events until it is known."""
    late_redis = OwnRedis(tmp_path / "redis")
    (tmp_path / "redis").mkdir()
    service = Service(data_dir, late_redis.url)
    service.start()
    acknowledged = Acknowledged()
    try:
        status, report = service.health()
        health = json.loads(report)
        assert status == 200 and health["status"] == "degraded"
        assert health["backends"]["memory_index"]["state"] == "unreachable"
        for index in range(5):
            acknowledged.click(service, acknowledged.search(service, index))
        status, alice = service.post("/search", {"query": "jazz", "k": 3, "user_id": "alice"})
        assert status == 200
        late_redis.start()
        _wait_for(lambda: json.loads(service.health()[1])["spool"]["bytes"] == 0)
        acknowledged.click(service, acknowledged.search(service, 99))
        assert json.loads(service.health()[1])["status"] == "ok"
    finally:
        log = service.stop()
        late_redis.stop()
    assert "does not answer: serving degraded" in log
    late_redis.start()
    try:
        _assert_all_arrived(acknowledged, late_redis.url)
        logged = [event for event in _stream_events(late_redis.url) if event.get("request_id") == alice["request_id"]]
        assert logged and logged[0]["query"]["user_id"] is None, "no raw id, and no id hashed with a salt other processes lack"
    finally:
        late_redis.stop()


NEW_ENTITIES = [
    {"id": f"track:crash-{index}", "type": "track", "title": f"Quorble Zyxwv Anthem {index}", "artist": "Fennimore Quillsby",
     "description": f"An unusual anthem number {index} by Fennimore Quillsby.", "popularity": 0.3}
    for index in range(12)
]


@pytest.mark.parametrize("point", SERVE_POINTS)
def test_a_crash_mid_entity_write_leaves_every_index_as_after_the_write(point, data_dir, own_redis):
    """SIGKILL inside `POST /entities` (after the journal, or after the first index): the restarted service
    finishes the write, so every strategy finds every entity and DELETE removes one everywhere."""
    service = Service(data_dir, own_redis.url)
    service.env.update({"LTRR_API_KEY": "k", SERVE_VARIABLE: point})
    service.start()
    request = urllib.request.Request(service.base + "/entities", data=json.dumps({"entities": NEW_ENTITIES}).encode(),
                                     headers={"content-type": "application/json", "x-api-key": "k"})
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        urllib.request.urlopen(request, timeout=60)
    assert service.process.wait(timeout=30) == -signal.SIGKILL
    del service.env[SERVE_VARIABLE]
    service.start()
    try:
        entities_before = json.loads(service.health()[1])["entities"]
        for entity in NEW_ENTITIES[:3]:
            status, body = service.post("/search", {"query": entity["title"], "k": 5})
            assert status == 200
            found = {source["strategy"] for item in body["results"] if item["id"] == entity["id"] for source in item["sources"]}
            assert {"lexical", "dense"} <= found, (entity["id"], body["results"][:2])
        deleted = urllib.request.Request(service.base + "/entities/" + NEW_ENTITIES[0]["id"], method="DELETE", headers={"x-api-key": "k"})
        with urllib.request.urlopen(deleted, timeout=30) as response:
            assert response.status == 200
        status, body = service.post("/search", {"query": NEW_ENTITIES[0]["title"], "k": 5})
        assert NEW_ENTITIES[0]["id"] not in [item["id"] for item in body["results"]]
        assert json.loads(service.health()[1])["entities"] == entities_before - 1
    finally:
        service.stop()
    assert entities_before == 400 + len(NEW_ENTITIES)


def test_with_redis_down_and_the_spool_disk_full_searches_get_503_and_health_says_so(data_dir, own_redis, embedder):
    from fastapi.testclient import TestClient

    from services.app import build_app
    from services.settings import Settings

    spool = data_dir / "spool" / "events-0.jsonl"
    spool.parent.mkdir(parents=True)
    spool.symlink_to("/dev/full")  # every write fails with ENOSPC
    settings = Settings(data_dir=data_dir, redis_url=own_redis.url, reload_interval_s=0, start_local_redis=False)
    with TestClient(build_app(settings, embedder=embedder), raise_server_exceptions=False) as client:
        assert client.post("/search", json={"query": "jazz", "k": 3}).status_code == 200
        own_redis.kill()
        refused = client.post("/search", json={"query": "jazz", "k": 3})
        assert refused.status_code == 503, refused.text
        assert "event spool" in refused.json()["detail"][0]["message"]
        assert str(data_dir) not in refused.text and str(data_dir) not in client.get("/healthz").text, "no server path in a response"
        health = client.get("/healthz")
        assert health.status_code == 503 and health.json()["status"] == "unavailable"
        own_redis.start()
        time.sleep(1.1)  # the breaker's retry interval
        assert client.post("/search", json={"query": "jazz", "k": 3}).status_code == 200, "Redis back: events go there again"
        assert client.get("/healthz").status_code == 200


def test_a_second_process_with_the_same_worker_id_is_refused_in_one_line(data_dir, own_redis):
    """Two processes on one spool would interleave their events: the second one names LTRR_WORKER_ID and exits 2."""
    first = Service(data_dir, own_redis.url)
    first.start()
    try:
        env = {**first.env, "LTRR_PORT": "18995"}
        completed = subprocess.run([LTRR, "serve", "--data-dir", str(data_dir), "--port", "18995"],
                                   env=env, capture_output=True, text=True, timeout=180)
        assert completed.returncode == 2, completed.stderr[-2000:]
        errors = [line for line in completed.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "LTRR_WORKER_ID" in errors[0], completed.stderr[-2000:]
        assert "Traceback" not in completed.stderr
        assert first.health()[0] == 200, "the running service is untouched"
    finally:
        first.stop()
