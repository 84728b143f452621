"""The reward of a plan: the best engagement its page earned, minus the cost of the candidates it drew."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from contracts import ConfigError
from contracts.events import Engagement


def default_weights() -> dict[Engagement, float]:
    return {Engagement.CLICK: 1.0, Engagement.FAVORITE: 2.0, Engagement.PLAY: 3.0}


@dataclass(frozen=True, slots=True)
class RewardConfig:
    """``weights`` per engagement (click < favorite < play); ``cost_per_candidate`` is charged for every
    candidate the plan drew. The default 0.002 makes the largest plan (3 strategies at 100 = 300
    candidates) cost 0.6, more than half a click, so cheap plans win when they earn as much; a plan of
    20 candidates costs 0.04. Engagements later than ``window_seconds`` after the impression do not count."""

    weights: Mapping[Engagement, float] = field(default_factory=default_weights)
    cost_per_candidate: float = 0.002
    window_seconds: float = 300.0

    def __post_init__(self) -> None:
        missing = [engagement.value for engagement in Engagement if engagement not in self.weights]
        if missing:
            raise ConfigError.about("weights", f"no weight for {', '.join(missing)}; give every engagement a weight")
        for engagement, weight in self.weights.items():
            if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight) or weight < 0:
                raise ConfigError.about(f"weights[{engagement.value}]", f"expected a finite number >= 0, got {weight!r}")
        if not math.isfinite(self.cost_per_candidate) or self.cost_per_candidate < 0:
            raise ConfigError.about("cost_per_candidate", f"expected a number >= 0, got {self.cost_per_candidate!r}")
        if not self.window_seconds > 0:
            raise ConfigError.about("window_seconds", f"expected a number > 0, got {self.window_seconds!r}")


def reward(engagements: Iterable[tuple[Engagement | str, float]], candidates_drawn: int, config: RewardConfig) -> float:
    """``max(weight[event] for events within the window, default 0) - cost_per_candidate * candidates_drawn``.

    ``engagements`` are ``(event, seconds after the impression)``; small negative delays (clock skew)
    count as in the window. An event name outside ``Engagement`` raises ``BadRequest`` naming it.
    """
    best = 0.0
    for event, seconds_after in engagements:
        weight = config.weights[event if isinstance(event, Engagement) else Engagement.parse(event)]
        if seconds_after <= config.window_seconds:
            best = max(best, float(weight))
    return best - config.cost_per_candidate * candidates_drawn
