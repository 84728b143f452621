"""Closed loops on judged collections: click models, repeated-query traffic, BEIR's nDCG, and
`ltrr simulate --collection` end to end on a slice of SciFact's train split, in process and over HTTP
against running deployments (`benchmarks/http_loop.py`)."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from contracts import ConfigError
from services.evaluation.click_models import ClickModel
from services.evaluation.collection_traffic import HEAD_QUERIES, CollectionTraffic, ndcg_at

DATASETS = Path(__file__).resolve().parents[3].parent / "shared" / "datasets"
LTRR = Path(sys.executable).with_name("ltrr")


def _click_rates(model: ClickModel, page: list[str], grades: dict[str, int], draws: int = 20_000) -> np.ndarray:
    rng = np.random.default_rng(0)
    counts = np.zeros(len(page))
    for _ in range(draws):
        for position in model.clicks(page, grades, 1, rng):
            counts[position - 1] += 1
    return counts / draws


def test_position_based_users_examine_position_i_with_probability_i_to_the_minus_eta():
    page = [f"d{i}" for i in range(5)]
    rates = _click_rates(ClickModel("pbm", eta=1.0, noise=0.0), page, {doc: 1 for doc in page})
    np.testing.assert_allclose(rates, [1.0, 1 / 2, 1 / 3, 1 / 4, 1 / 5], atol=0.015)
    flat = _click_rates(ClickModel("pbm", eta=0.0, noise=0.1), page, {})
    np.testing.assert_allclose(flat, [0.1] * 5, atol=0.01)


def test_cascade_users_click_once_the_first_attractive_result():
    page = ["a", "b", "c"]
    rates = _click_rates(ClickModel("cascade", noise=0.2), page, {"b": 1})
    np.testing.assert_allclose(rates, [0.2, 0.8, 0.0], atol=0.015), "b is clicked whenever a is not; nothing after b"


def test_dbn_users_stop_when_satisfied_and_go_on_with_the_perseverance():
    page = ["a", "b", "c"]
    satisfied = _click_rates(ClickModel("dbn", noise=0.0, satisfaction=1.0, perseverance=1.0), page, {"a": 1, "b": 1})
    np.testing.assert_allclose(satisfied, [1.0, 0.0, 0.0], atol=0.01)
    impatient = _click_rates(ClickModel("dbn", noise=0.0, satisfaction=0.0, perseverance=0.5), page, {"a": 1, "b": 1, "c": 1})
    np.testing.assert_allclose(impatient, [1.0, 0.5, 0.25], atol=0.015)


@pytest.mark.parametrize("options, field", [({"name": "ubm"}, "click_model"), ({"noise": 1.5}, "noise"), ({"eta": -1}, "eta")])
def test_click_model_settings_are_checked_by_name(options, field):
    with pytest.raises(ConfigError) as error:
        ClickModel(**options)
    assert str(error.value).startswith(field)


def test_traffic_repeats_queries_with_zipf_frequencies_in_sessions_and_ignores_the_query_itself():
    queries = {f"q{i}": f"question {i}" for i in range(50)}
    qrels = {query_id: {f"doc-{query_id}": 1, query_id: 2} for query_id in queries}
    qrels["q7"] = {"q7": 1}  # its only judged document is itself: never asked
    traffic = CollectionTraffic(queries, qrels, seed=3, sample=40, zipf=1.0, session_mean=3.0)
    again = CollectionTraffic(queries, qrels, seed=3, sample=40, zipf=1.0, session_mean=3.0)
    intents = [traffic.draw(i) for i in range(4000)]
    assert intents == [again.draw(i) for i in range(4000)]
    assert "q7" not in {intent.query_id for intent in intents}
    assert all(intent.query_id not in intent.grades for intent in intents)
    counts = {query_id: 0 for query_id in traffic.order}
    for intent in intents:
        counts[intent.query_id] += 1
    top, tenth = counts[traffic.order[0]], counts[traffic.order[9]]
    assert 7 < top / max(tenth, 1) < 14, "rank 1 is asked about 10 times as often as rank 10 (Zipf, exponent 1)"
    assert {intent.kind for intent in intents if intent.query_id in traffic.order[:HEAD_QUERIES]} == {"head"}
    sessions = [intent.session_id for intent in intents]
    assert 2.5 < len(sessions) / len(set(sessions)) < 3.5, "about three queries per session"


def test_ndcg_matches_ranx_and_drops_the_query_itself():
    from ranx import Qrels, Run, evaluate

    rng = random.Random(4)
    grades_by_query = {f"q{i}": {f"d{j}": rng.choice([1, 2]) for j in rng.sample(range(30), 4)} for i in range(20)}
    pages = {query_id: [f"d{j}" for j in rng.sample(range(30), 10)] for query_id in grades_by_query}
    ours = np.mean([ndcg_at(pages[q], grades_by_query[q], q) for q in grades_by_query])
    run = Run({q: {doc: float(10 - rank) for rank, doc in enumerate(page)} for q, page in pages.items()})
    assert ours == pytest.approx(evaluate(Qrels(grades_by_query), run, "ndcg@10"), abs=1e-9)
    assert ndcg_at(["q1", "d1"], {"d1": 1}, "q1") == 1.0, "the query's own id is not a result"


def _scifact_slice(folder: Path) -> Path:
    source = DATASETS / "scifact"
    if not (source / "corpus.jsonl").is_file():
        pytest.skip(f"SciFact not found at {source}; the shared datasets folder is not mounted")
    lines = (source / "qrels" / "train.tsv").read_text().splitlines()
    qrels: dict[str, dict[str, str]] = {}
    for row in lines[1:]:
        query_id, doc_id, grade = row.split("\t")
        qrels.setdefault(query_id, {})[doc_id] = grade
    chosen = sorted(qrels)[:30]
    relevant = {doc for query_id in chosen for doc in qrels[query_id]}
    documents = [json.loads(line) for line in (source / "corpus.jsonl").read_text().splitlines()]
    others = random.Random(0).sample([d for d in documents if d["_id"] not in relevant], 170)
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in documents if d["_id"] in relevant) +
                                         "".join(json.dumps(d) + "\n" for d in others))
    queries = {json.loads(line)["_id"]: line for line in (source / "queries.jsonl").read_text().splitlines()}
    (folder / "queries.jsonl").write_text("".join(queries[query_id] + "\n" for query_id in chosen))
    (folder / "qrels" / "train.tsv").write_text(lines[0] + "\n" + "".join(
        f"{query_id}\t{doc}\t{grade}\n" for query_id in chosen for doc, grade in qrels[query_id].items()))
    return folder


@pytest.fixture(scope="module")
def shared(tmp_path_factory) -> Path:
    """The slice, its indexes and embedding cache, built by the first loop and reused by the next."""
    folder = tmp_path_factory.mktemp("collection-loops")
    _scifact_slice(folder / "scifact-slice")
    return folder


def test_simulate_collection_runs_every_baseline_over_the_same_requests(shared, tmp_path):
    collection = shared / "scifact-slice"
    out, plot = tmp_path / "loop.json", tmp_path / "loop.png"
    env = {name: value for name, value in os.environ.items() if not name.startswith("LTRR_")}
    env.update({"HF_HUB_OFFLINE": "1", "LTRR_NO_PROGRESS": "1", "LTRR_START_LOCAL_REDIS": "false"})
    completed = subprocess.run(
        [LTRR, "simulate", "--collection", str(collection), "--split", "train", "--queries", "200", "--window", "100",
         "--click-model", "cascade", "--workers", "1", "--data-dir", str(shared / "data"), "--cache-dir", str(shared / "cache"),
         "--out", str(out), "--plot", str(plot)],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads(out.read_text())
    runs = result["runs"]
    assert set(runs) == {"learned", "uniform", "dense=100", "lexical=100", "memory=100", "all=100", "static"}
    assert result["click_model"]["name"] == "cascade" and plot.stat().st_size > 10_000
    for name, run in runs.items():
        assert [(w["start"], w["end"]) for w in run["windows"]] == [(0, 100), (100, 200)], name
        for entry in run["windows"]:
            assert 0.0 <= entry["ndcg@10"]["mean"] <= 1.0 and entry["clicks"]["mean"] <= 1.0, "cascade users click at most once"
    assert all(w["drawn"] == {"mean": 200.0, "se": 0.0} for w in runs["static"]["windows"]), "static draws lexical=100 + dense=100"
    assert all(w["drawn"]["mean"] == 300.0 for w in runs["all=100"]["windows"])
    assert runs["static"]["windows"][-1]["ndcg@10"]["mean"] > 0.5, "fused BM25 and MiniLM find SciFact's documents"
    assert set(result["last_window_differences"]) == set(runs) - {"learned"}
    assert "static" in completed.stdout and "nDCG@10" in completed.stdout


def test_over_http_the_same_users_drive_running_deployments_and_the_learned_one_learns(shared, tmp_path, redis_url):
    """`redis_url` only for its skip rule: each deployment starts a redis-server of its own."""
    out = tmp_path / "http.json"
    env = {name: value for name, value in os.environ.items() if not name.startswith("LTRR_")}
    env.update({"HF_HUB_OFFLINE": "1", "LTRR_NO_PROGRESS": "1"})
    completed = subprocess.run(
        [sys.executable, str(Path(__file__).resolve().parents[3] / "benchmarks" / "http_loop.py"), "--collection", str(shared / "scifact-slice"),
         "--split", "train", "--requests", "120", "--window", "60", "--rate", "20", "--runs", "learned", "static",
         "--attribution-window-s", "1", "--lateness-s", "0.5", "--data-dir", str(shared / "data"), "--cache-dir", str(shared / "cache"),
         "--out", str(out)],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    result = json.loads(out.read_text())
    services = result["over_http"]["services"]
    assert set(result["runs"]) == set(services) == {"learned", "static"}
    for name, service in services.items():
        assert service["errors"] == {}, name
        assert [(w["start"], w["end"]) for w in result["runs"][name]["windows"]] == [(0, 60), (60, 120)]
    static = result["runs"]["static"]["windows"]
    assert all(w["drawn"] == {"mean": 200.0, "se": 0.0} for w in static), "static draws lexical=100 + dense=100 over HTTP too"
    assert static[-1]["ndcg@10"]["mean"] > 0.5, "the deployment holds the collection's corpus under its own ids"
    assert services["static"]["policy_versions"] == 1, "no ingest beside static: its bandit never changes"
    assert services["learned"]["policy_versions"] >= 2, "ingest --follow published bandits that the service reloaded mid-run"
    assert set(result["last_window_differences"]) == {"static"}, "the learned deployment is the reference"


@pytest.mark.parametrize("urls, message", [
    (["localhost:8000"], "NAME=http://host:port"),
    (["learned=http://a:1", "learned=http://b:2"], "each service needs its own name"),
])
def test_over_http_targets_are_checked_by_name(urls, message):
    from services.evaluation.collection_http import parse_targets

    with pytest.raises(ConfigError) as error:
        parse_targets(urls)
    assert str(error.value).startswith("--url") and message in str(error.value)


def test_over_http_targets_name_a_bare_url_learned():
    from services.evaluation.collection_http import Target, parse_targets

    assert parse_targets(["http://127.0.0.1:8000/", "uniform=http://127.0.0.1:8001", "all=100=http://h:1/?a=b"]) == [
        Target("learned", "http://127.0.0.1:8000"), Target("uniform", "http://127.0.0.1:8001"), Target("all=100", "http://h:1/?a=b")]
