"""Frozen value types that cross stage boundaries.

A type used by only one stage lives in that stage's ``base.py`` instead.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from contracts.errors import BadRequest


@dataclass(frozen=True, slots=True)
class Slot:
    """A span of the query recognized as a catalog concept (``kind`` in artist/title/genre/mood/type)."""

    kind: str
    value: str
    matched: str


@dataclass(frozen=True, slots=True)
class Query:
    text: str
    normalized: str
    user_id: str | None = None
    session_id: str | None = None
    timestamp: float = 0.0
    slots: tuple[Slot, ...] = ()

    @property
    def tokens(self) -> tuple[str, ...]:
        return tuple(self.normalized.split())


@dataclass(frozen=True, slots=True)
class Hit:
    """One retriever result: ``rank`` is 1-based within that retriever's list."""

    entity_id: str
    score: float
    rank: int


@dataclass(frozen=True, slots=True)
class Candidate:
    """An entity in the union, with the hit each strategy that found it produced, and how often it was
    shown (``impressions``) and engaged with (``clicks``) for this query before (the memory index's counts)."""

    entity_id: str
    provenance: Mapping[str, Hit]
    impressions: float = 0.0
    clicks: float = 0.0


@dataclass(frozen=True, slots=True)
class EntityFacts:
    """The entity attributes the ranker may use, without depending on the catalog package."""

    entity_id: str
    type: str
    title: str
    artist: str = ""
    album: str = ""
    genres: tuple[str, ...] = ()
    moods: tuple[str, ...] = ()
    popularity: float = 0.0


@dataclass(frozen=True, slots=True)
class Scored:
    """A ranked candidate: the score the ranker gave and the exact feature vector it scored."""

    entity_id: str
    score: float
    features: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class Context:
    """Context features for the bandit: numeric values, and categoricals written as ``name=value`` with 1.0."""

    features: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Plan:
    """How many candidates each strategy contributes. Quotas are stored sorted by strategy name."""

    quotas: tuple[tuple[str, int], ...]

    @classmethod
    def of(cls, quota_by_strategy: Mapping[str, int]) -> Plan:
        return cls(tuple(sorted((name, int(q)) for name, q in quota_by_strategy.items())))

    def quota(self, strategy: str) -> int:
        for name, quota in self.quotas:
            if name == strategy:
                return quota
        return 0

    @property
    def total(self) -> int:
        return sum(q for _, q in self.quotas)

    @property
    def name(self) -> str:
        """Readable and parseable: ``dense=100+lexical=0+memory=20``."""
        return "+".join(f"{name}={q}" for name, q in self.quotas)

    @classmethod
    def parse(cls, name: str) -> Plan:
        """The plan named ``strategy=quota+strategy=quota``; ``BadRequest`` (field ``plan``) otherwise."""
        return _parse_plan(str(name)) if cls is Plan else cls._parse(name)

    @classmethod
    def _parse(cls, name: str) -> Plan:
        quota_by_strategy: dict[str, int] = {}
        for part in str(name).split("+"):
            strategy, _, quota = part.partition("=")
            try:
                quota_by_strategy[strategy.strip()] = int(quota)
            except ValueError:
                raise BadRequest("plan", f"cannot parse {name!r}; write it as strategy=quota+strategy=quota, e.g. dense=100+lexical=20") from None
        return cls.of(quota_by_strategy)

    def as_dict(self) -> dict[str, int]:
        return dict(self.quotas)

    def draws_like(self, other: Plan) -> bool:
        """Whether both plans draw the same quotas, a strategy one of them omits counting as 0."""
        return {n: q for n, q in self.quotas if q} == {n: q for n, q in other.quotas if q}


@dataclass(frozen=True, slots=True)
class Decision:
    """The bandit's choice: ``plans[index] == plan``, chosen with ``probability == distribution[index]``;
    ``draw`` is the uniform number in [0, 1) that picked it (``choose_index``), so the choice can be
    recomputed from the log; ``None`` for decisions logged before draws were."""

    plan: Plan
    probability: float
    distribution: tuple[float, ...]
    plans: tuple[Plan, ...]
    index: int
    policy_version: str
    draw: float | None = None


def choose_index(distribution: Sequence[float], draw: float) -> int:
    """The first index, in order, whose cumulative probability (summed left to right in float64) exceeds
    ``draw``; when rounding leaves the total at or below ``draw``, the last index with probability > 0."""
    cumulative = 0.0
    last_possible = 0
    for index, probability in enumerate(distribution):
        cumulative += float(probability)
        if probability > 0:
            last_possible = index
            if cumulative > draw:
                return index
    return last_possible


@functools.lru_cache(maxsize=4096)
def _parse_plan(name: str) -> Plan:
    """Plans are few and parsed once per logged impression and plan: remember them (they are immutable)."""
    return Plan._parse(name)
