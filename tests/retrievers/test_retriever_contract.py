"""One contract suite, run against every Retriever implementation (DESIGN.md, style rule 8)."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from typing import Callable

import pytest
from retriever_fixtures import MINI_CATALOG, NEWCOMER

from catalog.schema import Entity
from memory_index.local_store import LocalMemoryStore
from retrievers import Retriever, build_query, normalize_query
from retrievers.dense_faiss import FaissDenseRetriever
from retrievers.explore import ExploreRetriever
from retrievers.lexical_tantivy import TantivyLexicalRetriever
from retrievers.memory import MemoryRetriever

BROAD_QUERY = "love song"

HOSTILE_QUERIES = [
    'AND OR ( " : ^ ~ [ ] \\ *',
    "title:(halo AND",
    '"unclosed phrase',
    "halo^99 ~2 -beyonce +",
    "[a TO z}",
    "/regex.*/",
    "\\",
    "*",
    "🎵🔥💃",
    "x" * 500,
    "love " * 100,
    "\x00\x07\t\n",
    "",
    "   ",
    "ñ" * 500,
]


@dataclass
class Harness:
    """A retriever over ``MINI_CATALOG`` and the way its strategy learns about an entity."""

    retriever: Retriever
    add: Callable[[Entity], None]
    cleanup: Callable[[], None] | None = None


def _lexical(tmp_path, embedder) -> Harness:
    retriever = TantivyLexicalRetriever(tmp_path / "lexical")
    retriever.build(MINI_CATALOG)
    return Harness(retriever, lambda entity: retriever.upsert([entity]))


def _dense(kind: str) -> Callable:
    def make(tmp_path, embedder) -> Harness:
        retriever = FaissDenseRetriever(embedder, tmp_path / f"dense-{kind}", kind=kind)
        retriever.build(MINI_CATALOG)
        return Harness(retriever, lambda entity: retriever.upsert([entity]))

    return make


def _memory(tmp_path, embedder) -> Harness:
    store = LocalMemoryStore()
    shown = [entity.id for entity in MINI_CATALOG]
    store.record(normalize_query(BROAD_QUERY), shown, ["t-halo", "t-cardigan"], timestamp=1.0)
    store.record(normalize_query(BROAD_QUERY), shown[:6], ["t-halo"], timestamp=2.0)
    for entity in MINI_CATALOG:
        store.record(normalize_query(entity.title), [entity.id], [entity.id], timestamp=3.0)
    retriever = MemoryRetriever(store)

    def add(entity: Entity) -> None:
        # Memory learns an entity from feedback on a query, not from the catalog.
        retriever.upsert([entity])
        store.record(normalize_query(entity.title), [entity.id], [entity.id], timestamp=4.0)

    return Harness(retriever, add)


def _explore(tmp_path, embedder) -> Harness:
    dense = FaissDenseRetriever(embedder, tmp_path / "explore-dense", kind="flat")
    dense.build(MINI_CATALOG)
    store = LocalMemoryStore()
    shown = [entity.id for entity in MINI_CATALOG]
    store.record(normalize_query(BROAD_QUERY), shown, ["t-halo"], timestamp=1.0)
    store.record(normalize_query(BROAD_QUERY), shown[:6], [], timestamp=2.0)
    # Explore reads the dense index; catalog changes reach it through the dense retriever.
    return Harness(ExploreRetriever(dense, store), lambda entity: dense.upsert([entity]))


FACTORIES = {
    "lexical": _lexical,
    "dense-flat": _dense("flat"),
    "dense-hnsw": _dense("hnsw"),
    "memory": _memory,
    "explore": _explore,
}


OPENSEARCH_URL = os.environ.get("LTRR_OPENSEARCH_URL", "")
NEEDS_OPENSEARCH = (
    pytest.mark.opensearch,
    pytest.mark.skipif(
        not OPENSEARCH_URL,
        reason="LTRR_OPENSEARCH_URL is not set: the OpenSearch contract tests need a live cluster "
        "(e.g. docker compose --profile opensearch up)",
    ),
)


def _opensearch_lexical(tmp_path, embedder) -> Harness:
    from retrievers.lexical_opensearch import OpenSearchLexicalRetriever

    retriever = OpenSearchLexicalRetriever(OPENSEARCH_URL, index=f"ltrr-test-lexical-{uuid.uuid4().hex}")
    retriever.build(MINI_CATALOG)
    return Harness(retriever, lambda entity: retriever.upsert([entity]), cleanup=retriever.drop)


def _opensearch_dense(tmp_path, embedder) -> Harness:
    from retrievers.dense_opensearch import OpenSearchDenseRetriever

    retriever = OpenSearchDenseRetriever(OPENSEARCH_URL, embedder, index=f"ltrr-test-dense-{uuid.uuid4().hex}")
    retriever.build(MINI_CATALOG)
    return Harness(retriever, lambda entity: retriever.upsert([entity]), cleanup=retriever.drop)


FACTORIES["opensearch-lexical"] = _opensearch_lexical
FACTORIES["opensearch-dense"] = _opensearch_dense
MARKS = {"opensearch-lexical": NEEDS_OPENSEARCH, "opensearch-dense": NEEDS_OPENSEARCH}


@pytest.fixture(params=[pytest.param(name, marks=MARKS.get(name, ())) for name in sorted(FACTORIES)])
def harness(request, tmp_path, embedder) -> Harness:
    made = FACTORIES[request.param](tmp_path, embedder)
    yield made
    if made.cleanup is not None:
        made.cleanup()
    close = getattr(made.retriever, "close", None)
    if close is not None:
        close()


def test_implements_protocol(harness):
    assert isinstance(harness.retriever, Retriever)
    assert harness.retriever.name in ("lexical", "dense", "memory", "explore")
    assert harness.retriever.health() == "ok"


@pytest.mark.parametrize("k", [1, 3, 5, 50])
def test_hits_are_ranked_and_bounded(harness, k):
    hits = harness.retriever.search(build_query(BROAD_QUERY), k)
    assert 1 <= len(hits) <= k
    assert [hit.rank for hit in hits] == list(range(1, len(hits) + 1))
    scores = [hit.score for hit in hits]
    assert scores == sorted(scores, reverse=True)
    assert len({hit.entity_id for hit in hits}) == len(hits)
    assert {hit.entity_id for hit in hits} <= {entity.id for entity in MINI_CATALOG}


@pytest.mark.parametrize("k", [0, -1])
def test_non_positive_k_returns_nothing(harness, k):
    assert harness.retriever.search(build_query(BROAD_QUERY), k) == []


def test_added_entity_is_findable_by_title_immediately(harness):
    query = build_query(NEWCOMER.title)
    assert NEWCOMER.id not in [hit.entity_id for hit in harness.retriever.search(query, 20)]
    harness.add(NEWCOMER)
    hits = harness.retriever.search(query, 5)
    assert hits and hits[0].entity_id == NEWCOMER.id


def test_upsert_replaces_instead_of_duplicating(harness):
    harness.add(NEWCOMER)
    harness.add(NEWCOMER)
    ids = [hit.entity_id for hit in harness.retriever.search(build_query(NEWCOMER.title), 50)]
    assert ids.count(NEWCOMER.id) == 1


def test_delete_removes_entity(harness):
    harness.add(NEWCOMER)
    harness.retriever.delete([NEWCOMER.id, "no-such-id"])
    ids = [hit.entity_id for hit in harness.retriever.search(build_query(NEWCOMER.title), 50)]
    assert NEWCOMER.id not in ids
    harness.retriever.delete([])


def test_delete_of_catalog_entity_hides_it_from_broad_query(harness):
    before = harness.retriever.search(build_query(BROAD_QUERY), 50)
    victim = before[0].entity_id
    harness.retriever.delete([victim])
    after = harness.retriever.search(build_query(BROAD_QUERY), 50)
    assert victim not in [hit.entity_id for hit in after]


@pytest.mark.parametrize("text", HOSTILE_QUERIES, ids=lambda t: repr(t[:20]))
def test_hostile_queries_do_not_raise(harness, text):
    hits = harness.retriever.search(build_query(text), 10)
    assert len(hits) <= 10
    assert [hit.rank for hit in hits] == list(range(1, len(hits) + 1))
