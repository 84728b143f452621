"""The Q2E memory store protocol: per normalized query, per entity, impressions and engagements."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Protocol, Sequence, runtime_checkable

from contracts import BadRequest, ConfigError, EntityFacts


@dataclass(frozen=True, slots=True)
class EntityStat:
    """Statistics of one (query, entity) pair.

    ``impressions`` and ``clicks`` are the (possibly decayed) counts as of the pair's last recorded event;
    see ``MemoryStore`` for the decay. ``score`` is the smoothed click-through rate ``(clicks + alpha*prior) / (impressions + alpha)``
    shifted by +1 for observed pairs, so every observed pair outranks every predicted one
    (predicted scores lie in [0, 1)).
    """

    entity_id: str
    impressions: float
    clicks: float
    score: float
    predicted: bool


@dataclass(frozen=True, slots=True)
class StrategyOutcome:
    """What one finalized impression says about its retrieval strategies, under each of ``scopes`` (e.g.
    the query and the kind of query): which strategies drew candidates, and which of them supplied an
    engaged entity (credit from the candidates' provenance)."""

    scopes: tuple[str, ...]
    drawn: tuple[str, ...]
    credited: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class StrategyRecord:
    """A strategy's history under one scope: impressions it drew for, and how many of those it supplied an
    engaged entity in."""

    drawn: float
    credited: float


@runtime_checkable
class MemoryStore(Protocol):
    """Q2E statistics, optionally with exponential time decay.

    With ``half_life_s`` set (a constructor argument of every backend; ``None`` = no decay), each pair
    keeps ``last_update``, the latest event time recorded for it. An event at time ``t`` first decays
    the pair's counts, ``count * 0.5 ** ((t - last_update) / half_life_s)``, then adds its impression
    (and click), and sets ``last_update = t``. An event older than ``last_update`` (out of order) adds
    ``0.5 ** ((last_update - t) / half_life_s)`` instead, leaving ``last_update`` alone, so the result
    does not depend on arrival order. Decay is applied lazily at ``record`` time with the event's
    ``timestamp`` (event time, never the wall clock); reads (``top``) do not decay further: they return
    the counts and score as of each pair's last update. Pairs not recorded for a long time therefore
    keep their last score until their next event (or ``forget``).
    """

    backend: str  # "redis" or "local"

    def record(self, query: str, shown: Sequence[str], clicked: Iterable[str], timestamp: float) -> None:
        """Count one impression for every entity in ``shown`` and one click for every entity in ``clicked``
        (clicked entities not in ``shown`` also count as shown), decayed to the event ``timestamp``
        (seconds; ``BadRequest`` unless finite) when a half-life is set. Also adds one to each shown entity's ``exposure``.
        ``query`` is already normalized."""
        ...

    def exposure(self, entity_ids: Sequence[str]) -> list[float]:
        """Total impressions of each entity over every query, in the order given (0.0 when never shown).
        Counts every ``record`` since the entity was last forgotten; exposure does not decay."""
        ...

    def history(self, query: str, entity_ids: Sequence[str]) -> list[tuple[float, float]]:
        """``(impressions, clicks)`` of each entity for ``query``, in the order given, as of the pair's last
        update; ``(0.0, 0.0)`` for a pair never recorded (predicted pairs included). One round trip."""
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

    def record_strategies(self, outcomes: Sequence[StrategyOutcome]) -> None:
        """Add each outcome to the strategy history of each of its scopes (one round trip). A scope's
        history expires ``retention_s`` after its last outcome, where the backend has a retention."""
        ...

    def strategy_history(self, scopes: Sequence[str]) -> dict[str, dict[str, StrategyRecord]]:
        """Per scope, per strategy with any history there, its ``StrategyRecord`` (one round trip; a scope
        never recorded maps to ``{}``)."""
        ...

    def ping(self) -> bool: ...

    def clear(self) -> None: ...


# Cold start reads the shared entity facts type (``contracts.EntityFacts``); the old name stays an alias.
EntityMeta = EntityFacts


def observed_score(impressions: float, clicks: float, alpha: float, prior: float) -> float:
    """``1 + (clicks + alpha*prior) / (impressions + alpha)``: a Beta-smoothed click-through rate
    (additive smoothing toward ``prior`` with ``alpha`` pseudo-impressions), shifted by +1 so observed
    pairs outrank predicted ones."""
    return 1.0 + (clicks + alpha * prior) / (impressions + alpha)


def check_smoothing(alpha: float, prior: float) -> None:
    """Raise ``ConfigError`` naming the setting when the smoothing parameters are out of range."""
    if not alpha > 0:
        raise ConfigError.about("alpha", f"expected a number > 0 (pseudo-impressions), got {alpha!r}")
    if not 0 <= prior < 1:
        raise ConfigError.about("prior", f"expected a click-through prior in [0, 1), got {prior!r}")


def unique_shown(shown: Sequence[str], clicked: Iterable[str]) -> tuple[list[str], set[str]]:
    """Shown entities in first-seen order (clicked ones appended if not shown) and the clicked set."""
    clicked_set = set(clicked)
    order = list(dict.fromkeys(list(shown) + sorted(clicked_set)))
    return order, clicked_set


def check_half_life(half_life_s: float | None) -> None:
    """Raise ``ConfigError`` unless ``half_life_s`` is ``None`` (no decay) or a finite number > 0."""
    if half_life_s is None:
        return
    if isinstance(half_life_s, bool) or not isinstance(half_life_s, (int, float)) or not (
        math.isfinite(half_life_s) and half_life_s > 0
    ):
        raise ConfigError.about(
            "half_life_s", f"expected a half-life in seconds > 0, or unset for no decay; got {half_life_s!r}"
        )


def check_timestamp(timestamp: float) -> float:
    """The event time as a float; ``BadRequest`` when it is not a finite number."""
    try:
        value = float(timestamp)
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value):
        raise BadRequest("timestamp", f"expected a finite event time in seconds, got {timestamp!r}")
    return value


def decay_factor(elapsed_s: float, half_life_s: float | None) -> float:
    """``0.5 ** (elapsed_s / half_life_s)``: the weight left after ``elapsed_s`` seconds (1.0 without decay)."""
    if half_life_s is None:
        return 1.0
    return 0.5 ** (elapsed_s / half_life_s)


def check_prior(query: str, entity_id: str, prior: float) -> None:
    if not 0 <= prior < 1:
        raise BadRequest("prior", f"predicted prior for ({query!r}, {entity_id!r}) must be in [0, 1), got {prior!r}")
