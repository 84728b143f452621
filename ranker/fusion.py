"""Reciprocal-rank fusion: the ranker before any model exists, and the baseline a model must beat.

``score(d) = sum over strategies s that found d of 1 / (k + rank_s(d))`` with ``k = 60``
(Cormack, Clarke and Buettcher, "Reciprocal rank fusion outperforms Condorcet and individual rank
learning methods", SIGIR 2009). Ties are broken by ``entity_id`` ascending.
"""

from __future__ import annotations

from typing import Mapping, Sequence

from contracts import Candidate, ConfigError, EntityFacts, Query, Scored
from ranker.features import build_features, check_strategies


class FusionRanker:
    """``Ranker`` by RRF over ``strategies``; every ``Scored`` carries the full feature vector so
    impressions log training features before a model exists."""

    def __init__(self, strategies: Sequence[str], k: int = 60) -> None:
        if k < 0:
            raise ConfigError.about("k", f"expected an integer >= 0, got {k!r}")
        self.strategies = check_strategies(strategies)
        self.k = k
        self.version = f"rrf-{k}"

    def fusion_score(self, candidate: Candidate) -> float:
        return sum(
            1.0 / (self.k + hit.rank)
            for strategy, hit in candidate.provenance.items()
            if strategy in self.strategies
        )

    def rank(self, query: Query, candidates: Sequence[Candidate], facts: Mapping[str, EntityFacts]) -> list[Scored]:
        matrix = build_features(query, candidates, facts, self.strategies)
        scored = [
            Scored(candidate.entity_id, self.fusion_score(candidate), tuple(row.tolist()))
            for candidate, row in zip(candidates, matrix, strict=True)
        ]
        scored.sort(key=lambda item: (-item.score, item.entity_id))
        return scored
