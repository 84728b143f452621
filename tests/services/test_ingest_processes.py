"""`ltrr ingest` as separate processes on one Redis: SIGKILLed at each commit boundary and restarted, fed
the same events twice, or started while another ingester runs, the learned state must reconcile exactly
with one clean run: every figure of `ltrr stats` and a digest of every key ingest writes."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from services.eventstream import STREAM, read_stream
from services.ingest.failpoints import POINTS, VARIABLE
from services.search.stack import open_stack
from services.settings import Settings

LTRR = str(Path(sys.executable).with_name("ltrr"))
QUERIES = ("jazz", "calm piano", "rock anthems", "sad songs", "night drive", "summer hits", "blues guitar", "focus music")
RECONCILED = ("impressions_applied", "feedback_applied", "feedback_late", "orphan_feedback", "memory", "bandit_updates",
              "ranker_training_rows", "ranker_rows_kept", "pending_impressions")


@pytest.fixture(scope="module")
def traffic(tmp_path_factory, built_data_dir, embedder, redis_proc) -> list[str]:
    """About 300 impressions and their clicks, logged by the real pipeline into the stream, as JSON lines."""
    import shutil

    url = f"redis://{redis_proc.host}:{redis_proc.port}/0"
    client = redis.Redis.from_url(url, decode_responses=True)
    client.flushall()
    data_dir = tmp_path_factory.mktemp("traffic") / "data"
    shutil.copytree(built_data_dir, data_dir)
    stack = open_stack(Settings(data_dir=data_dir, redis_url=url, start_local_redis=False), embedder=embedder)
    try:
        for number in range(300):
            outcome = stack.pipeline.search(QUERIES[number % len(QUERIES)], k=5, user_id=f"user{number % 17}")
            for position, item in enumerate(outcome.results[:2], 1):
                if (number + position) % 3 == 0:
                    stack.pipeline.feedback(outcome.request_id, item.entity_id, "click" if position == 1 else "play", position)
    finally:
        stack.close()
    lines = [text for _, text in read_stream(client)]
    client.flushall()
    return lines


def _environment(redis_url: str, **extra: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("LTRR_") and name != VARIABLE}
    env.update({"LTRR_REDIS_URL": redis_url, "LTRR_NO_PROGRESS": "1", "HF_HUB_OFFLINE": "1", **extra})
    return env


def _ingest(data_dir: Path, redis_url: str, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([LTRR, "ingest", "--data-dir", str(data_dir), *args], env=_environment(redis_url, **extra),
                          capture_output=True, text=True, timeout=120)


def _stats(data_dir: Path, redis_url: str) -> dict:
    completed = subprocess.run([LTRR, "stats", "--json", "--data-dir", str(data_dir)], env=_environment(redis_url),
                               capture_output=True, text=True, timeout=60)
    assert completed.returncode == 0, completed.stderr
    figures = json.loads(completed.stdout)
    return {name: figures[name] for name in RECONCILED}


def _digest(redis_url: str) -> str:
    """Every key ingest writes (memory index, counters, markers, rows), values normalized; not the stream or the lease."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    state = {}
    for key in sorted(client.scan_iter(count=1000)):
        if key in (STREAM, "ltrr:ingest:lease"):
            continue
        kind = client.type(key)
        if kind == "hash":
            state[key] = sorted((field, _number(value)) for field, value in client.hgetall(key).items())
        elif kind == "zset":
            state[key] = sorted((member, _number(score)) for member, score in client.zrange(key, 0, -1, withscores=True))
        elif kind == "set":
            state[key] = sorted(client.smembers(key))
        elif kind == "list":
            state[key] = client.lrange(key, 0, -1)
        else:
            state[key] = client.get(key)
    return hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()


def _number(value: object) -> object:
    try:
        return float(f"{float(value):.12g}")  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return value


def _load(redis_url: str, lines: list[str]) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    client.flushall()
    for line in lines:
        client.xadd(STREAM, {"e": line})


