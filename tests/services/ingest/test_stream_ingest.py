"""Ingest from the Redis stream, in this process: every effect once, repeats and late feedback counted
once, what ``ltrr stats`` reads, the archive, the lease. (Kills and restarts are in test_ingest_processes.)"""

from __future__ import annotations

import json

import pytest
import redis
from synthetic_events import feedback, impression

from services.eventlog import event_files
from services.eventstream import STREAM
from services.ingest.jobs import open_ingest_job
from services.ingest.lease import LeaseHeld
from services.ingest.stats import collect_stats
from services.settings import Settings


@pytest.fixture
def ingest_settings(tmp_path, redis_url) -> Settings:
    return Settings(data_dir=tmp_path / "data", redis_url=redis_url, start_local_redis=False, ingest_lateness_s=0.0)


def _push(redis_url: str, events: list[dict]) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    for event in events:
        client.xadd(STREAM, {"e": json.dumps(event)})


def _flush(settings: Settings):
    job = open_ingest_job(settings)
    try:
        return job.run(flush=True)
    finally:
        job.close()


TRAFFIC = [
    impression("r1", 100.0, 0), feedback("r1", "a", "click", 101.0), feedback("r1", "b", "play", 102.0, n=1),
    impression("r2", 110.0, 1), impression("r3", 120.0, 0), feedback("r3", "b", "click", 121.0),
]


def _figures(settings: Settings) -> dict:
    figures = collect_stats(settings)
    return {name: figures[name] for name in ("impressions_applied", "feedback_applied", "memory", "bandit_updates", "ranker_training_rows", "pending_impressions")}


def test_flush_applies_every_effect_once_and_stats_read_them(ingest_settings, redis_url):
    _push(redis_url, TRAFFIC)
    report = _flush(ingest_settings)
    assert report.finalized == 3 and report.training_rows == 2
    assert _figures(ingest_settings) == {
        "impressions_applied": 3, "feedback_applied": 3, "bandit_updates": 3, "ranker_training_rows": 2, "pending_impressions": 0,
        "memory": {"queries": 1, "entities": 2, "impressions": 6, "clicks": 3},
    }
    archived = [json.loads(line) for path in event_files(ingest_settings.data_dir) for line in path.read_text().splitlines()]
    assert [event["event_id"] for event in archived] == [event["event_id"] for event in TRAFFIC]


def test_the_same_events_again_change_nothing(ingest_settings, redis_url):
    _push(redis_url, TRAFFIC)
    _flush(ingest_settings)
    before = _figures(ingest_settings)
    _push(redis_url, TRAFFIC)  # a replayed archive, or a client that sent everything twice
    report = _flush(ingest_settings)
    assert report.finalized == 0 and report.training_rows == 0
    assert _figures(ingest_settings) == before


def test_feedback_after_its_impression_was_final_counts_once(ingest_settings, redis_url):
    _push(redis_url, [impression("r1", 100.0, 0)])
    _flush(ingest_settings)
    late = feedback("r1", "a", "click", 500.0)
    _push(redis_url, [late, late])
    _flush(ingest_settings)
    figures = collect_stats(ingest_settings)
    assert figures["feedback_applied"] == 1 and figures["feedback_late"] == 1
    assert figures["memory"] == {"queries": 1, "entities": 2, "impressions": 2, "clicks": 1}, "a click, no second impression"
    assert figures["bandit_updates"] == 1, "the round's reward was final"


def test_open_windows_stay_pending_until_they_close(ingest_settings, redis_url):
    _push(redis_url, [impression("r1", 100.0, 0), impression("r2", 1000.0, 0)])
    job = open_ingest_job(ingest_settings.model_copy(update={"attribution_window_s": 300.0}))
    try:
        job.ingestor.clock = None  # event time only: r2 keeps r1's window closed until 1000
        assert job.run().finalized == 1
        assert collect_stats(ingest_settings)["pending_impressions"] == 1, "r2 waits, unacknowledged"
    finally:
        job.close()


def test_a_second_ingester_is_refused_while_the_first_renews_its_lease(ingest_settings):
    first = open_ingest_job(ingest_settings)
    try:
        with pytest.raises(LeaseHeld, match="another ingester holds the lease and is alive"):
            open_ingest_job(ingest_settings)
    finally:
        first.close()
    open_ingest_job(ingest_settings).close()  # released on close: the next one starts at once


def test_the_service_trims_only_what_ingest_archived_and_acknowledged(ingest_settings, redis_url):
    from services.eventstream import RedisEventStream

    stream = RedisEventStream(redis_url)
    _push(redis_url, [impression("r1", 100.0, 0)])
    assert stream.trim() == 0, "no ingest group yet: nothing may go"
    _flush(ingest_settings)
    _push(redis_url, [impression("r2", 4e9, 0)])  # its window is still open
    job = open_ingest_job(ingest_settings)
    try:
        job.ingestor.clock = None
        job.run()  # r2 is read and archived, but pending: not acknowledged
    finally:
        job.close()
    assert stream.trim() == 1
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    assert [json.loads(fields["e"])["request_id"] for _, fields in client.xrange(STREAM)] == ["r2"]


