"""The paired comparison of the demo simulator's last windows: differences per query, their standard error."""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmarks.demo_paired import BASELINES, paired, table


def test_pairing_removes_the_spread_the_two_runs_share():
    rng = np.random.default_rng(7)
    difficulty = rng.choice([0.0, 2.0], size=1000)  # vague and exact queries, the same in both runs
    learned = difficulty + 0.05 + rng.normal(0, 0.1, 1000)
    baseline = difficulty + rng.normal(0, 0.1, 1000)
    result = paired(learned, baseline)
    assert result["difference"] == pytest.approx(float((learned - baseline).mean()))
    assert result["paired_se"] == pytest.approx(float(np.std(learned - baseline, ddof=1) / math.sqrt(1000)))
    # The shared spread (a standard deviation of 1) dominates the unpaired error and cancels from the paired one.
    assert result["unpaired_se"] > 5 * result["paired_se"]
    assert result["difference"] > 2 * result["paired_se"] and result["difference"] < 2 * result["unpaired_se"]


def test_runs_of_different_lengths_are_refused():
    with pytest.raises(SystemExit, match="same --queries"):
        paired(np.zeros(10), np.zeros(9))


def test_the_table_says_yes_only_when_every_baseline_is_beaten_by_two_paired_standard_errors():
    clear = {"learned": 1.0, "baseline": 0.5, "difference": 0.5, "paired_se": 0.05, "unpaired_se": 0.1}
    close = {**clear, "difference": 0.09}  # within 2 * 0.05
    reports = {1: dict.fromkeys(BASELINES, clear), 2: {**dict.fromkeys(BASELINES, clear), "all=100": close}}
    rows = table(reports).splitlines()
    assert rows[2].endswith("| yes |") and rows[3].endswith("| no |")
    assert "+0.090 [0.100 / 0.200]" in rows[3]