@pytest.fixture(scope="module")
def clean_run(traffic, redis_proc, tmp_path_factory) -> tuple[dict, str, list[str]]:
    url = f"redis://{redis_proc.host}:{redis_proc.port}/0"
    _load(url, traffic)
    data_dir = tmp_path_factory.mktemp("clean")
    completed = _ingest(data_dir, url, "--flush")
    assert completed.returncode == 0, completed.stderr
    archived = [line for path in sorted((data_dir / "events" / "archive").glob("*.jsonl")) for line in path.read_text().splitlines()]
    return _stats(data_dir, url), _digest(url), archived


def test_the_clean_run_applied_the_traffic(clean_run, traffic):
    figures, _, archived = clean_run
    impressions = sum('"kind":"impression"' in line for line in traffic)
    assert figures["impressions_applied"] == impressions >= 290 and figures["bandit_updates"] == impressions
    assert figures["feedback_applied"] == len(traffic) - impressions > 50
    assert figures["pending_impressions"] == 0 and figures["ranker_training_rows"] > 50
    assert archived == traffic, "the archive holds every event once, in stream order"


@pytest.mark.parametrize("point", POINTS)
def test_a_kill_at_each_commit_boundary_reconciles_with_one_clean_run(point, traffic, clean_run, redis_url, tmp_path):
    _load(redis_url, traffic)
    killed = _ingest(tmp_path, redis_url, "--flush", **{VARIABLE: point})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    started = time.monotonic()
    resumed = _ingest(tmp_path, redis_url, "--flush")
    assert resumed.returncode == 0, resumed.stderr
    assert "waiting up to" in " ".join(resumed.stderr.split()), "the killed ingester's lease had to lapse first"
    assert time.monotonic() - started < 30
    figures, digest, archived = clean_run
    assert _stats(tmp_path, redis_url) == figures
    assert _digest(redis_url) == digest
    assert [line for path in sorted((tmp_path / "events" / "archive").glob("*.jsonl")) for line in path.read_text().splitlines()] == archived


def test_the_same_archive_ingested_twice_counts_once(traffic, clean_run, redis_url, tmp_path):
    _load(redis_url, traffic)
    assert _ingest(tmp_path, redis_url, "--flush").returncode == 0
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    for path in sorted((tmp_path / "events" / "archive").glob("*.jsonl")):
        for line in path.read_text().splitlines():
            client.xadd(STREAM, {"e": line})
    again = _ingest(tmp_path / "second", redis_url, "--flush")  # even from a fresh data directory
    assert again.returncode == 0, again.stderr
    figures, digest, _ = clean_run
    assert _stats(tmp_path, redis_url) == figures
    assert _digest(redis_url) == digest


