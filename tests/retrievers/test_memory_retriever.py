"""MemoryRetriever over the in-process store: scores pass through, delete forgets, health pings."""

from __future__ import annotations

from memory_index.local_store import LocalMemoryStore
from retrievers import build_query
from retrievers.memory import MemoryRetriever
from services.registry import RETRIEVERS


def test_hits_carry_the_store_scores():
    store = LocalMemoryStore(alpha=2.0, prior=0.05)
    store.record("beyonce halo", ["t-halo", "t-shake"], ["t-halo"], timestamp=1.0)
    store.predict([("beyonce halo", "t-cardigan", 0.5)])
    hits = MemoryRetriever(store).search(build_query("Beyoncé — Halo"), 10)
    assert [hit.entity_id for hit in hits] == ["t-halo", "t-shake", "t-cardigan"]
    assert [hit.score for hit in hits] == [stat.score for stat in store.top("beyonce halo", 10)]
    assert hits[-1].score == 0.5


def test_delete_forgets_and_upsert_is_a_no_op():
    store = LocalMemoryStore()
    store.record("halo", ["t-halo", "t-shake"], ["t-halo"], timestamp=1.0)
    retriever = MemoryRetriever(store)
    retriever.upsert([])
    retriever.delete(["t-halo"])
    assert [hit.entity_id for hit in retriever.search(build_query("halo"), 5)] == ["t-shake"]
    assert retriever.health() == "ok"


def test_the_registry_builds_every_strategy_by_its_name():
    assert {"lexical", "dense", "memory", "explore"} <= set(RETRIEVERS)
