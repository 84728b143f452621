"""One contract suite for every MemoryStore backend (local and a real redis-server)."""

from __future__ import annotations

import math

import pytest
import redis

from contracts import BackendUnavailable, BadRequest, ConfigError
from memory_index import LocalMemoryStore, MemoryStore, RedisMemoryStore


@pytest.fixture(params=["local", "redis"])
def make_store(request):
    """Build a store of the parametrized backend with the given settings (alpha=2, prior=0.05 unless told)."""

    def make(**settings) -> MemoryStore:
        settings = {"alpha": 2.0, "prior": 0.05, **settings}
        if request.param == "local":
            return LocalMemoryStore(**settings)
        return RedisMemoryStore(request.getfixturevalue("redis_url"), **settings)

    return make


@pytest.fixture
def store(make_store) -> MemoryStore:
    return make_store()


def test_implements_protocol(store):
    assert isinstance(store, MemoryStore)
    assert store.ping()


def test_smoothing_formula_is_pinned(store):
    store.record("hey jude", shown=["t1", "t2"], clicked=["t1"], timestamp=1.0)
    stats = {stat.entity_id: stat for stat in store.top("hey jude", 10)}
    assert stats["t1"].score == pytest.approx(1 + (1 + 2 * 0.05) / (1 + 2), abs=1e-12)
    assert stats["t2"].score == pytest.approx(1 + (0 + 2 * 0.05) / (1 + 2), abs=1e-12)
    assert (stats["t1"].impressions, stats["t1"].clicks, stats["t1"].predicted) == (1.0, 1.0, False)
    assert (stats["t2"].impressions, stats["t2"].clicks) == (1.0, 0.0)


def test_top_orders_by_score_and_truncates(store):
    for _ in range(3):
        store.record("q", shown=["a", "b", "c"], clicked=["b"], timestamp=1.0)
    store.record("q", shown=["a"], clicked=["a"], timestamp=2.0)
    # b: 3 clicks / 3 impressions; a: 1/4; c: 0/3
    assert [stat.entity_id for stat in store.top("q", 10)] == ["b", "a", "c"]
    assert [stat.entity_id for stat in store.top("q", 2)] == ["b", "a"]
    assert store.top("q", 0) == []
    assert store.top("unknown", 5) == []
    b = store.top("q", 1)[0]
    assert b.score == pytest.approx(1 + (3 + 2 * 0.05) / (3 + 2), abs=1e-12)


def test_clicked_but_not_shown_counts_as_shown_and_duplicates_count_once(store):
    store.record("q", shown=["a", "a"], clicked=["z"], timestamp=1.0)
    stats = {stat.entity_id: stat for stat in store.top("q", 10)}
    assert stats["a"].impressions == 1.0
    assert (stats["z"].impressions, stats["z"].clicks) == (1.0, 1.0)


def test_observed_beats_predicted(store):
    assert store.predict([("q", "p1", 0.45), ("q", "p2", 0.10)]) == 2
    store.record("q", shown=["o1"], clicked=[], timestamp=1.0)
    top = store.top("q", 10)
    assert [stat.entity_id for stat in top] == ["o1", "p1", "p2"]
    assert [stat.predicted for stat in top] == [False, True, True]
    assert top[1].score == pytest.approx(0.45)
    assert store.count("q") == 3


def test_predicted_is_replaced_by_feedback(store):
    store.predict([("q", "p1", 0.3)])
    store.record("q", shown=["p1"], clicked=[], timestamp=1.0)
    (stat,) = store.top("q", 10)
    assert not stat.predicted
    assert stat.score == pytest.approx(1 + (0 + 2 * 0.05) / (1 + 2), abs=1e-12)


def test_predict_does_not_overwrite_observed(store):
    store.record("q", shown=["a"], clicked=["a"], timestamp=1.0)
    assert store.predict([("q", "a", 0.4), ("q", "b", 0.2)]) == 1
    stats = {stat.entity_id: stat for stat in store.top("q", 10)}
    assert stats["a"].score == pytest.approx(1 + (1 + 2 * 0.05) / (1 + 2), abs=1e-12)
    assert stats["b"].predicted