def test_two_ingesters_never_both_learn(traffic, clean_run, redis_url, tmp_path):
    _load(redis_url, traffic)
    first = subprocess.Popen([LTRR, "ingest", "--follow", "1", "--data-dir", str(tmp_path)], env=_environment(redis_url),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        client = redis.Redis.from_url(redis_url, decode_responses=True)
        deadline = time.monotonic() + 30
        while client.get("ltrr:ingest:lease") is None and time.monotonic() < deadline:
            time.sleep(0.1)
        second = _ingest(tmp_path, redis_url, "--flush")
        assert second.returncode == 2
        assert "another ingester holds the lease and is alive" in " ".join(second.stderr.split()), second.stderr
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        third = _ingest(tmp_path, redis_url, "--flush")
        assert third.returncode == 0, third.stderr
    finally:
        if first.poll() is None:
            first.kill()
    figures, digest, _ = clean_run
    assert _stats(tmp_path, redis_url) == figures
    assert _digest(redis_url) == digest


def test_ingest_follow_outlives_a_redis_restart(traffic, clean_run, tmp_path):
    """Redis killed mid-run and started again on its own files: `ingest --follow` waits it out, never exits,
    and ends with exactly the clean run's state."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = ["redis-server", "--port", str(port), "--dir", str(tmp_path), "--appendonly", "yes", "--appendfsync", "always", "--save", ""]
    url = f"redis://127.0.0.1:{port}/0"

    def start_redis() -> subprocess.Popen:
        server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                redis.Redis.from_url(url).ping()
                return server
            except redis.ConnectionError:
                time.sleep(0.05)
        raise AssertionError("redis-server did not start")

    def applied() -> int:
        return int(redis.Redis.from_url(url, decode_responses=True).hget("ltrr:ingest:stats", "impressions_applied") or 0)

    def wait_for(predicate, seconds: float = 60.0) -> None:
        deadline = time.monotonic() + seconds
        while not predicate():
            assert time.monotonic() < deadline, "timed out"
            time.sleep(0.2)

    # Split before an impression: its feedback follows it in the stream, so no impression is cut from its clicks.
    half = next(index for index in range(len(traffic) // 2, len(traffic)) if '"kind":"impression"' in traffic[index])
    server = start_redis()
    _load(url, traffic[:half])
    # Short windows, so the follow loop closes them by the clock (the clicks came within a second of their search).
    environment = _environment(url, LTRR_ATTRIBUTION_WINDOW_S="1", LTRR_INGEST_LATENESS_S="0")
    ingest = subprocess.Popen([LTRR, "ingest", "--follow", "1", "--data-dir", str(tmp_path / "data")], env=environment,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        first_half = sum('"kind":"impression"' in line for line in traffic[:half])
        wait_for(lambda: applied() >= first_half)
        server.kill()
        server.wait(timeout=10)
        time.sleep(4)
        assert ingest.poll() is None, "ingest --follow keeps running while Redis is down"
        server = start_redis()
        client = redis.Redis.from_url(url, decode_responses=True)
        for line in traffic[half:]:
            client.xadd(STREAM, {"e": line})
        wait_for(lambda: applied() >= clean_run[0]["impressions_applied"])
        time.sleep(2)  # the feedback of the last impressions, then one more pass
        ingest.send_signal(signal.SIGTERM)
        output = ingest.communicate(timeout=30)[0]
        assert ingest.returncode == 0, output
        assert "Redis unreachable" in output
    finally:
        if ingest.poll() is None:
            ingest.kill()
        figures, digest, _ = clean_run
        try:
            assert _stats(tmp_path / "data", url) == figures
            assert _digest(url) == digest
        finally:
            server.kill()


def test_ingest_follow_started_before_redis_waits_for_it(traffic, clean_run, tmp_path):
    """A deployment's ingest job may start before its Redis: `--follow` waits with backoff (it does not exit
    with an error and crash-loop), then learns the traffic; without `--follow` it is one error line."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"redis://127.0.0.1:{port}/0"
    once = _ingest(tmp_path / "once", url)
    assert once.returncode == 2 and "Traceback" not in once.stderr, once.stderr
    assert [line for line in once.stderr.splitlines() if line.startswith("error:")] == [
        "error: LTRR_REDIS_URL is set but Redis does not answer there (no answer to PING); start Redis there or fix the URL"]

    environment = _environment(url, LTRR_ATTRIBUTION_WINDOW_S="1", LTRR_INGEST_LATENESS_S="0")
    waiting = subprocess.Popen([LTRR, "ingest", "--follow", "1", "--data-dir", str(tmp_path / "waiting")], env=environment,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(3)
    waiting.send_signal(signal.SIGTERM)  # while it waits for Redis: a clean stop
    output = waiting.communicate(timeout=10)[0]
    assert waiting.returncode == 0 and "Traceback" not in output, output

    ingest = subprocess.Popen([LTRR, "ingest", "--follow", "1", "--data-dir", str(tmp_path / "data")], env=environment,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    server = None
    try:
        time.sleep(4)
        assert ingest.poll() is None, "ingest --follow waits for Redis instead of exiting"
        server = subprocess.Popen(["redis-server", "--port", str(port), "--dir", str(tmp_path), "--save", ""],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis.from_url(url, decode_responses=True)
        deadline = time.monotonic() + 30
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)
        for line in traffic:
            client.xadd(STREAM, {"e": line})
        deadline = time.monotonic() + 90
        while int(client.hget("ltrr:ingest:stats", "impressions_applied") or 0) < clean_run[0]["impressions_applied"]:
            assert time.monotonic() < deadline and ingest.poll() is None, "ingest did not apply the traffic once Redis answered"
            time.sleep(0.2)
        ingest.send_signal(signal.SIGTERM)
        output = ingest.communicate(timeout=30)[0]
        assert ingest.returncode == 0, output
        assert "ingest: Redis unreachable" in output and "retrying in" in output, output
    finally:
        if ingest.poll() is None:
            ingest.kill()
        if server is not None:
            server.kill()
            server.wait(timeout=10)
