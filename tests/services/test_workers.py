"""`ltrr serve --workers 2`: two processes on one port, sharing Redis; feedback to either counts; a killed
worker comes back; an entity write taken by either reaches both, also when its worker dies mid-write;
without Redis the command refuses to start."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request

from service_process import LTRR, Service

from services.failpoints import SERVE_VARIABLE


def _health_reports(service: Service, attempts: int) -> list[dict]:
    """`/healthz` bodies from up to ``attempts`` new connections (either worker may take each). A
    connection reset is skipped, not raised: a connection the kernel queued on a worker's listening socket
    just as that worker was killed is reset with it (SO_REUSEPORT), and these polls wait for the state after."""
    reports = []
    for _ in range(attempts):
        try:
            with urllib.request.urlopen(service.base + "/healthz", timeout=10) as response:
                reports.append(json.loads(response.read()))
        except urllib.error.HTTPError:
            raise
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.1)
    return reports


def _worker_ids(service: Service, attempts: int = 60) -> set[int]:
    return {report["worker"] for report in _health_reports(service, attempts)}


def _children(pid: int) -> list[int]:
    return [int(child) for child in subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()]


def test_two_workers_share_one_port_and_redis(data_dir, redis_url):
    service = Service(data_dir, redis_url)
    service.env.update({"LTRR_WORKERS": "2", "LTRR_API_KEY": "k"})
    service.start()
    try:
        deadline = time.monotonic() + 120
        while len(seen := _worker_ids(service, 10)) < 2:
            assert time.monotonic() < deadline, f"only workers {seen} answered"
        for index in range(10):  # search and feedback on separate connections: either worker may take either
            status, body = service.post("/search", {"query": f"jazz {index}", "k": 3})
            assert status == 200 and body["results"]
            status, answer = service.post("/feedback", {"request_id": body["request_id"], "entity_id": body["results"][0]["id"], "event": "click"})
            assert status == 200, answer

        with urllib.request.urlopen(service.base + "/metrics", timeout=10) as response:  # whichever worker answers
            metrics = response.read().decode()
        totals = [line for line in metrics.splitlines() if line.startswith('ltrr_stage_seconds_count{stage="total"}')]
        assert totals and float(totals[0].rsplit(" ", 1)[1]) == 10, "the scrape sums both workers' searches"
        assert 'ltrr_feedback_total{event="click"} 10.0' in metrics

        workers = _children(service.process.pid)
        assert len(workers) == 2
        os.kill(workers[0], signal.SIGKILL)
        deadline = time.monotonic() + 120
        while True:
            replacement = [pid for pid in _children(service.process.pid) if pid not in workers]
            if replacement and _worker_ids(service, 20) == {0, 1}:
                break
            assert time.monotonic() < deadline, "the killed worker was not started again"
            time.sleep(0.5)
    finally:
        log = service.stop()
    assert service.process.returncode == 0, log[-3000:]
    for pid in workers[1:] + replacement:
        assert subprocess.run(["kill", "-0", str(pid)], capture_output=True).returncode != 0, "every worker stopped with the service"


def test_several_workers_without_redis_are_refused_in_one_line(data_dir, tmp_path):
    env = {name: value for name, value in os.environ.items() if not name.startswith("LTRR_")}
    env.update({"LTRR_START_LOCAL_REDIS": "false", "HF_HUB_OFFLINE": "1"})
    completed = subprocess.run([LTRR, "serve", "--workers", "2", "--data-dir", str(data_dir), "--port", "18997"],
                               env=env, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 2, completed.stderr
    errors = [line for line in completed.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "--workers" in errors[0] and "Redis" in errors[0], completed.stderr


def test_workers_stopping_on_a_configuration_error_stop_the_service(data_dir, redis_url):
    """A worker that exits on a configuration error is not started again and again: the service stops, exit 2."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("LTRR_")}
    env.update({"LTRR_REDIS_URL": redis_url, "LTRR_FALLBACK_STRATEGIES": "nonsense", "HF_HUB_OFFLINE": "1", "LTRR_NO_PROGRESS": "1"})
    completed = subprocess.run([LTRR, "serve", "--workers", "2", "--data-dir", str(data_dir), "--port", "18996"],
                               env=env, capture_output=True, text=True, timeout=180)
    assert completed.returncode == 2, completed.stderr[-2000:]
    assert "LTRR_FALLBACK_STRATEGIES" in completed.stderr and "Traceback" not in completed.stderr


NEW_ENTITIES = [
    {"id": f"track:shared-{index}", "type": "track", "title": f"Vexlomar Quintrelle Serenade {index}", "artist": "Odalys Pemberthwaite",
     "description": f"A rare serenade number {index} by Odalys Pemberthwaite.", "popularity": 0.3}
    for index in range(6)
]


def _entity_counts(service: Service, attempts: int = 30) -> dict[int, set[int]]:
    """Each worker's catalog size, as its own /healthz says (a new connection each time)."""
    counts: dict[int, set[int]] = {}
    for body in _health_reports(service, attempts):
        counts.setdefault(body["worker"], set()).add(body["entities"])
    return counts


