"""Baseline policies: uniform-random over the plans, and one fixed plan. Control arms for replay."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from bandit.base import decide
from contracts import ArtifactError, BadRequest, ConfigError, Context, Decision, Plan
from contracts.artifacts import MANIFEST_FILE, read_manifest, write_manifest


def _write_manifest(directory: Path, manifest: dict) -> None:
    write_manifest(directory, manifest)


def _read_manifest(directory: Path, kind: str) -> dict:
    manifest = read_manifest(directory, "bandit model", "save the policy again")
    if manifest.get("kind") != kind:
        path = Path(directory) / MANIFEST_FILE
        raise ArtifactError(f"bandit model: {path} holds kind={manifest.get('kind')!r}, expected {kind!r}; load it with the {manifest.get('kind')!r} policy")
    return manifest


def _check_plans(plans: Sequence[Plan]) -> tuple[Plan, ...]:
    plans = tuple(plans)
    if not plans:
        raise ConfigError.about("plans", "the policy was offered no plans; offer at least one")
    return plans


class UniformPolicy:
    """Every plan with probability ``1/len(plans)``."""

    version = "uniform"

    def distribution(self, context: Context, plans: Sequence[Plan]) -> tuple[float, ...]:
        plans = _check_plans(plans)
        return (1.0 / len(plans),) * len(plans)

    def choose(self, context: Context, plans: Sequence[Plan], draw: float) -> Decision:
        plans = _check_plans(plans)
        return decide(plans, self.distribution(context, plans), draw, self.version)

    def learn(self, context: Context, decision: Decision, reward: float) -> None:
        return None

    def save(self, directory: Path) -> None:
        _write_manifest(directory, {"kind": "uniform", "version": self.version})

    @classmethod
    def load(cls, directory: Path) -> UniformPolicy:
        _read_manifest(directory, "uniform")
        return cls()


class FixedPlanPolicy:
    """Always ``plan`` (probability 1, all mass on it); it must be among the plans offered."""

    def __init__(self, plan: Plan) -> None:
        if plan.total <= 0:
            raise ConfigError.about("plan", f"{plan.name!r} draws no candidates; give at least one quota > 0")
        self.plan = plan
        self.version = f"fixed:{plan.name}"

    def distribution(self, context: Context, plans: Sequence[Plan]) -> tuple[float, ...]:
        plans = _check_plans(plans)
        matching = [plan for plan in plans if plan.draws_like(self.plan)]
        if not matching:
            raise ConfigError.about("plan", f"{self.plan.name!r} is not among the {len(plans)} plans offered; offer it, or fix the plan")
        return tuple(1.0 if plan == matching[0] else 0.0 for plan in plans)

    def choose(self, context: Context, plans: Sequence[Plan], draw: float) -> Decision:
        plans = _check_plans(plans)
        return decide(plans, self.distribution(context, plans), draw, self.version)

    def learn(self, context: Context, decision: Decision, reward: float) -> None:
        return None

    def save(self, directory: Path) -> None:
        _write_manifest(directory, {"kind": "fixed", "version": self.version, "plan": self.plan.name})

    @classmethod
    def load(cls, directory: Path) -> FixedPlanPolicy:
        manifest = _read_manifest(directory, "fixed")
        try:
            return cls(Plan.parse(manifest["plan"]))
        except (KeyError, BadRequest) as error:
            raise ArtifactError(f"bandit model: {directory}/{MANIFEST_FILE} has no valid 'plan' ({error!r}); save the policy again") from error
