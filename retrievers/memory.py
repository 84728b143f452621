"""Memory retrieval: the entities users engaged with for this exact normalized query (Q2E statistics)."""

from __future__ import annotations

import logging
from typing import Sequence

from catalog.schema import Entity
from contracts import Hit, Query
from memory_index.base import MemoryStore
from retrievers.text import normalize_query

logger = logging.getLogger(__name__)


class MemoryRetriever:
    """``Retriever`` named ``"memory"`` over a ``MemoryStore``.

    Scores are the store's: observed pairs score in [1, 2), cold-start predictions in [0, 1).
    Entities enter the store through feedback ingestion, not ``upsert`` (a no-op here).
    """

    name = "memory"

    def __init__(self, store: MemoryStore) -> None:
        self.store = store

    def search(self, query: Query, k: int) -> list[Hit]:
        if k <= 0:
            return []
        key = query.normalized or normalize_query(query.text)
        if not key:
            return []
        stats = self.store.top(key, k)
        return [Hit(entity_id=s.entity_id, score=float(s.score), rank=rank) for rank, s in enumerate(stats[:k], start=1)]

    def upsert(self, entities: Sequence[Entity]) -> None:
        """Nothing to do: memory learns from feedback, not from the catalog."""

    def delete(self, ids: Sequence[str]) -> None:
        if ids:
            self.store.forget(list(ids))

    def health(self) -> str:
        try:
            reachable = self.store.ping()
        except Exception as error:  # noqa: BLE001 - health reports whatever is wrong
            return f"memory store ({getattr(self.store, 'backend', '?')}) failed: {error}"
        return "ok" if reachable else f"memory store ({getattr(self.store, 'backend', '?')}) unreachable"
