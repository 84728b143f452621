"""Vowpal Wabbit text-format encoding of a context and its candidate plans (``--cb_explore_adf``).

Shared line: ``shared |C <name>:<value> ...`` from ``Context.features``.
Action line per plan: ``|A <strategy>_<quota> ... uses_<strategy> ... log_total:<log1p(total)> total:<total/100>``
(every strategy's quota indicator, including ``_0``, so a per-candidate cost is linear in the features).
Feature names are escaped so ``|``, ``:``, whitespace and ``%`` cannot break the line (percent-encoding).
"""

from __future__ import annotations

import functools
import math
import re
from typing import Sequence

from contracts import BadRequest, Context, Plan

CONTEXT_NAMESPACE = "C"
ACTION_NAMESPACE = "A"

_UNSAFE = re.compile(r"[%|:\s]")


def escape_name(name: str) -> str:
    """Percent-encode the characters VW's text format reserves (``|``, ``:``, whitespace) and ``%`` itself."""
    return _UNSAFE.sub(lambda match: "%{:02X}".format(ord(match.group())), name)


def _format_value(value: float) -> str:
    return repr(float(value))


def shared_line(context: Context) -> str:
    parts = ["shared", f"|{CONTEXT_NAMESPACE}"]
    for name in sorted(context.features):
        value = context.features[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise BadRequest("context.features", f"feature {name!r} must be a finite number, got {value!r}")
        if value == 0:
            continue
        parts.append(f"{escape_name(name)}:{_format_value(value)}")
    return " ".join(parts)


def action_line(plan: Plan, label: str = "") -> str:
    """One plan as an action line; ``label`` is ``0:cost:probability`` for the chosen action when learning."""
    return f"{label} {_action_features(plan)}" if label else _action_features(plan)


@functools.lru_cache(maxsize=4096)
def _action_features(plan: Plan) -> str:
    parts = [f"|{ACTION_NAMESPACE}"]
    for strategy, quota in plan.quotas:
        name = escape_name(strategy)
        parts.append(f"{name}_{quota}")
        if quota > 0:
            parts.append(f"uses_{name}")
    parts.append(f"log_total:{_format_value(math.log1p(plan.total))}")
    # Linear in the candidates drawn, like the reward's cost term, so the model can price plan size exactly.
    parts.append(f"total:{_format_value(plan.total / 100.0)}")
    return " ".join(parts)


def encode(context: Context, plans: Sequence[Plan], labelled_index: int | None = None, cost: float = 0.0, probability: float = 1.0) -> list[str]:
    """The multi-line example: shared line first, then one line per plan (the labelled one carries
    ``0:cost:probability``)."""
    lines = [shared_line(context), *_action_lines(tuple(plans))]
    if labelled_index is not None:
        lines[1 + labelled_index] = action_line(plans[labelled_index], f"0:{_format_value(cost)}:{_format_value(probability)}")
    return lines


@functools.lru_cache(maxsize=64)
def _action_lines(plans: tuple[Plan, ...]) -> tuple[str, ...]:
    """The unlabelled action lines of a plan space (a policy learns every round over the same one)."""
    return tuple(action_line(plan) for plan in plans)
