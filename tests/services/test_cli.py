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
    "index": "build the lexical (tantivy) and dense (FAISS) indexes",
    "serve": "Start the search service",
    "ingest": "Join feedback to impressions",
    "replay": "Estimate a policy's average reward on logged traffic",
    "simulate": "Closed loop on the demo catalog",
    "bench": "Measure retrieval quality and latency from outside",
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
    assert f"{tmp_path / 'events' / 'events.jsonl'} does not exist" in message


def test_console_script_is_installed():
    script = Path(sys.executable).with_name("ltrr")
    assert script.exists(), f"no console script at {script}; run `pip install -e .`"

    completed = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=120)

    assert completed.returncode == 0, completed.stderr
    assert "serve" in completed.stdout
