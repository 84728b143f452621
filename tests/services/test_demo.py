"""`make demo` runs `ltrr serve --with-ingest`: the service and its ingest child learn from the page's clicks."""

from __future__ import annotations

import json
import signal
import subprocess
import time

from service_process import LTRR, Service


def test_serve_with_ingest_applies_clicks_and_stops_its_child(data_dir, redis_url):
    service = Service(data_dir, redis_url)
    service.env.update({"LTRR_ATTRIBUTION_WINDOW_S": "1", "LTRR_INGEST_LATENESS_S": "0"})
    service.process = None
    command = [LTRR, "serve", "--with-ingest"]
    service.log = open(service.log_path, "a")
    service.process = subprocess.Popen(command, env=service.env, stdout=subprocess.DEVNULL, stderr=service.log, text=True)
    try:
        deadline = time.monotonic() + 180
        while not _up(service):
            assert service.process.poll() is None, service.log_path.read_text()[-3000:]
            assert time.monotonic() < deadline
            time.sleep(0.2)
        status, body = service.post("/search", {"query": "jazz", "k": 5})
        assert status == 200
        service.post("/feedback", {"request_id": body["request_id"], "entity_id": body["results"][0]["id"], "event": "click"})
        applied = 0
        deadline = time.monotonic() + 90
        while applied < 1:
            assert time.monotonic() < deadline, "the ingest child never applied the search"
            time.sleep(1)
            stats = subprocess.run([LTRR, "stats", "--json"], env=service.env, capture_output=True, text=True, timeout=60)
            applied = json.loads(stats.stdout)["feedback_applied"] if stats.returncode == 0 else 0
        children = subprocess.run(["pgrep", "-P", str(service.process.pid)], capture_output=True, text=True).stdout.split()
        assert children, "ingest runs as a child process"
    finally:
        log = service.stop(signal.SIGTERM)
    assert service.process.returncode == 0, log[-3000:]
    for pid in children:
        assert subprocess.run(["kill", "-0", pid], capture_output=True).returncode != 0, "the ingest child stopped with the service"


def _up(service: Service) -> bool:
    try:
        service.health()
        return True
    except OSError:
        return False
