"""The Q2E memory store protocol: per normalized query, per entity, impressions and engagements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, Protocol, Sequence, runtime_checkable


@dataclass(frozen=True, slots=True)
class EntityStat:
    """Statistics of one (query, entity) pair.

    ``score`` is the smoothed click-through rate ``(clicks + alpha*prior) / (impressions + alpha)``
    shifted by +1 for observed pairs, so every observed pair outranks every predicted one
    (predicted scores lie in [0, 1)).
    """

    entity_id: str
    impressions: float
    clicks: float
    score: float
    predicted: bool


@runtime_checkable
class MemoryStore(Protocol):
    backend: str  # "redis" or "local"

    def record(self, query: str, shown: Sequence[str], clicked: Iterable[str], timestamp: float) -> None:
        """Count one impression for every entity in ``shown`` and one click for every entity in ``clicked``
        (clicked entities not in ``shown`` also count as shown). ``query`` is already normalized."""
        ...

    def predict(self, pairs: Iterable[tuple[str, str, float]]) -> int:
        """Cold start: store predicted (query, entity_id, prior in [0, 1)) pairs where nothing was observed yet.
        Returns how many were written."""
        ...

    def top(self, query: str, n: int) -> list[EntityStat]:
        """The ``n`` best entities for ``query`` by score, best first."""
        ...

    def count(self, query: str) -> int:
        """How many entities the store knows for ``query`` (observed or predicted)."""
        ...

    def forget(self, entity_ids: Sequence[str]) -> None:
        """Remove entities from every query (entity deleted from the catalog)."""
        ...

    def ping(self) -> bool: ...

    def clear(self) -> None: ...
