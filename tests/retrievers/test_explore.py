"""ExploreRetriever specifics: exposure demotes well-known neighbours, the dense pool bounds what is
explored, scores are ``similarity / (1 + impressions)``, and the order is deterministic."""

from __future__ import annotations

import pytest
from retriever_fixtures import MINI_CATALOG

from contracts import ConfigError
from memory_index.local_store import LocalMemoryStore
from memory_index.redis_store import RedisMemoryStore
from retrievers import build_query
from retrievers.dense_faiss import FaissDenseRetriever
from retrievers.explore import ExploreRetriever

QUERY = "love song"


@pytest.fixture
def dense(tmp_path, embedder) -> FaissDenseRetriever:
    retriever = FaissDenseRetriever(embedder, tmp_path / "dense", kind="flat")
    retriever.build(MINI_CATALOG)
    return retriever


def show(store, entity_ids, times, query="some other query"):
    for step in range(times):
        store.record(query, list(entity_ids), [], timestamp=float(step))


def test_less_exposed_related_entity_outranks_the_popular_neighbours(dense):
    neighbours = dense.search(build_query(QUERY), 4)
    popular = [hit.entity_id for hit in neighbours[:2]]
    fresh = neighbours[2]
    store = LocalMemoryStore()
    show(store, popular, times=50)
    show(store, [neighbours[3].entity_id], times=1)

    hits = ExploreRetriever(dense, store, pool=4).search(build_query(QUERY), 4)

    assert hits[0].entity_id == fresh.entity_id
    rank_of = {hit.entity_id: hit.rank for hit in hits}
    assert all(rank_of[fresh.entity_id] < rank_of[entity_id] for entity_id in popular)
    similarity = {hit.entity_id: hit.score for hit in neighbours}
    assert hits[0].score == pytest.approx(fresh.score / (1 + 0), abs=1e-12)
    assert rank_of[neighbours[3].entity_id] == 2
    assert hits[1].score == pytest.approx(similarity[neighbours[3].entity_id] / (1 + 1), abs=1e-12)
    for hit in hits[2:]:
        assert hit.score == pytest.approx(similarity[hit.entity_id] / (1 + 50), abs=1e-12)
    assert [hit.rank for hit in hits] == [1, 2, 3, 4]


def test_unexposed_entity_outside_the_dense_pool_is_not_returned(dense):
    ranking = dense.search(build_query(QUERY), len(MINI_CATALOG))
    unrelated = ranking[-1].entity_id  # least similar to the query, never shown
    pool = 4
    store = LocalMemoryStore()
    show(store, [hit.entity_id for hit in ranking[:-1]], times=20)

    hits = ExploreRetriever(dense, store, pool=pool).search(build_query(QUERY), pool)

    assert store.exposure([unrelated]) == [0.0]
    assert unrelated not in {hit.entity_id for hit in hits}
    assert {hit.entity_id for hit in hits} == {hit.entity_id for hit in ranking[:pool]}
    # with the whole catalog in the pool the unexposed entity does come in, first
    everything = ExploreRetriever(dense, store, pool=len(MINI_CATALOG)).search(build_query(QUERY), 3)
    assert everything[0].entity_id == unrelated


def test_without_exposure_the_order_is_the_dense_order(dense):
    explore = ExploreRetriever(dense, LocalMemoryStore(), pool=50)
    assert explore.search(build_query(QUERY), 5) == dense.search(build_query(QUERY), 5)


def test_equal_exposure_keeps_the_similarity_order_and_results_are_repeatable(dense):
    neighbours = dense.search(build_query(QUERY), 2)
    first, second = neighbours
    store = LocalMemoryStore()
    # equal exposure: equal denominators keep the similarity order
    show(store, [first.entity_id, second.entity_id], times=3)
    explore = ExploreRetriever(dense, store, pool=2)
    hits = explore.search(build_query(QUERY), 2)
    assert [hit.entity_id for hit in hits] == [first.entity_id, second.entity_id]
    assert explore.search(build_query(QUERY), 2) == hits
    assert ExploreRetriever(dense, store, pool=2, seed=99).search(build_query(QUERY), 2) == hits


def test_k_larger_than_pool_still_returns_k(dense):
    hits = ExploreRetriever(dense, LocalMemoryStore(), pool=2).search(build_query(QUERY), 5)
    assert len(hits) == 5


def test_reads_exposure_from_redis_too(dense, redis_url):
    neighbours = dense.search(build_query(QUERY), 3)
    store = RedisMemoryStore(redis_url)
    show(store, [neighbours[0].entity_id], times=30)
    hits = ExploreRetriever(dense, store, pool=3).search(build_query(QUERY), 3)
    assert hits[-1].entity_id == neighbours[0].entity_id
    assert hits[-1].score == pytest.approx(neighbours[0].score / (1 + 30), abs=1e-12)


def test_upsert_is_a_no_op_and_delete_reaches_the_dense_index(dense):
    explore = ExploreRetriever(dense, LocalMemoryStore())
    size = len(dense)
    explore.upsert(list(MINI_CATALOG[:2]))
    assert len(dense) == size
    victim = dense.search(build_query(QUERY), 1)[0].entity_id
    explore.delete([victim, "no-such-id"])
    explore.delete([])
    assert victim not in {hit.entity_id for hit in explore.search(build_query(QUERY), 50)}
    assert len(dense) == size - 1


def test_health_is_ok_when_dense_and_store_are(dense, redis_url):
    assert ExploreRetriever(dense, LocalMemoryStore()).health() == "ok"
    assert ExploreRetriever(dense, RedisMemoryStore(redis_url)).health() == "ok"


@pytest.mark.parametrize("pool", [0, -3, 2.5, True])
def test_bad_pool_names_the_parameter(dense, pool):
    with pytest.raises(ConfigError, match="pool"):
        ExploreRetriever(dense, LocalMemoryStore(), pool=pool)


def test_registered_as_explore(dense):
    from services.registry import RETRIEVERS, RetrieverParts

    memory = LocalMemoryStore()
    parts = RetrieverParts(settings=None, memory=memory, opened={"dense": dense})  # type: ignore[arg-type]
    built = RETRIEVERS["explore"](parts)
    assert isinstance(built, ExploreRetriever) and built.dense is dense and built.name == "explore"