def test_predict_rejects_prior_out_of_range(store):
    with pytest.raises(BadRequest, match="prior"):
        store.predict([("q", "a", 1.0)])


def test_forget_removes_entity_from_every_query(store):
    store.record("q1", shown=["a", "b"], clicked=["a"], timestamp=1.0)
    store.record("q2", shown=["a"], clicked=[], timestamp=1.0)
    store.predict([("q3", "a", 0.2), ("q3", "c", 0.1)])
    store.forget(["a", "never-seen"])
    assert [s.entity_id for s in store.top("q1", 10)] == ["b"]
    assert store.count("q2") == 0
    assert [s.entity_id for s in store.top("q3", 10)] == ["c"]
    # a comes back with fresh counts, not the forgotten ones
    store.record("q1", shown=["a"], clicked=[], timestamp=2.0)
    stats = {stat.entity_id: stat for stat in store.top("q1", 10)}
    assert (stats["a"].impressions, stats["a"].clicks) == (1.0, 0.0)


def test_count_and_clear(store):
    store.record("q", shown=["a", "b"], clicked=[], timestamp=1.0)
    store.predict([("q", "c", 0.1), ("other", "a", 0.1)])
    assert store.count("q") == 3
    store.clear()
    assert store.count("q") == 0
    assert store.count("other") == 0
    assert store.top("q", 5) == []


def test_bad_smoothing_settings_name_the_setting():
    with pytest.raises(ConfigError, match="^prior: "):
        LocalMemoryStore(prior=1.5)
    with pytest.raises(ConfigError, match="^alpha: "):
        LocalMemoryStore(alpha=0)


def test_decay_formula_is_pinned(make_store):
    half_life = 100.0
    store = make_store(half_life_s=half_life)
    for clicked in (["a"], ["a"], [], []):
        store.record("q", shown=["a"], clicked=clicked, timestamp=0.0)
    store.record("q", shown=["a"], clicked=[], timestamp=half_life)
    (stat,) = store.top("q", 10)
    impressions = 4 * 0.5 + 1
    clicks = 2 * 0.5 + 0
    assert (stat.impressions, stat.clicks) == (pytest.approx(impressions, abs=1e-12), pytest.approx(clicks, abs=1e-12))
    assert stat.score == pytest.approx(1 + (1 + 2 * 0.05) / (3 + 2), abs=1e-12)
    # a quarter of a half-life later: counts * 0.5 ** 0.25, plus the new click
    store.record("q", shown=["a"], clicked=["a"], timestamp=half_life * 1.25)
    (stat,) = store.top("q", 10)
    kept = 0.5**0.25
    assert stat.impressions == pytest.approx(3 * kept + 1, abs=1e-12)
    assert stat.clicks == pytest.approx(1 * kept + 1, abs=1e-12)
    assert stat.score == pytest.approx(1 + (1 * kept + 1 + 2 * 0.05) / (3 * kept + 1 + 2), abs=1e-12)


def test_reads_do_not_decay_and_pairs_decay_independently(make_store):
    store = make_store(half_life_s=10.0)
    store.record("q", shown=["old", "new"], clicked=["old", "new"], timestamp=0.0)
    store.record("q", shown=["new"], clicked=["new"], timestamp=1000.0)
    stats = {stat.entity_id: stat for stat in store.top("q", 10)}
    # "old" was last updated at t=0: its counts stay as recorded then
    assert (stats["old"].impressions, stats["old"].clicks) == (1.0, 1.0)
    kept = 0.5 ** (1000.0 / 10.0)
    assert stats["new"].impressions == pytest.approx(1 * kept + 1, abs=1e-12)
    assert stats["old"].score == stats["new"].score == pytest.approx(1 + (1 + 0.1) / (1 + 2), abs=1e-12)


