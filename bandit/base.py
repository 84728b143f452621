"""The policy protocol: choose a plan for a context, learn from its reward."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, Sequence, runtime_checkable

from contracts import Context, Decision, Plan


@runtime_checkable
class Policy(Protocol):
    version: str

    def choose(self, context: Context, plans: Sequence[Plan]) -> Decision:
        """Sample a plan from the policy's distribution over ``plans`` (seeded generator)."""
        ...

    def distribution(self, context: Context, plans: Sequence[Plan]) -> tuple[float, ...]:
        """The probability the policy gives each of ``plans`` (sums to 1); used by replay."""
        ...

    def learn(self, context: Context, decision: Decision, reward: float) -> None:
        """Update from the logged (plan, probability, reward); baselines ignore it."""
        ...

    def save(self, directory: Path) -> None: ...
