from __future__ import annotations

import math

import pytest

from bandit import RewardConfig, encode, escape_name, parse_plans, plan_space, reward
from bandit.features import action_line, shared_line
from contracts import BadRequest, ConfigError, Context, Plan
from contracts.events import Engagement


def test_plan_space_has_26_plans_without_the_empty_one():
    plans = plan_space(["lexical", "dense", "memory"])
    assert len(plans) == 3**3 - 1
    assert len(set(plans)) == len(plans)
    assert all(plan.total > 0 for plan in plans)
    assert plans == plan_space(["memory", "lexical", "dense"])  # order does not depend on input order
    assert plans[0] == Plan.of({"dense": 0, "lexical": 0, "memory": 20})
    assert plans[-1] == Plan.of({"dense": 100, "lexical": 100, "memory": 100})


@pytest.mark.parametrize(
    "strategies, levels, setting",
    [([], (0, 20), "^strategies: "), (["a", "a"], (0, 20), "^strategies: "), (["a+b"], (0, 20), "^strategies: "),
     (["a"], (), "^levels: "), (["a"], (0,), "^levels: "), (["a"], (0, -5), "^levels: ")],
)
def test_plan_space_rejects_bad_settings(strategies, levels, setting):
    with pytest.raises(ConfigError, match=setting):
        plan_space(strategies, levels)


def test_parse_plans():
    plans = parse_plans(["lexical=100+dense=20", "memory=20"])
    assert plans == (Plan.of({"lexical": 100, "dense": 20}), Plan.of({"memory": 20}))
    for bad in (["lexical=0"], ["lexical=x"], ["memory=20", "memory=20"], []):
        with pytest.raises(ConfigError, match="^plans: "):
            parse_plans(bad)


def test_escaping_keeps_vw_lines_intact():
    assert escape_name("genre=hip hop|x:y%") == "genre=hip%20hop%7Cx%3Ay%25"
    line = shared_line(Context({"genre=hip hop|x:y": 1.0, "hour": 13.0, "zero": 0.0}))
    assert line == "shared |C genre=hip%20hop%7Cx%3Ay:1.0 hour:13.0"
    assert action_line(Plan.of({"lexical": 100, "dense": 0})) == f"|A dense_0 lexical_100 uses_lexical log_total:{math.log1p(100)!r} total:1.0"
    lines = encode(Context({"a": 1.0}), [Plan.of({"x": 20}), Plan.of({"x": 100})], labelled_index=1, cost=-2.5, probability=0.25)
    assert lines[2].startswith("0:-2.5:0.25 |A x_100")
    assert not lines[1].startswith("0:")
    with pytest.raises(BadRequest, match="context.features"):
        shared_line(Context({"bad": float("nan")}))


def test_reward_formula_is_pinned():
    config = RewardConfig()
    engagements = [("click", 2.0), ("play", 30.0), ("favorite", 60.0)]
    assert reward(engagements, 120, config) == pytest.approx(3.0 - 0.002 * 120)
    assert reward([], 300, config) == pytest.approx(0.0 - 0.002 * 300)


def test_reward_window_excludes_late_engagements():
    config = RewardConfig(window_seconds=300.0)
    assert reward([("click", 10.0), ("play", 301.0)], 20, config) == pytest.approx(1.0 - 0.002 * 20)
    assert reward([("play", 300.0)], 20, config) == pytest.approx(3.0 - 0.002 * 20)


def test_reward_errors_name_the_field():
    with pytest.raises(BadRequest, match="event"):
        reward([("share", 1.0)], 10, RewardConfig())
    with pytest.raises(ConfigError, match="^cost_per_candidate: expected a number >= 0") as error:
        RewardConfig(cost_per_candidate=-1.0)
    assert error.value.parameter == "cost_per_candidate"
    with pytest.raises(ConfigError, match="^window_seconds: "):
        RewardConfig(window_seconds=0.0)
    with pytest.raises(ConfigError, match="no weight for play"):
        RewardConfig(weights={Engagement.CLICK: 1.0, Engagement.FAVORITE: 2.0})