def _strategies_finding(service: Service, entity: dict) -> set[str]:
    status, body = service.post("/search", {"query": entity["title"], "k": 5})
    assert status == 200, body
    return {source["strategy"] for item in body["results"] if item["id"] == entity["id"] for source in item["sources"]}


def test_an_entity_write_reaches_every_worker_also_when_its_worker_dies_mid_write(data_dir, redis_url):
    """The worker that takes `POST /entities` is SIGKILLed after the journal and the first index: the other
    worker (or the restarted one) finishes the write, and both serve every new entity from every strategy;
    a DELETE through either removes it from both."""
    service = Service(data_dir, redis_url)
    service.env.update({"LTRR_WORKERS": "2", "LTRR_API_KEY": "k", SERVE_VARIABLE: "catalog_one_index"})
    service.start()
    try:
        deadline = time.monotonic() + 120
        while len(before := _entity_counts(service, 10)) < 2:
            assert time.monotonic() < deadline, f"only workers {set(before)} answered"
        assert all(sizes == {400} for sizes in before.values()), before
        request = urllib.request.Request(service.base + "/entities", data=json.dumps({"entities": NEW_ENTITIES}).encode(),
                                         headers={"content-type": "application/json", "x-api-key": "k"})
        try:
            urllib.request.urlopen(request, timeout=60)
            raise AssertionError("the write was answered although its worker was to die mid-write")
        except urllib.error.HTTPError as error:
            raise AssertionError(f"the write was refused: {error.code} {error.read()!r}") from error
        except (urllib.error.URLError, ConnectionError):
            pass
        deadline = time.monotonic() + 120
        while (counts := _entity_counts(service)) != {0: {406}, 1: {406}}:
            assert time.monotonic() < deadline, f"workers' catalog sizes: {counts}"
            time.sleep(0.5)
        for entity in NEW_ENTITIES:  # each search on a new connection: either worker answers
            assert {"lexical", "dense"} <= _strategies_finding(service, entity), entity["id"]

        gone = NEW_ENTITIES[0]
        deleted = urllib.request.Request(service.base + "/entities/" + gone["id"], method="DELETE", headers={"x-api-key": "k"})
        with urllib.request.urlopen(deleted, timeout=30) as response:
            assert response.status == 200
        deadline = time.monotonic() + 60
        while (counts := _entity_counts(service)) != {0: {405}, 1: {405}}:
            assert time.monotonic() < deadline, f"workers' catalog sizes after the delete: {counts}"
            time.sleep(0.5)
        for _ in range(10):
            assert not _strategies_finding(service, gone)
    finally:
        log = service.stop()
    assert service.process.returncode == 0, log[-3000:]


def _models_by_worker(service: Service, attempts: int = 40) -> dict[int, str]:
    return {report["worker"]: report["models"]["ranker"] for report in _health_reports(service, attempts)}


def test_every_worker_swaps_in_a_published_ranker_and_none_dies_of_a_damaged_one(data_dir, redis_url):
    """What an operator does to a live `ltrr serve --workers 2`: publish a good ranker (both workers serve it
    within seconds), then a ranker whose file LightGBM crashes on (its checksum agrees: saved damaged). The
    workers check it in a child process, keep serving the good one and are never restarted; a restart of the
    service with CURRENT still naming the damaged one serves the newest good version and says so."""
    from model_files import publish_ranker, truncate_mid_tree

    from contracts.artifacts import ModelStore
    from services.settings import Settings

    strategies = tuple(Settings(data_dir=data_dir).strategies)
    models = ModelStore(data_dir / "models")
    service = Service(data_dir, redis_url)
    service.env.update({"LTRR_WORKERS": "2", "LTRR_RELOAD_INTERVAL_S": "1"})
    service.start()
    try:
        deadline = time.monotonic() + 120
        while len(_worker_ids(service, 10)) < 2:
            assert time.monotonic() < deadline, "both workers answer"
        workers = sorted(_children(service.process.pid))
        good = publish_ranker(models, 1, strategies)
        deadline = time.monotonic() + 60
        while (serving := _models_by_worker(service)) != {0: good, 1: good}:
            assert time.monotonic() < deadline, f"every worker serves {good}: {serving}"
            time.sleep(0.5)

        broken = publish_ranker(models, 2, strategies)
        truncate_mid_tree(models.directory("ranker", broken), recompute_checksum=True)
        time.sleep(6)  # several reload intervals: each worker has checked the new version by now
        assert _models_by_worker(service) == {0: good, 1: good}
        assert sorted(_children(service.process.pid)) == workers, "no worker died (and was restarted)"
        status, body = service.post("/search", {"query": "jazz", "k": 5})
        assert status == 200 and body["results"] and body["model_versions"]["ranker"] == good
    finally:
        log = service.stop()
    assert service.process.returncode == 0, log[-3000:]
    assert models.current("ranker") == broken, "the damaged version is still what CURRENT names"

    before_restart = len(log)
    service.start()
    try:
        deadline = time.monotonic() + 120
        while len(serving := _models_by_worker(service, 20)) < 2:
            assert time.monotonic() < deadline, f"both workers answer after the restart: {serving}"
        assert serving == {0: good, 1: good}
    finally:
        log = service.stop()
    restarted = log[before_restart:]
    assert broken in restarted and good in restarted, "the restart says it fell back, naming both versions"
