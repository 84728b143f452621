"""Ingestion (join, event-time windows, malformed lines, idempotence) and off-policy replay."""

from __future__ import annotations

import json

import numpy as np
import pytest
import redis
from synthetic_events import PLANS, feedback, impression

from bandit.reward import RewardConfig
from contracts import Plan
from memory_index.redis_store import RedisMemoryStore
from services.evaluation.replay import ips_estimates, replay_policy
from services.ingest.ingestor import Ingestor
from services.search.stack import open_stack

CONFIG = RewardConfig(cost_per_candidate=0.002, window_seconds=300.0)
def write_log(path, lines) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for line in lines:
            handle.write((line if isinstance(line, str) else json.dumps(line)) + "\n")


class Recorder:
    def __init__(self) -> None:
        self.calls = []

    def __call__(self, context, decision, reward) -> None:
        self.calls.append((decision.plan, decision.probability, reward))


def test_ingest_skips_malformed_lines_keeps_good_ones_and_closes_windows_in_event_time(tmp_path, redis_url):
    log = tmp_path / "events" / "events.jsonl"
    write_log(log, [
        impression("r1", 1000.0, 0),
        "{not json",
        feedback("r1", "b", "click", 1010.0),
        feedback("r1", "b", "play", 1020.0, n=1),
        '{"schema_version": 1, "kind": "feedback", "event_id": "x"}',
        feedback("r1", "a", "favorite", 1400.0, n=2),  # after the 300 s window: earns nothing
        impression("r2", 1500.0, 1),
        '"just a string"',
    ])
    memory = RedisMemoryStore(redis_url)
    learned = Recorder()
    ingestor = Ingestor(log, tmp_path / "ingest", memory, CONFIG, learned, min_new_rows=1000)
    report = ingestor.run()
    assert (report.lines, report.malformed, report.impressions, report.feedback) == (8, 3, 2, 3)
    assert report.finalized == 1, "r2's window is still open at the newest event time (1500 < 1500 + 300)"
    assert learned.calls == [(PLANS[0], 0.5, pytest.approx(3.0 - 0.002 * 20))]
    top = memory.top("jazz", 5)
    assert top[0].entity_id == "b" and top[0].clicks == 1 and top[0].impressions == 1
    assert {stat.entity_id for stat in top} == {"a", "b"}
    rows = [json.loads(line) for line in (tmp_path / "ingest" / "ranker_rows.jsonl").read_text().splitlines()]
    assert rows[0]["labels"] == [0, 3], "graded labels: b was played, a's favourite came too late"

    again = ingestor.run()
    assert again.lines == 0 and again.finalized == 0, "nothing new to read"
    flushed = ingestor.run(flush=True)
    assert flushed.finalized == 1
    assert learned.calls[-1] == (PLANS[1], 0.5, pytest.approx(0.0 - 0.002 * 100))


def test_in_process_rows_carry_the_positions_and_the_randomized_pair(tmp_path, redis_url):
    log = tmp_path / "events" / "events.jsonl"
    randomized = {**impression("r2", 10.0, 0), "page": [{"entity_id": "b", "position": 1}, {"entity_id": "a", "position": 2}],
                  "randomized": {"pair": 1, "swapped": True, "probability": 0.1}}
    write_log(log, [impression("r1", 0.0, 0), feedback("r1", "a", "click", 1.0), randomized, feedback("r2", "a", "click", 11.0)])
    Ingestor(log, tmp_path / "ingest", RedisMemoryStore(redis_url), CONFIG, Recorder(), min_new_rows=1000).run(flush=True)
    rows = [json.loads(line) for line in (tmp_path / "ingest" / "ranker_rows.jsonl").read_text().splitlines()]
    assert [(row["request_id"], row["positions"], row.get("pair")) for row in rows] == [("r1", [1, 2], None), ("r2", [2, 1], 1)]


def test_ingest_is_idempotent_on_event_id(tmp_path, redis_url):
    log = tmp_path / "events" / "events.jsonl"
    first = [impression("r1", 0.0, 0), feedback("r1", "a", "click", 5.0)]
    write_log(log, first + first)
    learned = Recorder()
    report = Ingestor(log, tmp_path / "ingest", RedisMemoryStore(redis_url), CONFIG, learned).run(flush=True)
    assert report.duplicates == 2
    assert len(learned.calls) == 1
    assert RedisMemoryStore(redis_url).top("jazz", 1)[0].clicks == 1


def test_ips_and_snips_match_their_formulas():
    rewards = np.array([1.0, 0.0, 3.0, 1.0])
    logged = np.array([0.5, 0.5, 0.25, 0.5])
    target = np.array([1.0, 0.0, 1.0, 0.5])
    ips, snips, ess = ips_estimates(rewards, logged, target)
    weights = np.array([2.0, 0.0, 4.0, 1.0])
    assert ips.value == pytest.approx((2 * 1 + 0 + 4 * 3 + 1 * 1) / 4)
    assert snips.value == pytest.approx((2 * 1 + 4 * 3 + 1 * 1) / (2 + 0 + 4 + 1))
    assert ips.stderr == pytest.approx(np.std(weights * rewards, ddof=1) / 2)
    assert ess == pytest.approx(7**2 / (4 + 16 + 1))
    assert ips.low < ips.value < ips.high


