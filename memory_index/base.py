"""The Q2E memory store protocol: per normalized query, per entity, impressions and engagements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, Protocol, Sequence, runtime_checkable

from contracts import BadRequest, ConfigError


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


@dataclass(frozen=True, slots=True)
class EntityMeta:
    """The catalog fields cold start reads, without importing the catalog package.

    ``popularity`` is on any non-negative scale; cold start uses its rank among the entities given.
    """

    entity_id: str
    type: str
    title: str
    artist: str = ""
    album: str = ""
    genres: tuple[str, ...] = ()
    moods: tuple[str, ...] = ()
    popularity: float = 0.0


def observed_score(impressions: float, clicks: float, alpha: float, prior: float) -> float:
    """``1 + (clicks + alpha*prior) / (impressions + alpha)``: a Beta-smoothed click-through rate
    (additive smoothing toward ``prior`` with ``alpha`` pseudo-impressions), shifted by +1 so observed
    pairs outrank predicted ones."""
    return 1.0 + (clicks + alpha * prior) / (impressions + alpha)


def check_smoothing(alpha: float, prior: float) -> None:
    """Raise ``ConfigError`` naming the setting when the smoothing parameters are out of range."""
    if not alpha > 0:
        raise ConfigError(f"LTRR_MEMORY_ALPHA: expected a number > 0 (pseudo-impressions), got {alpha!r}")
    if not 0 <= prior < 1:
        raise ConfigError(f"LTRR_MEMORY_PRIOR: expected a click-through prior in [0, 1), got {prior!r}")


def unique_shown(shown: Sequence[str], clicked: Iterable[str]) -> tuple[list[str], set[str]]:
    """Shown entities in first-seen order (clicked ones appended if not shown) and the clicked set."""
    clicked_set = set(clicked)
    order = list(dict.fromkeys(list(shown) + sorted(clicked_set)))
    return order, clicked_set


def check_prior(query: str, entity_id: str, prior: float) -> None:
    if not 0 <= prior < 1:
        raise BadRequest("prior", f"predicted prior for ({query!r}, {entity_id!r}) must be in [0, 1), got {prior!r}")
