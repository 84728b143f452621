"""Faults against real processes: `ltrr serve` as a subprocess on a redis-server this test starts, kills
and restarts (append-only file, fsync always, so Redis itself loses nothing it acknowledged).

Every search and feedback the service acknowledged must reach the event stream and be applied by
`ltrr ingest`, whatever happened in between."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import redis

from services.eventstream import STREAM

LTRR = str(Path(sys.executable).with_name("ltrr"))
QUERIES = ("jazz", "calm piano", "rock anthems", "sad songs", "night drive", "summer hits", "blues guitar")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class OwnRedis:
    def __init__(self, directory: Path) -> None:
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.command = ["redis-server", "--port", str(self.port), "--dir", str(directory), "--appendonly", "yes",
                        "--appendfsync", "always", "--save", ""]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(self.command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(200):
            try:
                redis.Redis.from_url(self.url).ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise AssertionError("redis-server did not start")

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.kill()


@pytest.fixture
def own_redis(tmp_path):
    server = OwnRedis(tmp_path)
    server.start()
    yield server
    server.stop()


class Service:
    def __init__(self, data_dir: Path, redis_url: str) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {name: value for name, value in os.environ.items() if not name.startswith("LTRR_")}
        self.env.update({"LTRR_REDIS_URL": redis_url, "LTRR_DATA_DIR": str(data_dir), "LTRR_PORT": str(self.port),
                         "LTRR_NO_PROGRESS": "1", "HF_HUB_OFFLINE": "1", "LTRR_RELOAD_INTERVAL_S": "0",
                         "LTRR_POLICY": "fixed:lexical=20+dense=20+memory=20"})
        self.data_dir = data_dir
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen([LTRR, "serve"], env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 180
        while True:
            try:
                urllib.request.urlopen(self.base + "/healthz", timeout=2)
                return
            except (urllib.error.URLError, ConnectionError):
                assert self.process.poll() is None, self.process.communicate()[1][-3000:]
                assert time.monotonic() < deadline, "the service did not start"
                time.sleep(0.2)

    def post(self, path: str, body: dict) -> tuple[int, dict]:
        request = urllib.request.Request(self.base + path, data=json.dumps(body).encode(), headers={"content-type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}")

    def health(self) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.base + "/healthz", timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def stop(self, sig: int = signal.SIGTERM) -> str:
        assert self.process is not None
        self.process.send_signal(sig)
        try:
            return self.process.communicate(timeout=60)[1]
        finally:
            if self.process.poll() is None:
                self.process.kill()


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

    def click(self, service: Service, body: dict, rank: int = 0) -> None:
        status, answer = service.post("/feedback", {"request_id": body["request_id"], "entity_id": body["results"][rank]["id"], "event": "click"})
        assert status == 200, answer
        self.feedback.add(answer["event_id"])


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
        for body in during[::2]:
            acknowledged.click(service, body)
        for body in before[5:]:
            acknowledged.click(service, body)  # a search from before the outage: this process remembers its page
        status, report = service.health()
        assert status == 200
        health = json.loads(report)
        assert health["status"] == "degraded" and health["backends"]["memory_index"]["state"] == "unreachable"
        assert health["spool"]["bytes"] > 0
        assert str(own_redis.port) not in report and "redis://" not in report, "no URL in a response"
        assert all(not body["plan"]["skipped"] or set(body["plan"]["skipped"]) == {"memory"} for body in during)

        own_redis.start()
        _wait_for(lambda: json.loads(service.health()[1])["spool"]["bytes"] == 0)
        after = [acknowledged.search(service, index) for index in range(30, 35)]
        acknowledged.click(service, after[0])
        assert json.loads(service.health()[1])["status"] == "ok"
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
