"""The ranker protocol: order the candidate union for a query."""

from __future__ import annotations

from typing import Mapping, Protocol, Sequence, runtime_checkable

from contracts import Candidate, EntityFacts, Query, Scored


@runtime_checkable
class Ranker(Protocol):
    version: str

    def rank(self, query: Query, candidates: Sequence[Candidate], facts: Mapping[str, EntityFacts]) -> list[Scored]:
        """All candidates, best first, each with the exact feature vector that was scored."""
        ...
