"""In-process Q2E store: the same semantics as the Redis store, in dicts guarded by one lock.

Used when Redis is unreachable (announced by the caller) and in tests; nothing survives the process.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Iterable, Sequence

from memory_index.base import (
    EntityStat,
    StrategyOutcome,
    StrategyRecord,
    check_half_life,
    check_prior,
    check_smoothing,
    check_timestamp,
    decay_factor,
    observed_score,
    unique_shown,
)

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class _PairCounts:
    impressions: float
    clicks: float
    score: float
    last_update: float | None = None  # None: predicted, never recorded

    @property
    def predicted(self) -> bool:
        return self.score < 1.0


class LocalMemoryStore:
    """``MemoryStore`` backed by process memory.

    Per normalized query: ``{entity_id: counts, score, last_update}``; per entity: the queries it appears
    in (so ``forget`` touches only those) and its exposure. ``top_limit`` caps ``n`` in ``top``;
    ``half_life_s`` sets the time decay described in ``MemoryStore`` (``None``: no decay).
    """

    backend = "local"

    def __init__(
        self, alpha: float = 2.0, prior: float = 0.05, top_limit: int = 1000, half_life_s: float | None = None
    ) -> None:
        check_smoothing(alpha, prior)
        check_half_life(half_life_s)
        self.alpha = alpha
        self.prior = prior
        self.top_limit = top_limit
        self.half_life_s = None if half_life_s is None else float(half_life_s)
        self._lock = threading.Lock()
        self._pairs_by_query: dict[str, dict[str, _PairCounts]] = {}
        self._queries_by_entity: dict[str, set[str]] = {}
        self._exposure_by_entity: dict[str, int] = {}
        self._strategies_by_scope: dict[str, dict[str, list[float]]] = {}  # scope -> strategy -> [drawn, credited]

    def record(self, query: str, shown: Sequence[str], clicked: Iterable[str], timestamp: float) -> None:
        entity_ids, clicked_set = unique_shown(shown, clicked)
        if not entity_ids:
            return
        now = check_timestamp(timestamp)
        with self._lock:
            pairs = self._pairs_by_query.setdefault(query, {})
            for entity_id in entity_ids:
                counts = pairs.get(entity_id)
                last_update = None if counts is None else counts.last_update
                if counts is None or last_update is None:
                    counts = pairs[entity_id] = _PairCounts(0.0, 0.0, 0.0, now)
                    last_update = now
                click = 1.0 if entity_id in clicked_set else 0.0
                if now >= last_update:
                    kept = decay_factor(now - last_update, self.half_life_s)
                    counts.impressions = counts.impressions * kept + 1.0
                    counts.clicks = counts.clicks * kept + click
                    counts.last_update = now
                else:  # an older event arrives late: add it as decayed to last_update
                    weight = decay_factor(last_update - now, self.half_life_s)
                    counts.impressions += weight
                    counts.clicks += click * weight
                counts.score = observed_score(counts.impressions, counts.clicks, self.alpha, self.prior)
                self._queries_by_entity.setdefault(entity_id, set()).add(query)
                self._exposure_by_entity[entity_id] = self._exposure_by_entity.get(entity_id, 0) + 1

    def exposure(self, entity_ids: Sequence[str]) -> list[float]:
        with self._lock:
            return [float(self._exposure_by_entity.get(entity_id, 0)) for entity_id in entity_ids]

    def history(self, query: str, entity_ids: Sequence[str]) -> list[tuple[float, float]]:
        with self._lock:
            pairs = self._pairs_by_query.get(query, {})
            found = [pairs.get(entity_id) for entity_id in entity_ids]
        return [(0.0, 0.0) if pair is None else (pair.impressions, pair.clicks) for pair in found]

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
                self._exposure_by_entity.pop(entity_id, None)
                for query in self._queries_by_entity.pop(entity_id, set()):
                    pairs = self._pairs_by_query.get(query)
                    if pairs is None:
                        continue
                    pairs.pop(entity_id, None)
                    if not pairs:
                        del self._pairs_by_query[query]

    def ping(self) -> bool:
        return True

    def record_strategies(self, outcomes: Sequence[StrategyOutcome]) -> None:
        with self._lock:
            for outcome in outcomes:
                for scope in outcome.scopes:
                    by_strategy = self._strategies_by_scope.setdefault(scope, {})
                    for strategy in dict.fromkeys(outcome.drawn):
                        by_strategy.setdefault(strategy, [0.0, 0.0])[0] += 1.0
                    for strategy in dict.fromkeys(outcome.credited):
                        by_strategy.setdefault(strategy, [0.0, 0.0])[1] += 1.0

    def strategy_history(self, scopes: Sequence[str]) -> dict[str, dict[str, StrategyRecord]]:
        with self._lock:
            return {
                scope: {strategy: StrategyRecord(drawn, credited) for strategy, (drawn, credited) in self._strategies_by_scope.get(scope, {}).items()}
                for scope in scopes
            }

    def clear(self) -> None:
        with self._lock:
            self._strategies_by_scope.clear()
            self._pairs_by_query.clear()
            self._queries_by_entity.clear()
            self._exposure_by_entity.clear()