def test_late_event_is_added_decayed_and_order_does_not_matter(make_store):
    in_order = make_store(half_life_s=50.0)
    in_order.record("q", shown=["a"], clicked=["a"], timestamp=0.0)
    in_order.record("q", shown=["a"], clicked=[], timestamp=100.0)
    (expected,) = in_order.top("q", 1)
    assert (expected.impressions, expected.clicks) == (pytest.approx(1 * 0.5**2 + 1), pytest.approx(0.5**2))
    in_order.clear()  # same server for redis: start over with the reverse order
    late = make_store(half_life_s=50.0)
    late.record("q", shown=["a"], clicked=[], timestamp=100.0)
    late.record("q", shown=["a"], clicked=["a"], timestamp=0.0)
    (stat,) = late.top("q", 1)
    assert stat.impressions == pytest.approx(1 + 0.5**2, abs=1e-12) == expected.impressions
    assert stat.clicks == pytest.approx(0.5**2, abs=1e-12) == expected.clicks
    assert stat.score == pytest.approx(expected.score, abs=1e-12)
    # the pair's last update stays at t=100: a later event decays from there
    late.record("q", shown=["a"], clicked=[], timestamp=150.0)
    (stat,) = late.top("q", 1)
    assert stat.impressions == pytest.approx((1 + 0.5**2) * 0.5 + 1, abs=1e-12)


def test_without_half_life_timestamps_do_not_matter(store):
    store.record("q", shown=["a"], clicked=["a"], timestamp=0.0)
    store.record("q", shown=["a"], clicked=[], timestamp=1e9)
    store.record("q", shown=["a"], clicked=[], timestamp=5.0)
    (stat,) = store.top("q", 1)
    assert (stat.impressions, stat.clicks) == (3.0, 1.0)
    assert stat.score == pytest.approx(1 + (1 + 0.1) / (3 + 2), abs=1e-12)


def test_exposure_counts_impressions_over_all_queries(make_store):
    store = make_store(half_life_s=1.0)  # exposure never decays
    assert store.exposure([]) == []
    store.record("q1", shown=["a", "b", "a"], clicked=["z"], timestamp=0.0)
    store.record("q2", shown=["a"], clicked=["a"], timestamp=100.0)
    store.predict([("q3", "p", 0.2)])
    assert store.exposure(["a", "b", "z", "p", "never-seen", "a"]) == [2.0, 1.0, 1.0, 0.0, 0.0, 2.0]
    store.forget(["a"])
    assert store.exposure(["a", "b"]) == [0.0, 1.0]
    store.record("q1", shown=["a"], clicked=[], timestamp=200.0)
    assert store.exposure(["a"]) == [1.0]
    store.clear()
    assert store.exposure(["a", "b", "z"]) == [0.0, 0.0, 0.0]


def test_a_page_of_thousands_counts_every_entity_once(store):
    shown = [f"e{number}" for number in range(2500)]
    store.record("q", shown=shown + ["e7"], clicked=["e2499", "e1"], timestamp=0.0)
    store.record("q", shown=shown[:10], clicked=[], timestamp=0.0)
    history = store.history("q", ["e0", "e1", "e7", "e1500", "e2499", "never"])
    assert history == [(2.0, 0.0), (2.0, 1.0), (2.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 0.0)], "e7, listed twice, once a page"
    assert store.exposure(["e0", "e7", "e2000"]) == [2.0, 2.0, 1.0]
    assert store.count("q") == 2500
    store.forget(["e2499"])
    assert store.history("q", ["e2499"]) == [(0.0, 0.0)]


def test_history_gives_this_querys_counts_in_the_order_asked(make_store):
    store = make_store(half_life_s=100.0)
    assert store.history("q", []) == []
    store.record("q", shown=["a", "b"], clicked=["a"], timestamp=0.0)
    store.record("q", shown=["a"], clicked=[], timestamp=100.0)
    store.record("other", shown=["b"], clicked=["b"], timestamp=0.0)
    store.predict([("q", "p", 0.3)])
    # a: (1 impression, 1 click) halved by one half-life, then one more impression
    assert store.history("q", ["never", "b", "a", "p"]) == [(0.0, 0.0), (1.0, 0.0), (1.5, 0.5), (0.0, 0.0)]
    assert store.history("unknown query", ["a"]) == [(0.0, 0.0)]
    store.forget(["a"])
    assert store.history("q", ["a", "b"]) == [(0.0, 0.0), (1.0, 0.0)]


