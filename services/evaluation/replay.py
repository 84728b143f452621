"""Off-policy replay: how would a policy have done on logged traffic?

For logged rounds ``(x_i, a_i, p_i, r_i)`` and a target policy ``pi``, with ``w_i = pi(a_i | x_i) / p_i``:
  * IPS  = mean(w_i r_i), stderr = std(w_i r_i) / sqrt(n)                       (Horvitz & Thompson 1952)
  * SNIPS = sum(w_i r_i) / sum(w_i), stderr by the delta method
    sqrt(sum w_i^2 (r_i - SNIPS)^2) / sum(w_i)                                 (Swaminathan & Joachims 2015)
Intervals are normal 95% intervals (estimate +- 1.96 stderr). Rewards and propensities are read from the
log as written; nothing is recomputed.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from bandit.base import Policy
from contracts import ConfigError, Context
from services.eventlog import event_sources
from services.ingest.ingestor import LoggedRound, join_rounds
from services.registry import policy_for_replay, reward_config
from services.settings import Settings

Z_95 = 1.959964


@dataclass(frozen=True, slots=True)
class Estimate:
    name: str
    value: float
    stderr: float
    low: float
    high: float


@dataclass(frozen=True, slots=True)
class ReplayResult:
    policy: str
    rounds: int
    skipped: int
    skip_reason: str
    logged_reward: float
    logged_stderr: float
    effective_sample_size: float
    estimates: tuple[Estimate, ...]

    def to_json(self) -> dict[str, Any]:
        record = asdict(self)
        record["estimates"] = {estimate.name: asdict(estimate) for estimate in self.estimates}
        return record


def _estimate(name: str, value: float, stderr: float) -> Estimate:
    return Estimate(name, value, stderr, value - Z_95 * stderr, value + Z_95 * stderr)


def ips_estimates(rewards: np.ndarray, logged_p: np.ndarray, target_p: np.ndarray) -> tuple[Estimate, Estimate, float]:
    """IPS and SNIPS estimates and the effective sample size ``(sum w)^2 / sum w^2``."""
    n = len(rewards)
    if n == 0:
        raise ConfigError("log: no replayable impressions; serve some traffic (or run `ltrr simulate`) first")
    weights = target_p / logged_p
    weighted = weights * rewards
    ips = float(weighted.mean())
    ips_stderr = float(weighted.std(ddof=1) / math.sqrt(n)) if n > 1 else float("inf")
    total_weight = float(weights.sum())
    if total_weight > 0:
        snips = float(weighted.sum() / total_weight)
        snips_stderr = float(math.sqrt(float(np.sum(weights**2 * (rewards - snips) ** 2))) / total_weight)
        ess = total_weight**2 / float(np.sum(weights**2))
    else:
        snips, snips_stderr, ess = 0.0, float("inf"), 0.0
    return _estimate("ips", ips, ips_stderr), _estimate("snips", snips, snips_stderr), ess


def target_probabilities(policy: Policy, rounds: Sequence[LoggedRound]) -> np.ndarray:
    return np.array(
        [policy.distribution(Context(r.context), r.decision.plans)[r.decision.index] for r in rounds], dtype=float
    )


def replay_policy(settings: Settings, spec: str, log: Path | None = None) -> ReplayResult:
    rounds, report = join_rounds(event_sources(settings.data_dir, log), reward_config(settings))
    policy = policy_for_replay(spec, settings)
    rewards = np.array([r.reward for r in rounds], dtype=float)
    logged_p = np.array([r.decision.probability for r in rounds], dtype=float)
    ips, snips, ess = ips_estimates(rewards, logged_p, target_probabilities(policy, rounds))
    logged_stderr = float(rewards.std(ddof=1) / math.sqrt(len(rewards))) if len(rewards) > 1 else float("inf")
    return ReplayResult(
        policy=spec if spec != "current" else f"current ({policy.version})",
        rounds=len(rounds),
        skipped=report.malformed,
        skip_reason="malformed log lines" if report.malformed else "none",
        logged_reward=float(rewards.mean()),
        logged_stderr=logged_stderr,
        effective_sample_size=ess,
        estimates=(ips, snips),
    )
