"""In-process Q2E store: the same semantics as the Redis store, in dicts guarded by one lock.

Used when Redis is unreachable (announced by the caller) and in tests; nothing survives the process.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Iterable, Sequence

from memory_index.base import EntityStat, check_prior, check_smoothing, observed_score, unique_shown

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class _PairCounts:
    impressions: float
    clicks: float
    score: float

    @property
    def predicted(self) -> bool:
        return self.score < 1.0


class LocalMemoryStore:
    """``MemoryStore`` backed by process memory.

    Per normalized query: ``{entity_id: counts and score}``; per entity: the queries it appears in
    (so ``forget`` touches only those). ``top_limit`` caps ``n`` in ``top``.
    """

    backend = "local"

    def __init__(self, alpha: float = 2.0, prior: float = 0.05, top_limit: int = 1000) -> None:
        check_smoothing(alpha, prior)
        self.alpha = alpha
        self.prior = prior
        self.top_limit = top_limit
        self._lock = threading.Lock()
        self._pairs_by_query: dict[str, dict[str, _PairCounts]] = {}
        self._queries_by_entity: dict[str, set[str]] = {}

    def record(self, query: str, shown: Sequence[str], clicked: Iterable[str], timestamp: float) -> None:
        entity_ids, clicked_set = unique_shown(shown, clicked)
        if not entity_ids:
            return
        with self._lock:
            pairs = self._pairs_by_query.setdefault(query, {})
            for entity_id in entity_ids:
                counts = pairs.get(entity_id)
                if counts is None:
                    counts = pairs[entity_id] = _PairCounts(0.0, 0.0, 0.0)
                counts.impressions += 1.0
                if entity_id in clicked_set:
                    counts.clicks += 1.0
                counts.score = observed_score(counts.impressions, counts.clicks, self.alpha, self.prior)
                self._queries_by_entity.setdefault(entity_id, set()).add(query)

    def predict(self, pairs: Iterable[tuple[str, str, float]]) -> int:
        written = 0
        with self._lock:
            for query, entity_id, prior in pairs:
                check_prior(query, entity_id, prior)
                by_entity = self._pairs_by_query.setdefault(query, {})
                counts = by_entity.get(entity_id)
                if counts is not None and not counts.predicted:
                    continue
                by_entity[entity_id] = _PairCounts(0.0, 0.0, float(prior))
                self._queries_by_entity.setdefault(entity_id, set()).add(query)
                written += 1
        return written

    def top(self, query: str, n: int) -> list[EntityStat]:
        n = min(n, self.top_limit)
        if n <= 0:
            return []
        with self._lock:
            items = list(self._pairs_by_query.get(query, {}).items())
        # Same order as Redis ZREVRANGE: score descending, ties by member descending.
        items.sort(key=lambda item: (item[1].score, item[0]), reverse=True)
        return [
            EntityStat(entity_id, counts.impressions, counts.clicks, counts.score, counts.predicted)
            for entity_id, counts in items[:n]
        ]

    def count(self, query: str) -> int:
        with self._lock:
            return len(self._pairs_by_query.get(query, {}))

    def forget(self, entity_ids: Sequence[str]) -> None:
        with self._lock:
            for entity_id in entity_ids:
                for query in self._queries_by_entity.pop(entity_id, set()):
                    pairs = self._pairs_by_query.get(query)
                    if pairs is None:
                        continue
                    pairs.pop(entity_id, None)
                    if not pairs:
                        del self._pairs_by_query[query]

    def ping(self) -> bool:
        return True

    def clear(self) -> None:
        with self._lock:
            self._pairs_by_query.clear()
            self._queries_by_entity.clear()
