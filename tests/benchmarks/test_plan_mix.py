"""The plan-mix table's arithmetic on a hand-made log: plan values, the near-best rule, regret."""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmarks.plan_mix import PlanValue, Query, best_plans, last_window_report, near_best, plan_values, regrets


def _uniform_log() -> list[Query]:
    """Kind "topic": plan A earns 1.0 or 1.2, B 0.9 or 1.1 (close), C 0.0 (far). Kind "exact": only D."""
    queries = []
    for index in range(40):
        queries.append(Query("topic", "A", "A", 1.0 + 0.2 * (index % 2)))
        queries.append(Query("topic", "B", "B", 0.9 + 0.2 * (index % 2)))
        queries.append(Query("topic", "C", "C", 0.0))
        queries.append(Query("exact", "D", "D", 2.0))
    queries.append(Query("topic", "E", "E", 5.0))  # seen once: too few samples to have a value
    return queries


def test_plan_values_are_means_with_standard_errors_and_rare_plans_are_left_out():
    values = plan_values(_uniform_log())
    assert set(values["topic"]) == {"A", "B", "C"}
    a = values["topic"]["A"]
    assert a.mean == pytest.approx(1.1) and a.count == 40
    assert a.stderr == pytest.approx(np.std([1.0, 1.2] * 20, ddof=1) / math.sqrt(40))
    assert best_plans(values) == {"topic": "A", "exact": "D"}


def test_a_plan_is_near_best_within_two_standard_errors_of_the_difference():
    values = {"k": {"best": PlanValue(1.0, 0.03, 100), "close": PlanValue(0.92, 0.03, 100), "far": PlanValue(0.8, 0.03, 100)}}
    # 2 * hypot(0.03, 0.03) = 0.0849: 0.08 is within, 0.2 is not; the best is near itself; an unknown plan is not.
    assert near_best(values, "k", "best") and near_best(values, "k", "close")
    assert not near_best(values, "k", "far") and not near_best(values, "k", "never-tried")


def test_regret_is_the_best_value_minus_the_chosen_value_and_the_report_counts_greedy_plans():
    values = plan_values(_uniform_log())
    learned = [Query("topic", "C", "A", 0.0), Query("topic", "A", "A", 1.0), Query("topic", "B", "C", 1.0),
               Query("exact", "D", "D", 2.0), Query("topic", "E", "E", 5.0)]
    assert regrets(learned, values)[:4] == pytest.approx([1.1, 0.0, 0.1, 0.0])
    assert np.isnan(regrets(learned, values)[4]), "a plan without a value has no regret"
    report = last_window_report(learned, values, window=4)  # the last four: A-greedy, C-greedy, exact, E
    assert report["topic"]["queries"] == 3
    assert report["topic"]["greedy_near_best_share"] == pytest.approx(1 / 3)  # A is near-best; C and E are not
    assert report["exact"] == {"queries": 1, "greedy_near_best_share": 1.0, "best_plan": "D", "chosen_most": [["D", 1.0]]}
