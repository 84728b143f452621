"""The service's logs, read from a real `ltrr serve` at INFO: one JSON object a line with LTRR_LOG_FORMAT=json,
and neither query text nor raw user ids, in either format."""

from __future__ import annotations

import json

import pytest
from service_process import OwnRedis, Service

QUERY = "midnight saxophone ballads"
USER = "alice-raw-id-7781"


@pytest.fixture
def own_redis(tmp_path):
    server = OwnRedis(tmp_path)
    server.start()
    yield server
    server.stop()


def _traffic(service: Service) -> None:
    status, body = service.post("/search", {"query": QUERY, "k": 5, "user_id": USER, "session_id": "sess-raw-99"})
    assert status == 200 and body["results"]
    status, _ = service.post("/feedback", {"request_id": body["request_id"], "entity_id": body["results"][0]["id"], "event": "click"})
    assert status == 200
    assert service.post("/search", {"query": "", "k": 5})[0] == 422


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_info_logs_hold_no_query_text_or_user_ids(data_dir, own_redis, log_format):
    service = Service(data_dir, own_redis.url)
    service.env["LTRR_LOG_FORMAT"] = log_format
    service.args = ["--verbose"]
    service.start()
    try:
        _traffic(service)
    finally:
        log = service.stop()
    lines = [line for line in log.splitlines() if line.strip()]
    for secret in ("midnight", "saxophone", USER, "sess-raw-99"):
        assert secret not in log, f"{secret!r} reached the log"
    if log_format == "json":
        records = [json.loads(line) for line in lines if line.startswith("{")]
        assert records and {"time", "level", "logger", "message", "pid"} <= set(records[0])
        assert any(record["level"] == "INFO" for record in records), "INFO lines are logged with --verbose"
        assert any(record["logger"].startswith("uvicorn") for record in records), "uvicorn's lines are JSON too"
        stray = [line for line in lines if not line.startswith("{")]
        assert all(line.startswith("ltrr ") for line in stray), f"only the CLI's own status lines are not JSON: {stray}"
