"""Settings that exist: every LTRR_ name anywhere in the project is a setting, `ltrr config` lists them
without a data dir or Redis, secrets stay hidden, bad values fail at start naming the variable."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from contracts import ConfigError
from services.settings import (
    Settings,
    describe_settings,
    env_name,
    load_settings,
    warn_unknown_variables,
)

ROOT = Path(__file__).resolve().parents[2]
LTRR = str(Path(sys.executable).with_name("ltrr"))
NAME = re.compile(r"\bLTRR_[A-Z0-9_]*[A-Z0-9]\b")


def _project_files() -> list[Path]:
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    keep = (".py", ".md", ".yml", ".toml", ".html")
    return [ROOT / name for name in tracked if name.endswith(keep) or name in ("Makefile", "Dockerfile")]


def _mentioned_names() -> dict[str, str]:
    """Every LTRR_ name in the project's files (code, messages, README, compose file), with one place it occurs."""
    found: dict[str, str] = {}
    for path in _project_files():
        if not path.exists():
            continue
        for name in NAME.findall(path.read_text(encoding="utf-8", errors="replace")):
            found.setdefault(name, str(path.relative_to(ROOT)))
    return found


def _clean_env(**extra: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("LTRR_")}
    env.update(extra)
    return env


def test_every_ltrr_name_in_the_project_is_a_setting():
    settings = {env_name(field) for field in Settings.model_fields}
    mentioned = _mentioned_names()
    assert len(mentioned) > 20, "the scan found the names the README and code use"
    unknown = {name: where for name, where in mentioned.items() if name not in settings}
    assert not unknown, f"LTRR_ names that are no setting: {unknown}"


def test_config_json_lists_every_setting_without_a_data_dir_or_redis(tmp_path):
    env = _clean_env(LTRR_DATA_DIR=str(tmp_path / "nothing-here"), LTRR_API_KEY="s3cret-key",
                     LTRR_REDIS_URL="redis://:hunter2@db.example:6379/0", LTRR_PORT="9001")
    completed = subprocess.run([LTRR, "config", "--json"], capture_output=True, text=True, env=env, timeout=120)
    assert completed.returncode == 0, completed.stderr
    config = json.loads(completed.stdout)
    assert set(_mentioned_names()) <= set(config)
    assert set(config) == {env_name(field) for field in Settings.model_fields}
    assert config["LTRR_PORT"] == {"value": 9001, "source": "environment", "description": config["LTRR_PORT"]["description"]}
    assert config["LTRR_SEED"]["source"] == "default"
    assert config["LTRR_API_KEY"]["value"] == "set"
    assert config["LTRR_REDIS_URL"]["value"] == "redis://***@db.example:6379/0"
    assert "s3cret-key" not in completed.stdout + completed.stderr and "hunter2" not in completed.stdout + completed.stderr
    assert not (tmp_path / "nothing-here").exists(), "config creates nothing"


def test_config_table_names_each_variable_and_its_source(tmp_path):
    completed = subprocess.run([LTRR, "config"], capture_output=True, text=True, timeout=120,
                               env=_clean_env(LTRR_POLICY="uniform", COLUMNS="160"))
    assert completed.returncode == 0, completed.stderr
    line = next(line for line in completed.stdout.splitlines() if "LTRR_POLICY" in line)
    assert "uniform" in line and "environment" in line


def test_unknown_variable_is_warned_about_with_the_closest_setting(caplog):
    typo = "LTRR_" + "REDIS_ULR"  # spelled in two parts so the project-wide scan above does not count it
    with caplog.at_level(logging.WARNING):
        unknown = warn_unknown_variables({typo: "redis://x", "LTRR_PORT": "1", "HOME": "/"})
    assert unknown == [typo]
    assert f"{typo} is not an ltrr setting" in caplog.text and "did you mean LTRR_REDIS_URL?" in caplog.text


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("LTRR_BACKEND", "solr", "LTRR_BACKEND: Input should be 'embedded' or 'opensearch'"),
        ("LTRR_DENSE_INDEX", "ivf", "LTRR_DENSE_INDEX: Input should be 'flat' or 'hnsw'"),
        ("LTRR_POLICY", "fixed:oops", "LTRR_POLICY: cannot parse the plan 'oops'"),
        ("LTRR_POLICY", "greedy", "LTRR_POLICY: expected vw, uniform or fixed:<plan>"),
        ("LTRR_PORT", "70000", "LTRR_PORT: Input should be less than or equal to 65535"),
        ("LTRR_BANDIT_EPSILON", "2", "LTRR_BANDIT_EPSILON: Input should be less than or equal to 1"),
    ],
)
def test_invalid_values_fail_at_start_naming_the_variable(monkeypatch, variable, value, expected):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as error:
        load_settings()
    assert str(error.value).startswith(expected)


def test_an_option_is_named_as_the_option():
    with pytest.raises(ConfigError, match=r"^--port: Input should be less than or equal to 65535 \(got 70000\)"):
        load_settings(port=70000)


def test_secrets_never_show():
    settings = Settings(api_key="k", redis_url="redis://user:pw@h:1/0", opensearch_url="https://admin:pw@os:9200")
    values = {row["name"]: row["value"] for row in describe_settings(settings, environ={})}
    assert values["LTRR_API_KEY"] == "set"
    assert values["LTRR_REDIS_URL"] == "redis://***@h:1/0" and values["LTRR_OPENSEARCH_URL"] == "https://***@os:9200"
    assert {row["name"]: row["value"] for row in describe_settings(Settings(), environ={})}["LTRR_API_KEY"] == "unset"


def test_the_default_exploration_setting_is_the_policy_default():
    from bandit.vw_policy import DEFAULT_EXPLORATION, EXPLORATIONS
    from services.settings import Settings

    assert Settings().bandit_exploration == DEFAULT_EXPLORATION
    assert set(Settings.model_fields["bandit_exploration"].annotation.__args__) == set(EXPLORATIONS)