def test_replay_recovers_the_value_of_a_fixed_plan_from_uniform_logs(tmp_path, settings):
    """Logged uniformly over two plans; plan 0 earns 1 - 0.04 on every round it was shown, plan 1 earns -0.2.
    The IPS estimate of "always plan 0" must be close to 0.96."""
    rng = np.random.default_rng(3)
    lines = []
    chosen_plans = []
    for i in range(400):
        chosen = int(rng.integers(2))
        chosen_plans.append(chosen)
        lines.append(impression(f"r{i}", 10.0 * i, chosen))
        if chosen == 0:
            lines.append(feedback(f"r{i}", "a", "click", 10.0 * i + 1))
    log = tmp_path / "log.jsonl"
    write_log(log, lines)
    result = replay_policy(settings, f"fixed:{PLANS[0].name}", log)
    assert result.rounds == 400
    snips = {e.name: e for e in result.estimates}["snips"]
    assert snips.value == pytest.approx(1.0 - 0.002 * 20, abs=1e-9), "SNIPS is exact when the target plan's reward is constant"
    ips = {e.name: e for e in result.estimates}["ips"]
    assert ips.low <= 0.96 <= ips.high
    shown_plan_0 = chosen_plans.count(0)
    assert result.logged_reward == pytest.approx((shown_plan_0 * 0.96 + (400 - shown_plan_0) * -0.2) / 400)


def test_an_unreachable_redis_url_opens_the_service_degraded_but_stops_other_commands(settings):
    from contracts import ConfigError
    from services.registry import open_memory

    broken = settings.model_copy(update={"redis_url": "redis://:hunter2@127.0.0.1:1/0"})
    with pytest.raises(ConfigError, match=r"^LTRR_REDIS_URL is set but Redis does not answer there \(no answer to PING\)") as error:
        open_memory(broken, None)
    assert "hunter2" not in str(error.value)
    stack = open_stack(broken)
    try:
        assert stack.memory_description == "redis at LTRR_REDIS_URL (unreachable at start)"
        assert not stack.pipeline.memory.ping()
    finally:
        stack.close()


def test_configured_reward_weights_reach_replay_and_ingest(tmp_path, settings, redis_url):
    from services.ingest.jobs import open_ingest_job

    log = tmp_path / "events" / "events.jsonl"
    write_log(log, [impression("r1", 0.0, 0), feedback("r1", "a", "play", 5.0), feedback("r1", "a", "click", 6.0, n=1)])
    weighted = settings.model_copy(update={"play_weight": 7.5, "click_weight": 0.5})
    assert replay_policy(weighted, "uniform", log).logged_reward == pytest.approx(7.5 - 0.002 * 20)
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    for line in log.read_text().splitlines():
        client.xadd("ltrr:events", {"e": line})
    job = open_ingest_job(weighted.model_copy(update={"data_dir": tmp_path}))
    try:
        assert job.ingestor.reward_config.weights == weighted.reward_weights
        assert job.run(flush=True).reward_sum == pytest.approx(7.5 - 0.002 * 20)
    finally:
        job.close()


def test_open_windows_and_early_feedback_survive_a_restart(tmp_path, redis_url):
    log = tmp_path / "events" / "events.jsonl"
    write_log(log, [feedback("r2", "b", "click", 90.0), impression("r1", 100.0, 0), feedback("r1", "a", "play", 110.0)])
    first = Recorder()
    report = Ingestor(log, tmp_path / "ingest", RedisMemoryStore(redis_url), CONFIG, first).run()
    assert report.finalized == 0 and first.calls == [], "r1's window is open; r2's feedback came before its impression"
    with open(log, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(impression("r2", 120.0, 1)) + "\n" + json.dumps(impression("r3", 1000.0, 0)) + "\n")
    restarted = Recorder()
    report = Ingestor(log, tmp_path / "ingest", RedisMemoryStore(redis_url), CONFIG, restarted).run()
    assert report.lines == 2 and report.finalized == 2, "both windows close once r3's time passes them"
    assert restarted.calls == [(PLANS[0], 0.5, pytest.approx(3.0 - 0.002 * 20)), (PLANS[1], 0.5, pytest.approx(1.0 - 0.002 * 100))]


def test_a_skipped_strategy_is_not_charged_its_quota(tmp_path, redis_url):
    both = Plan.of({"lexical": 20, "dense": 100})
    skipped = {**impression("r1", 0.0, 0), "plan": both.as_dict(), "plan_name": both.name,
               "distribution": {both.name: 1.0}, "probability": 1.0, "skipped": {"dense": "timed out after 250 ms"}}
    ran = {**skipped, "request_id": "r2", "event_id": "imp-r2", "skipped": {}}
    log = tmp_path / "events" / "events.jsonl"
    write_log(log, [skipped, ran, feedback("r1", "a", "click", 5.0), feedback("r2", "a", "click", 5.0)])
    learned = Recorder()
    Ingestor(log, tmp_path / "ingest", RedisMemoryStore(redis_url), CONFIG, learned).run(flush=True)
    assert learned.calls == [(both, 1.0, pytest.approx(1.0 - 0.002 * 20)), (both, 1.0, pytest.approx(1.0 - 0.002 * 120))]