def test_late_feedback_repeated_in_a_later_pass_still_counts_once(ingest_settings, redis_url):
    _push(redis_url, [impression("r1", 100.0, 0)])
    _flush(ingest_settings)
    late = feedback("r1", "a", "click", 500.0)
    for _ in range(2):  # a retry that reaches the stream after ingest already counted the first
        _push(redis_url, [late])
        _flush(ingest_settings)
    figures = collect_stats(ingest_settings)
    assert (figures["feedback_applied"], figures["feedback_late"], figures["orphan_feedback"]) == (1, 1, 0)
    assert figures["memory"]["clicks"] == 1


def test_a_flush_of_many_passes_counts_each_malformed_entry_once(ingest_settings, redis_url):
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    client.xadd(STREAM, {"e": "{not json"})
    _push(redis_url, TRAFFIC)
    job = open_ingest_job(ingest_settings)
    try:
        job.ingestor.max_entries_per_pass = 2
        report = job.run(flush=True)
    finally:
        job.close()
    assert report.finalized == 3
    figures = collect_stats(ingest_settings)
    assert figures["malformed_events"] == 1 and figures["impressions_applied"] == 3 and figures["feedback_applied"] == 3


def test_the_saved_policy_lists_only_unacknowledged_rounds_and_event_time(ingest_settings, redis_url):
    from services.ingest.stream_ingest import LEARNED_FILE
    from services.registry import Paths

    _push(redis_url, TRAFFIC[:3])
    _flush(ingest_settings)
    _push(redis_url, TRAFFIC[3:])
    _flush(ingest_settings)
    models = Paths(ingest_settings.data_dir).models
    current = (models / "bandit" / "CURRENT").read_text().strip()
    record = json.loads((models / "bandit" / current / LEARNED_FILE).read_text())
    assert set(record["learned"]) == {"r2", "r3"}, "r1 was acknowledged by the first flush"
    assert record["watermark"] == 121.0, "the newest event time, never the wall clock"


def test_ranker_rows_hold_the_logged_features_and_graded_labels(ingest_settings, redis_url):
    from services.ingest.rows import TrainingRow
    from services.ingest.stream_ingest import ROWS_KEY

    traffic = [dict(event) for event in TRAFFIC]
    traffic[4] = {**traffic[4], "page": [{"entity_id": "b", "position": 1}, {"entity_id": "a", "position": 2}],
                  "randomized": {"pair": 1, "swapped": True, "probability": 0.1}}
    _push(redis_url, traffic)
    _flush(ingest_settings)
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    rows = {row.request_id: row for row in map(TrainingRow.from_line, client.lrange(ROWS_KEY, 0, -1))}
    assert set(rows) == {"r1", "r3"}, "r2 had no engagement"
    assert rows["r1"].features == ((0.1, 0.2), (0.3, 0.4)) and rows["r1"].labels == (1, 3), "a click on a, a play on b"
    assert rows["r3"].labels == (0, 1) and rows["r1"].time == 100.0
    assert (rows["r1"].positions, rows["r1"].pair) == ((1, 2), 0)
    assert (rows["r3"].positions, rows["r3"].pair) == ((2, 1), 1), "the randomized pair the gate reads (ranker.train.GATE_RULE)"


def test_strategy_history_credits_the_strategies_that_supplied_engaged_entities_once(ingest_settings, redis_url):
    """LTRR_BANDIT_HISTORY_FEATURES: each finalized impression counts a draw for every strategy its plan drew
    from, and credit for those that supplied an engaged entity, under the query and its kind, in the same
    transaction as the counters (the same events ingested again change nothing)."""
    from memory_index import RedisMemoryStore, StrategyRecord

    settings = ingest_settings.model_copy(update={"bandit_history_features": True})
    traffic = [dict(event) for event in TRAFFIC]
    for event in traffic:
        if event["kind"] == "impression":
            event["candidates"] = [{**event["candidates"][0], "sources": {"lexical": [2.0, 1]}},
                                   {**event["candidates"][1], "sources": {"lexical": [1.0, 2], "dense": [0.5, 1]}}]
    _push(redis_url, traffic)
    assert _flush(settings).finalized == 3
    expected = {"lexical": StrategyRecord(2.0, 2.0), "dense": StrategyRecord(1.0, 0.0)}  # r1, r3 lexical and clicked; r2 dense, no click
    kind = "k:slots=genre|tokens=?|memory_evidence=?"  # the hand-made context has a slot and nothing else
    store = RedisMemoryStore(redis_url)
    assert store.strategy_history(["q:jazz", kind]) == {"q:jazz": expected, kind: expected}
    _push(redis_url, traffic)
    _flush(settings)
    assert store.strategy_history(["q:jazz", kind]) == {"q:jazz": expected, kind: expected}
    assert not [key for key in redis.Redis.from_url(redis_url, decode_responses=True).scan_iter("ltrr:q2e:strategy:*")
                if key not in ("ltrr:q2e:strategy:q:jazz", f"ltrr:q2e:strategy:{kind}")]
