"""The plan space: every combination of per-strategy quotas from a small set of levels, minus the empty plan."""

from __future__ import annotations

import itertools
import re
from typing import Sequence

from contracts import BadRequest, ConfigError, Plan

_STRATEGY_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


def check_strategies(strategies: Sequence[str], setting: str = "strategies") -> tuple[str, ...]:
    """Sorted, validated strategy names (non-empty, unique, ``[A-Za-z0-9_.-]``)."""
    if isinstance(strategies, str) or not strategies:
        raise ConfigError.about(setting, f"expected a non-empty list of strategy names such as ['lexical', 'dense'], got {strategies!r}")
    for name in strategies:
        if not isinstance(name, str) or not _STRATEGY_NAME.match(name):
            raise ConfigError.about(setting, f"strategy name {name!r} must match [A-Za-z0-9_.-]+ (no '+', '=' or spaces)")
    if len(set(strategies)) != len(strategies):
        raise ConfigError.about(setting, f"strategy names must be unique, got {list(strategies)!r}")
    return tuple(sorted(strategies))


def plan_space(strategies: Sequence[str], levels: Sequence[int] = (0, 20, 100)) -> tuple[Plan, ...]:
    """Every ``{strategy: level}`` combination except the all-zero plan: ``len(levels)**n - 1`` plans
    (26 for 3 strategies and 3 levels). Order is deterministic: strategies sorted by name, levels sorted,
    the last strategy varying fastest."""
    names = check_strategies(strategies)
    if isinstance(levels, str) or not levels:
        raise ConfigError.about("levels", f"expected a non-empty list of quotas such as [0, 20, 100], got {levels!r}")
    for level in levels:
        if isinstance(level, bool) or not isinstance(level, int) or level < 0:
            raise ConfigError.about("levels", f"quotas must be integers >= 0, got {level!r} in {list(levels)!r}")
    sorted_levels = sorted(set(levels))
    if not any(level > 0 for level in sorted_levels):
        raise ConfigError.about("levels", f"at least one quota must be > 0, got {list(levels)!r}")
    plans = []
    for quotas in itertools.product(sorted_levels, repeat=len(names)):
        if any(quotas):
            plans.append(Plan(tuple(zip(names, quotas, strict=True))))
    return tuple(plans)


def parse_plans(names: Sequence[str], setting: str = "plans") -> tuple[Plan, ...]:
    """Plans from their names (``dense=100+lexical=20``), in the order given; duplicates and empty plans are errors."""
    if isinstance(names, str) or not names:
        raise ConfigError.about(setting, f"expected a non-empty list of plan names such as ['lexical=100+dense=20'], got {names!r}")
    plans: list[Plan] = []
    for name in names:
        try:
            plan = Plan.parse(name)
        except BadRequest as error:
            raise ConfigError.about(setting, f"cannot parse plan {name!r}; write it as 'strategy=quota+strategy=quota'") from error
        check_strategies([strategy for strategy, _ in plan.quotas], setting)
        if any(quota < 0 for _, quota in plan.quotas):
            raise ConfigError.about(setting, f"plan {name!r} has a negative quota; quotas must be >= 0")
        if plan.total == 0:
            raise ConfigError.about(setting, f"plan {name!r} draws no candidates; the empty plan is not an action")
        if plan in plans:
            raise ConfigError.about(setting, f"plan {name!r} is listed twice")
        plans.append(plan)
    return tuple(plans)
