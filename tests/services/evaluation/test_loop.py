"""The closed loop on the small catalog: the simulator drives the API's pipeline, ingestion feeds the
memory index, the bandit and the ranker; and the service without Redis ingests in-process."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from fastapi.testclient import TestClient

from contracts.events import Engagement
from ranker.features import feature_names
from services.app import build_app
from services.evaluation.sim_users import QueryStream, misspell, simulate_user
from services.evaluation.simulate import RunSpec, run_one, run_specs, windows
from services.ingest.ingestor import join_rounds
from services.registry import Paths, reward_config
from services.settings import Settings


def test_windows_are_consecutive_full_slices_with_standard_errors():
    rewards = [1.0] * 1000 + [0.0, 2.0] * 500 + [5.0] * 10
    result = windows(rewards)
    assert [(w["start"], w["end"]) for w in result] == [(0, 1000), (1000, 2000)], "the partial last slice is dropped"
    assert result[0]["reward"] == 1.0 and result[0]["stderr"] == 0.0
    assert result[1]["reward"] == pytest.approx(1.0)
    assert result[1]["stderr"] == pytest.approx(np.std([0.0, 2.0] * 500, ddof=1) / np.sqrt(1000))


def test_query_stream_is_deterministic_and_mixes_kinds(small_catalog):
    stream_a, stream_b = QueryStream(small_catalog, seed=5), QueryStream(small_catalog, seed=5)
    drawn_a = [stream_a.draw(i) for i in range(300)]
    assert drawn_a == [stream_b.draw(i) for i in range(300)]
    assert {intent.kind for intent in drawn_a} == {"exact", "artist_title", "misspelled", "topic", "head"}
    assert all(intent.targets for intent in drawn_a)
    word = misspell("wonderful", np.random.default_rng(1))
    assert word != "wonderful" and word[0] == "w" and abs(len(word) - len("wonderful")) <= 1


def test_simulated_user_prefers_targets_and_top_positions():
    rng = np.random.default_rng(0)
    page = [f"e{i}" for i in range(10)]
    clicks_by_position = np.zeros(10)
    target_clicks = 0
    for _ in range(2000):
        for engagement in simulate_user(page, frozenset({"e0", "e5"}), rng):
            if engagement.event is Engagement.CLICK:
                clicks_by_position[engagement.position - 1] += 1
                target_clicks += engagement.entity_id in ("e0", "e5")
    assert clicks_by_position[0] > clicks_by_position[5] > clicks_by_position[9]
    assert target_clicks / clicks_by_position.sum() > 0.8


def test_closed_loop_learns_through_the_api_pipeline(settings, embedder):
    settings = settings.model_copy(update={"ranker_min_new_impressions": 40})
    result = run_one(settings, RunSpec("learned", "vw"), queries=300, seed=3, ingest_every=50, embedder=embedder)
    assert len(result["rewards"]) == 300
    run_dir = settings.data_dir / "simulations" / "seed3" / "learned"
    events = (run_dir / "events" / "events.jsonl").read_text().splitlines()
    kinds = [json.loads(line)["kind"] for line in events]
    assert kinds.count("impression") == 300 and kinds.count("feedback") > 50
    bandit_version = (run_dir / "models" / "bandit" / "CURRENT").read_text().strip()
    assert bandit_version.startswith("vw-300-"), "every impression's reward reached the bandit"
    rows = (run_dir / "ingest" / "ranker_rows.jsonl").read_text().splitlines()
    assert len(rows) > 40
    assert result["ranker"].startswith("lgbm-") or result["ranker"] == "rrf-60"
    assert set(result["by_kind"]) == {"exact", "artist_title", "misspelled", "topic", "head"}
    _assert_history_features_count_earlier_pages(settings, [json.loads(line) for line in events])


def _assert_history_features_count_earlier_pages(settings, events):
    """A candidate's ``history:impressions`` at request time never exceeds the times it was on an earlier
    page for that query, and some candidates of repeated queries carry history."""
    column = feature_names(settings.strategies).index("history:impressions")
    shown_before: dict[tuple[str, str], int] = {}
    with_history = 0
    for event in events:
        if event["kind"] != "impression":
            continue
        query = event["query"]["normalized"]
        for candidate in event["candidates"]:
            impressions = candidate["features"][column]
            assert impressions <= shown_before.get((query, candidate["entity_id"]), 0)
            with_history += impressions > 0
        for item in event["page"]:
            key = (query, item["entity_id"])
            shown_before[key] = shown_before.get(key, 0) + 1
    assert with_history > 0, "repeated queries see their earlier pages' impressions"


def test_a_simulation_run_is_reproducible(settings, embedder):
    settings = settings.model_copy(update={"ranker_min_new_impressions": 20})
    first = run_one(settings, RunSpec("learned", "vw"), queries=120, seed=5, ingest_every=30, embedder=embedder)
    second = run_one(settings, RunSpec("learned", "vw"), queries=120, seed=5, ingest_every=30, embedder=embedder)
    assert first["ranker"].startswith("lgbm-"), "a LightGBM model was trained and promoted during the run"
    assert first["rewards"] == second["rewards"] and first["ranker"] == second["ranker"]
    assert any(reward > 0 for reward in first["rewards"])


def test_a_plan_seed_changes_the_loops_choices_but_not_its_queries(settings, embedder):
    base = run_one(settings, RunSpec("learned", "vw"), queries=60, seed=5, ingest_every=30, embedder=embedder)
    same = run_one(settings, RunSpec("learned", "vw"), queries=60, seed=5, ingest_every=30, embedder=embedder, plan_seed=5)
    other = run_one(settings, RunSpec("learned", "vw"), queries=60, seed=5, ingest_every=30, embedder=embedder, plan_seed=11)
    assert same["rewards"] == base["rewards"], "the plan seed replaces the run's seed for its choices only"
    assert other["last_window_plans_by_kind"] != base["last_window_plans_by_kind"], "another plan seed, other plans"
    runs = settings.data_dir / "simulations" / "seed5"

    def query_shapes(run: str) -> list[list[str]]:
        rounds, _ = join_rounds(Paths(runs / run).events / "events.jsonl", reward_config(settings))
        return [sorted(name for name in logged.context if name.startswith(("tokens=", "chars=", "slot="))) for logged in rounds]

    assert query_shapes("learned_plans11") == query_shapes("learned"), "each plan stream keeps its own run, over the same queries"


def test_run_specs_name_the_fixed_plans(settings):
    names = [spec.name for spec in run_specs(settings, baselines=True)]
    assert names == ["learned", "uniform", "dense=100", "lexical=100", "memory=100", "all=100"]


def test_service_without_redis_uses_the_in_process_store_and_ingests_itself(data_dir, embedder, monkeypatch):
    monkeypatch.delenv("LTRR_REDIS_URL", raising=False)
    # A fixed plan that draws from the catalog: with the seed unset the bandit's warm-up may pick a
    # memory-only plan, which has nothing for a query never seen (an empty page, issue 12's top-up).
    settings = Settings(data_dir=data_dir, start_local_redis=False, ingest_interval_s=0.2, attribution_window_s=1.0,
                        policy="fixed:lexical=20+dense=20")
    with TestClient(build_app(settings, embedder=embedder)) as client:
        health = client.get("/healthz").json()
        assert health["status"] == "ok", "the in-process store is what was configured, not a fallback"
        assert health["learning"] == "in this process (no Redis)"
        assert health["backends"]["memory_index"]["backend"] == "local"
        assert "no persistence" in health["backends"]["memory_index"]["description"]
        # The first query encoding in a process can take longer than the window: warm up, so the click comes in time.
        client.post("/search", json={"query": "warm up", "k": 1})
        body = client.post("/search", json={"query": "some very particular query", "k": 5}).json()
        chosen = body["results"][0]["id"]
        client.post("/feedback", json={"request_id": body["request_id"], "entity_id": chosen, "event": "click"})
        time.sleep(1.5)
        # A later event moves event time past the window, so the in-process ingest closes the first impression.
        client.post("/search", json={"query": "anything else", "k": 1})
        memory = client.app.state.pipeline.memory
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not memory.top("some very particular query", 5):
            time.sleep(0.2)
        stats = {stat.entity_id: stat for stat in memory.top("some very particular query", 5)}
        assert stats[chosen].clicks == 1 and not stats[chosen].predicted, "the click reached the in-process memory index"
        assert (data_dir / "models" / "bandit" / "CURRENT").exists(), "in-process ingestion published a bandit model"


def test_memory_evidence_separates_predicted_shown_and_clicked():
    from bandit.context import memory_evidence

    assert memory_evidence(None) == "none"
    assert memory_evidence(0.3) == "predicted"
    assert memory_evidence(1 + (0 + 2 * 0.05) / (1 + 2)) == "shown"
    assert memory_evidence(1 + (1 + 2 * 0.05) / (1 + 2)) == "clicked"


def test_strategy_history_reaches_the_bandit_context_from_earlier_impressions(settings, embedder):
    """LTRR_BANDIT_HISTORY_FEATURES in the closed loop: an impression's ``query_tried_<strategy>`` counts at
    most the earlier impressions of the same query whose plan drew that strategy (ingest runs behind), and
    repeated queries carry credit."""
    settings = settings.model_copy(update={"bandit_history_features": True})
    run_one(settings, RunSpec("learned", "vw"), queries=240, seed=3, ingest_every=40, embedder=embedder)
    log = settings.data_dir / "simulations" / "seed3" / "learned" / "events" / "events.jsonl"
    impressions = [event for event in map(json.loads, log.read_text().splitlines()) if event["kind"] == "impression"]
    drawn_before: dict[tuple[str, str], int] = {}
    tried = credited = 0
    for event in impressions:
        query = event["query"]["normalized"]
        for name, value in event["context"].items():
            if name.startswith("query_tried_"):
                draws = 3 * value / (1 - value)  # tried = drawn / (drawn + 3)
                assert draws <= drawn_before.get((query, name.removeprefix("query_tried_")), 0) + 1e-6, (query, name, draws)
                tried += 1
            credited += name.startswith("query_credit_") and value > 0
        for strategy, quota in event["plan"].items():
            if quota > 0 and strategy not in event.get("skipped", {}):
                drawn_before[(query, strategy)] = drawn_before.get((query, strategy), 0) + 1
    assert tried > 0 and credited > 0, (tried, credited)
