"""The policy protocol: choose a plan for a context, learn from its reward."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, Sequence, runtime_checkable

from contracts import Context, Decision, Plan, choose_index


@runtime_checkable
class Policy(Protocol):
    version: str

    def choose(self, context: Context, plans: Sequence[Plan], draw: float) -> Decision:
        """The plan ``choose_index(distribution, draw)`` picks; ``draw`` is uniform in [0, 1) and comes from
        the caller's generator (one per process), so reloading a policy never replays a random stream."""
        ...

    def distribution(self, context: Context, plans: Sequence[Plan]) -> tuple[float, ...]:
        """The probability the policy gives each of ``plans`` (sums to 1); used by replay."""
        ...

    def learn(self, context: Context, decision: Decision, reward: float) -> None:
        """Update from the logged (plan, probability, reward); baselines ignore it."""
        ...

    def save(self, directory: Path) -> None: ...


def decide(plans: tuple[Plan, ...], distribution: tuple[float, ...], draw: float, version: str) -> Decision:
    """The ``Decision`` that ``draw`` makes from ``distribution`` over ``plans``."""
    if not 0.0 <= draw < 1.0:
        raise ValueError(f"draw: expected a number in [0, 1), got {draw!r}")
    index = choose_index(distribution, draw)
    return Decision(plans[index], distribution[index], distribution, plans, index, version, draw)
