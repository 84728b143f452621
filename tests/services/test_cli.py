"""The ``ltrr`` command: help for every subcommand, and the errors that name the fix (exit code 2)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.cli import app

SUBCOMMANDS = {
    "config": "Print every setting",
    "index": "build the lexical (tantivy) and dense (FAISS) indexes",
    "serve": "Start the search service",
    "ingest": "Read the event stream",
    "stats": "What the learning loop has applied",
    "replay": "Estimate a policy's average reward on logged traffic",
    "simulate": "Closed loop: simulated users search, click, play",
    "bench": "Measure retrieval quality and latency from outside",
    "models": "The saved bandit and ranker versions",
}


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def clean_env() -> dict[str, str | None]:
    """Unset every LTRR_* variable of the calling shell (None removes it for the invocation); wide output."""
    env: dict[str, str | None] = {name: None for name in os.environ if name.startswith("LTRR_")}
    env.update({"COLUMNS": "200", "NO_COLOR": "1", "LTRR_NO_PROGRESS": "1"})
    return env


def _flat(text: str) -> str:
    """Help text with rich's box drawing and line wrapping folded away."""
    return " ".join(text.replace("│", " ").split())


def test_app_help_lists_every_subcommand(runner, clean_env):
    result = runner.invoke(app, ["--help"], env=clean_env)

    assert result.exit_code == 0, result.output
    assert "learning to rank and retrieve" in _flat(result.output)
    for name in SUBCOMMANDS:
        assert name in result.output


@pytest.mark.parametrize("name, description", SUBCOMMANDS.items())
def test_subcommand_help_shows_its_description(runner, clean_env, name, description):
    result = runner.invoke(app, [name, "--help"], env=clean_env)

    assert result.exit_code == 0, result.output
    assert description in _flat(result.output)


@pytest.mark.parametrize("redis_url", [None, ""], ids=["unset", "empty"])
def test_ingest_without_redis_exits_2_naming_ltrr_redis_url(runner, clean_env, tmp_path, redis_url):
    result = runner.invoke(app, ["ingest", "--data-dir", str(tmp_path / "fresh")], env={**clean_env, "LTRR_REDIS_URL": redis_url})

    assert result.exit_code == 2, result.output
    assert "LTRR_REDIS_URL" in _flat(result.output)


def test_replay_without_a_log_exits_2_naming_log(runner, clean_env, tmp_path):
    result = runner.invoke(app, ["replay", "--data-dir", str(tmp_path)], env=clean_env)

    assert result.exit_code == 2, result.output
    message = _flat(result.output)
    assert "--log" in message
    assert f"no events under {tmp_path / 'events'}" in message


def test_console_script_is_installed():
    script = Path(sys.executable).with_name("ltrr")
    assert script.exists(), f"no console script at {script}; run `pip install -e .`"

    completed = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=120)

    assert completed.returncode == 0, completed.stderr
    assert "serve" in completed.stdout


