"""The contextual bandit that chooses a retrieval plan (strategy quotas) per request."""

from bandit.base import Policy
from bandit.baselines import FixedPlanPolicy, UniformPolicy
from bandit.features import encode, escape_name
from bandit.plans import parse_plans, plan_space
from bandit.reward import RewardConfig, reward
from bandit.vw_policy import VWPolicy

__all__ = [
    "FixedPlanPolicy",
    "Policy",
    "RewardConfig",
    "UniformPolicy",
    "VWPolicy",
    "encode",
    "escape_name",
    "parse_plans",
    "plan_space",
    "reward",
]
