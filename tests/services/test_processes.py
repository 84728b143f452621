"""The loop as users run it: `ltrr serve` and `ltrr ingest --follow 1` as separate processes on one Redis,
the service reloading every policy version ingest publishes. The chosen plans must follow the logged
distributions over all impressions and over the first impression after each reload (a Kolmogorov-Smirnov
test of the randomized probability integral transform), and every choice must follow from its draw."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import kstest

from contracts import choose_index

LTRR = str(Path(sys.executable).with_name("ltrr"))
SEARCHES = 300
QUERIES = ("jazz", "calm piano", "rock anthems", "sad songs", "night drive", "summer hits", "blues guitar", "focus music")


def _post(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def _pit(impression: dict, rng: np.random.Generator) -> float:
    """Uniform on [F(i-1), F(i)) for the chosen plan i: Uniform(0, 1) overall iff plans follow the distribution."""
    probabilities = list(impression["distribution"].values())
    index = list(impression["distribution"]).index(impression["plan_name"])
    below = float(sum(probabilities[:index]))
    return below + float(rng.random()) * probabilities[index]


def test_choices_follow_the_logged_distributions_across_reloads_in_separate_processes(data_dir, redis_url, tmp_path):
    _check_choices_across_reloads(data_dir, redis_url, tmp_path, searches=SEARCHES, versions=10)


@pytest.mark.slow
def test_choices_follow_the_logged_distributions_across_many_reloads(data_dir, redis_url, tmp_path):
    """The long version: at least 20 policy versions and 500 impressions (`make test-slow`)."""
    _check_choices_across_reloads(data_dir, redis_url, tmp_path, searches=700, versions=20)


def _check_choices_across_reloads(data_dir, redis_url, tmp_path, searches: int, versions: int) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {name: value for name, value in os.environ.items() if not name.startswith("LTRR_")}
    env.update({"LTRR_REDIS_URL": redis_url, "LTRR_DATA_DIR": str(data_dir), "LTRR_RELOAD_INTERVAL_S": "1",
                "LTRR_ATTRIBUTION_WINDOW_S": "2", "LTRR_INGEST_LATENESS_S": "0", "LTRR_NO_PROGRESS": "1", "HF_HUB_OFFLINE": "1", "LTRR_PORT": str(port)})
    serve = subprocess.Popen([LTRR, "serve"], env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    ingest = None
    try:
        assert serve.stderr is not None
        for line in serve.stderr:
            if "ltrr serving at" in line:
                break
        else:
            raise AssertionError(f"ltrr serve exited with {serve.wait()}")
        ingest = subprocess.Popen([LTRR, "ingest", "--follow", "1"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        clicks = np.random.default_rng(5)
        for number in range(searches):
            body = _post(f"{base}/search", {"query": QUERIES[number % len(QUERIES)], "k": 5})
            if body["results"] and clicks.random() < 0.5:
                _post(f"{base}/feedback", {"request_id": body["request_id"], "entity_id": body["results"][0]["id"], "event": "click"})
            time.sleep(0.05)
    finally:
        for process in (serve, ingest):
            if process is not None:
                process.send_signal(signal.SIGTERM)
        assert serve.wait(timeout=15) == 0, "ltrr serve stops cleanly on SIGTERM"
        assert ingest is None or ingest.wait(timeout=15) == 0, "ltrr ingest --follow stops cleanly on SIGTERM"

    # What ingest archived (a last --flush archives the rest), exported as auditors read it.
    flushed = subprocess.run([LTRR, "ingest", "--flush"], env=env, capture_output=True, text=True, timeout=120)
    assert flushed.returncode == 0, flushed.stderr
    export = tmp_path / "export.jsonl"
    exported = subprocess.run([LTRR, "events", "export", "--out", str(export)], env=env, capture_output=True, text=True, timeout=120)
    assert exported.returncode == 0, exported.stderr
    lines = export.read_text().splitlines()
    impressions = [json.loads(line) for line in lines if '"kind":"impression"' in line]
    assert len(impressions) == searches
    for impression in impressions:
        names = list(impression["distribution"])
        assert names.index(impression["plan_name"]) == choose_index(list(impression["distribution"].values()), impression["draw"])
    served = [impression["model_versions"]["policy"] for impression in impressions]
    first_after_reload = [impressions[0]] + [impressions[i] for i in range(1, len(impressions)) if served[i] != served[i - 1]]
    assert len(first_after_reload) >= versions, f"the service served {len(first_after_reload)} policy versions; ingest publishes every pass"
    rng = np.random.default_rng(11)
    all_p = kstest([_pit(impression, rng) for impression in impressions], "uniform").pvalue
    first_p = kstest([_pit(impression, rng) for impression in first_after_reload], "uniform").pvalue
    draws_p = kstest([impression["draw"] for impression in first_after_reload], "uniform").pvalue
    print(f"{len(impressions)} impressions, {len(first_after_reload)} policy versions served; KS p-values: "
          f"all {all_p:.3f}, first after each reload {first_p:.3f}, their draws {draws_p:.3f}")
    assert all_p > 0.001 and first_p > 0.001 and draws_p > 0.001