def _run_ltrr(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {name: value for name, value in os.environ.items() if not name.startswith("LTRR_")}
    clean.update({"COLUMNS": "80", "LTRR_NO_PROGRESS": "1", **env})
    script = Path(sys.executable).with_name("ltrr")
    return subprocess.run([str(script), *args], capture_output=True, text=True, env=clean, timeout=180, cwd=tmp_path)


def _bad_catalog(tmp_path: Path) -> Path:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": "t1", "type": "track", "title": "ok"}\n{"id": 7, "title": "no type"}\n')
    return path


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (["index", "--catalog", "bad.jsonl"], {}, "LTRR_CATALOG_PATH (--catalog): "),
        (["index", "--dense-index", "ivf"], {}, "--dense-index: Input should be 'flat' or 'hnsw'"),
        (["serve", "--port", "70000"], {}, "--port: Input should be less than or equal to 65535"),
        (["serve"], {"LTRR_POLICY": "fixed:oops"}, "LTRR_POLICY: cannot parse the plan 'oops'"),
        (["replay", "--policy", "fixed:garbage", "--log", "log.jsonl"], {}, "--policy: cannot parse the plan 'garbage'"),
        (["ingest"], {"LTRR_REDIS_URL": "redis://:pw@127.0.0.1:1/0"}, "LTRR_REDIS_URL is set but Redis does not answer there (no answer to PING)"),
        (["simulate", "--queries", "10"], {"LTRR_BACKEND": "solr"}, "LTRR_BACKEND: Input should be 'embedded' or 'opensearch'"),
        (["config"], {"LTRR_SEED": "seven"}, "LTRR_SEED: Input should be a valid integer"),
        (["ingest"], {"LTRR_REDIS_URL": "redis://127.0.0.1:1/99"}, "LTRR_REDIS_URL is set but Redis does not answer there"),
        (["index", "--catalog", "latin1.jsonl"], {}, "latin1.jsonl:1: not UTF-8"),
        (["index"], {"LTRR_DATA_DIR": "a-file"}, "cannot use"),
        (["simulate", "--queries", "10"], {"LTRR_PLAY_WEIGHT": "inf"}, "LTRR_PLAY_WEIGHT: Input should be a finite number"),
        (["bench", "retrieval", "--dataset", "nowhere", "--out", "o.json"], {}, "nowhere"),
    ],
    ids=["index-bad-catalog", "index-bad-dense", "serve-bad-port", "serve-bad-policy", "replay-bad-policy",
         "ingest-dead-redis", "simulate-bad-backend", "config-bad-seed", "ingest-redis-bad-db", "index-not-utf8",
         "index-data-dir-is-a-file", "simulate-infinite-weight", "bench-missing-dataset"],
)
def test_bad_input_is_one_line_naming_the_option_and_exit_2(tmp_path, args, env, expected):
    _bad_catalog(tmp_path)
    (tmp_path / "log.jsonl").write_text("")
    (tmp_path / "latin1.jsonl").write_bytes('{"id": "t1", "type": "track", "title": "Caf\u00e9"}\n'.encode("latin-1"))
    (tmp_path / "a-file").write_text("not a directory")
    completed = _run_ltrr(args, tmp_path, **{"LTRR_DATA_DIR": str(tmp_path / "data"), **env})
    assert completed.returncode == 2, completed.stdout + completed.stderr
    assert "Traceback" not in completed.stderr
    errors = [line for line in completed.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, completed.stderr
    assert expected in " ".join(completed.stderr.split()), completed.stderr
    assert "pw@" not in completed.stderr


def test_every_subcommand_help_fits_80_columns_without_value_placeholders_on_flags(tmp_path):
    for args in (["--help"], ["config", "--help"], ["index", "--help"], ["serve", "--help"], ["ingest", "--help"],
                 ["replay", "--help"], ["simulate", "--help"], ["bench", "--help"], ["bench", "retrieval", "--help"],
                 ["models", "--help"], ["models", "list", "--help"], ["models", "rollback", "--help"]):
        completed = _run_ltrr(args, tmp_path)
        assert completed.returncode == 0, completed.stderr
        assert "<bool>" not in completed.stdout
        assert max(len(line) for line in completed.stdout.splitlines()) <= 80, completed.stdout
    verbose = _run_ltrr(["ingest", "--help"], tmp_path).stdout
    assert "-v, --verbose" in verbose and "Log what each stage does" in " ".join(verbose.split())


def test_serve_with_a_redis_that_answers_wrongly_is_one_line_before_uvicorn_starts(tmp_path, data_dir, redis_url):
    """A Redis that does not answer starts the service degraded (tests/services/test_faults.py); one that
    answers wrongly (here: a password it does not have) is a configuration error."""
    wrong = redis_url.replace("redis://", "redis://nobody:pw@")
    completed = _run_ltrr(["serve", "--data-dir", str(data_dir), "--port", "8999"], tmp_path, LTRR_REDIS_URL=wrong)
    assert completed.returncode == 2, completed.stderr
    assert "Traceback" not in completed.stderr and "pw@" not in completed.stderr
    errors = [line for line in completed.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: LTRR_REDIS_URL is set but Redis does not answer there (AuthenticationError"), errors


def test_serve_on_a_busy_port_is_one_line_naming_the_port(tmp_path, data_dir, redis_url):
    import socket

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        completed = _run_ltrr(["serve", "--data-dir", str(data_dir), "--port", str(port)], tmp_path, LTRR_REDIS_URL=redis_url)
    assert completed.returncode == 2, completed.stderr
    assert "Traceback" not in completed.stderr
    assert f"error: --port / LTRR_PORT: cannot listen on 127.0.0.1:{port}" in completed.stderr


def test_serve_announces_its_address_only_once_the_port_accepts(tmp_path, data_dir, redis_url):
    import signal
    import socket
    import time
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {name: value for name, value in os.environ.items() if not name.startswith("LTRR_")}
    env.update({"LTRR_REDIS_URL": redis_url, "LTRR_NO_PROGRESS": "1", "HF_HUB_OFFLINE": "1"})
    script = Path(sys.executable).with_name("ltrr")
    process = subprocess.Popen([str(script), "serve", "--data-dir", str(data_dir), "--port", str(port)],
                               stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 120
        assert process.stderr is not None
        for line in process.stderr:
            if "ltrr serving at" in line:
                break
            assert time.monotonic() < deadline, "no announcement within 120 s"
        else:
            pytest.fail(f"ltrr serve exited with {process.wait()} before announcing its address")
        assert f"http://127.0.0.1:{port}" in line
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            assert response.status == 200, "the port accepts as soon as the address is printed"
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0


def test_a_build_without_a_terminal_logs_progress_lines(tmp_path):
    completed = _run_ltrr(["index", "--demo-size", "120", "--data-dir", str(tmp_path / "data")], tmp_path, HF_HUB_OFFLINE="1")
    assert completed.returncode == 0, completed.stderr
    for label in ("lexical index (tantivy)", "dense index (all-MiniLM-L6-v2 + FAISS)"):
        assert f"{label}: started (120)" in completed.stderr
        assert f"{label}: done in" in completed.stderr
    assert "indexed 120 entities" in completed.stderr


def test_ingest_table_fits_80_columns(tmp_path, data_dir, redis_url):
    completed = _run_ltrr(["ingest", "--data-dir", str(data_dir)], tmp_path, LTRR_REDIS_URL=redis_url, HF_HUB_OFFLINE="1")
    assert completed.returncode == 0, completed.stderr
    assert "…" not in completed.stdout and max(len(line) for line in completed.stdout.splitlines()) <= 80
    for row in ("malformed lines", "finalized", "mean reward", "ranker rows", "policy"):
        assert row in completed.stdout


def test_a_short_simulation_still_reports_its_whole_run(tmp_path):
    completed = _run_ltrr(
        ["simulate", "--queries", "30", "--no-baselines", "--workers", "1", "--demo-size", "150", "--data-dir", str(tmp_path / "data")],
        tmp_path, HF_HUB_OFFLINE="1", COLUMNS="100",
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "learned (whole run)" in completed.stdout
    assert "run at least 1,000 queries" in " ".join(completed.stderr.split())


def test_events_export_writes_complete_unique_events_and_prints_only_json(tmp_path, data_dir, redis_url):
    import json as json_module

    from fastapi.testclient import TestClient

    from services.app import build_app
    from services.settings import Settings

    settings = Settings(data_dir=data_dir, redis_url=redis_url, reload_interval_s=0, start_local_redis=False)
    with TestClient(build_app(settings)) as client:
        body = client.post("/search", json={"query": "jazz", "k": 2}).json()
        feedback = client.post("/feedback", json={"request_id": body["request_id"], "entity_id": body["results"][0]["id"], "event": "click"}).json()
    archived = _run_ltrr(["ingest", "--flush", "--data-dir", str(data_dir)], tmp_path, LTRR_REDIS_URL=redis_url, HF_HUB_OFFLINE="1")
    assert archived.returncode == 0, archived.stderr
    log = sorted((data_dir / "events" / "archive").glob("events-*.jsonl"))[-1]
    lines = log.read_text().splitlines()
    with open(log, "a", encoding="utf-8") as handle:
        handle.write(lines[0] + "\n" + "{not json\n" + '{"kind":"feedback","half a line')
    completed = _run_ltrr(["events", "export", "--data-dir", str(data_dir), "--out", str(tmp_path / "export.jsonl")], tmp_path, HF_HUB_OFFLINE="1")
    assert completed.returncode == 0, completed.stderr
    assert json_module.loads(completed.stdout) == {"impressions": 1, "feedback": 1, "duplicates": 1, "malformed": 1, "out": str(tmp_path / "export.jsonl")}
    exported = [json_module.loads(line) for line in (tmp_path / "export.jsonl").read_text().splitlines()]
    impression, click = exported
    assert impression["kind"] == "impression" and impression["policy_version"] == body["model_versions"]["policy"]
    assert {"request_id", "time", "plan_name", "probability", "distribution", "draw", "page"} <= set(impression)
    assert click["event_id"] == feedback["event_id"] and isinstance(click["time"], float)
