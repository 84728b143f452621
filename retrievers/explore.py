"""Exploration retrieval: entities related to the query that users have rarely been shown.

The dense retriever proposes the query's ``pool`` nearest entities; each is scored
``similarity / (1 + impressions)``, where ``impressions`` is the entity's exposure in the memory store
(impressions over every query). The ``k`` best are returned: a related but under-exposed entity rises
above well-known neighbours, and an entity outside the dense pool is never returned however unexposed.
Ties go to the higher similarity, then to the smaller entity id, so the order is a pure function of the
index and the store (no randomness). Similarities below zero make the division shrink their magnitude,
so among unrelated (negative) neighbours exposure does not lower the score; they still rank below every
neighbour with a positive similarity.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from catalog.schema import Entity
from contracts import ConfigError, Hit, Query
from memory_index.base import MemoryStore
from retrievers.dense_faiss import FaissDenseRetriever

logger = logging.getLogger(__name__)


class ExploreRetriever:
    """``Retriever`` named ``"explore"`` over a ``FaissDenseRetriever`` and a ``MemoryStore``'s exposure.

    ``pool``: how many dense neighbours are considered (at least ``k`` are always fetched). ``seed`` is kept
    for configuration symmetry with other random components; the ranking uses no randomness.

    The dense retriever owns the index: ``upsert`` is a no-op (the pipeline sends catalog updates to every
    retriever, dense included, and re-encoding here would double the work). ``delete`` forwards to the
    dense retriever, which ignores ids it no longer holds, so a deleted entity is never explored even when
    this retriever is the only one told. Exposure comes from feedback ingestion into the store.
    """

    name = "explore"

    def __init__(self, dense: FaissDenseRetriever, store: MemoryStore, pool: int = 200, seed: int = 0) -> None:
        if isinstance(pool, bool) or not isinstance(pool, int) or pool < 1:
            raise ConfigError(f"pool: expected the number of dense neighbours to consider, an int >= 1; got {pool!r}")
        self.dense = dense
        self.store = store
        self.pool = pool
        self.seed = seed

    def search(self, query: Query, k: int) -> list[Hit]:
        if k <= 0:
            return []
        neighbours = self.dense.search(query, max(self.pool, k))
        if not neighbours:
            return []
        exposures = self.store.exposure([hit.entity_id for hit in neighbours])
        scored = sorted(
            ((hit.score / (1.0 + impressions), hit.score, hit.entity_id) for hit, impressions in zip(neighbours, exposures, strict=True)),
            key=lambda item: (-item[0], -item[1], item[2]),
        )
        return [Hit(entity_id=entity_id, score=score, rank=rank)
                for rank, (score, _, entity_id) in enumerate(scored[:k], start=1)]

    def upsert(self, entities: Sequence[Entity]) -> None:
        """Nothing to do: the dense retriever indexes entities (see the class docstring)."""

    def delete(self, ids: Sequence[str]) -> None:
        if ids:
            self.dense.delete(ids)

    def health(self) -> str:
        dense_state = self.dense.health()
        if dense_state != "ok":
            return f"explore: {dense_state}"
        backend = getattr(self.store, "backend", "?")
        try:
            reachable = self.store.ping()
        except Exception as error:  # noqa: BLE001 - health reports whatever is wrong
            return f"explore: memory store ({backend}) failed: {error}"
        return "ok" if reachable else f"explore: memory store ({backend}) unreachable"