@pytest.mark.parametrize("timestamp", [math.nan, math.inf, -math.inf, "soon", None])
def test_record_rejects_non_finite_timestamp(store, timestamp):
    with pytest.raises(BadRequest, match="timestamp"):
        store.record("q", shown=["a"], clicked=[], timestamp=timestamp)
    assert store.count("q") == 0


@pytest.mark.parametrize("half_life", [0, -1.0, math.inf, math.nan, "1h", True])
def test_bad_half_life_names_the_setting(half_life):
    with pytest.raises(ConfigError, match="^half_life_s: "):
        LocalMemoryStore(half_life_s=half_life)


def test_redis_checks_half_life_before_connecting():
    with pytest.raises(ConfigError, match="^half_life_s: "):
        RedisMemoryStore("redis://127.0.0.1:1/0", half_life_s=0)


# Redis only


def test_redis_persists_across_clients(redis_url):
    RedisMemoryStore(redis_url).record("q", shown=["a", "b"], clicked=["b"], timestamp=1.0)
    assert [s.entity_id for s in RedisMemoryStore(redis_url).top("q", 10)] == ["b", "a"]


def test_redis_clear_leaves_other_prefixes_alone(redis_url):
    client = redis.Redis.from_url(redis_url)
    client.set("unrelated", "1")
    mine = RedisMemoryStore(redis_url, prefix="ltrr:test*:")
    other = RedisMemoryStore(redis_url, prefix="ltrr:other:")
    mine.record("q", shown=["a"], clicked=[], timestamp=1.0)
    other.record("q", shown=["a"], clicked=[], timestamp=1.0)
    mine.clear()
    assert mine.count("q") == 0
    assert other.count("q") == 1
    assert client.get("unrelated") == b"1"


def test_redis_unreachable_says_so_without_printing_the_url():
    with pytest.raises(BackendUnavailable, match="the Redis of the memory index is unreachable") as raised:
        RedisMemoryStore("redis://:secret@127.0.0.1:1/0", timeout_seconds=0.5)
    assert "secret" not in str(raised.value), "a password in the URL never reaches a message"


def test_redis_malformed_url_is_a_config_error():
    with pytest.raises(ConfigError, match="^url: not a Redis URL"):
        RedisMemoryStore("http://not-redis")


def test_strategy_history_counts_draws_and_credit_per_scope(store):
    from memory_index import StrategyOutcome, StrategyRecord

    store.record_strategies([
        StrategyOutcome(("q:jazz", "k:genre"), drawn=("lexical", "dense"), credited=("dense",)),
        StrategyOutcome(("q:jazz", "k:genre"), drawn=("lexical", "lexical"), credited=()),  # a strategy counts once
        StrategyOutcome(("q:blues", "k:genre"), drawn=("memory",), credited=("memory",)),
    ])
    history = store.strategy_history(["q:jazz", "k:genre", "q:never"])
    assert history["q:jazz"] == {"lexical": StrategyRecord(2.0, 0.0), "dense": StrategyRecord(1.0, 1.0)}
    assert history["k:genre"] == {"lexical": StrategyRecord(2.0, 0.0), "dense": StrategyRecord(1.0, 1.0), "memory": StrategyRecord(1.0, 1.0)}
    assert history["q:never"] == {}
    assert store.strategy_history([]) == {}
    store.clear()
    assert store.strategy_history(["q:jazz"]) == {"q:jazz": {}}


def test_strategy_history_expires_with_the_retention(redis_url):
    from memory_index import StrategyOutcome

    store = RedisMemoryStore(redis_url, retention_s=60)
    store.record_strategies([StrategyOutcome(("q:jazz",), drawn=("lexical",), credited=("lexical",))])
    assert 0 < redis.Redis.from_url(redis_url).ttl("ltrr:q2e:strategy:q:jazz") <= 60
