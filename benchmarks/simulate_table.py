"""Print the README's simulation table from `ltrr simulate --out` files.

    python benchmarks/simulate_table.py results/simulate_seed1.json results/simulate_seed2.json ...
"""

from __future__ import annotations

import json
import math
import sys


def main(paths: list[str]) -> None:
    print("| seed | first window | last window | uniform random | dense=100 | lexical=100 | memory=100 | all=100 | last − first | 2·SE of last | 2·SE of the difference | last − uniform |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            result = json.load(handle)
        first, last = result["windows"][0], result["windows"][-1]
        fixed = result["fixed_plan_rewards"]
        two_se = 2 * math.hypot(first["stderr"], last["stderr"])
        print(
            f"| {result['seed']} | {first['reward']:.3f} ± {first['stderr']:.3f} | {last['reward']:.3f} ± {last['stderr']:.3f} "
            f"| {result['uniform_random_reward']:.3f} | {fixed['dense=100']:.3f} | {fixed['lexical=100']:.3f} "
            f"| {fixed['memory=100']:.3f} | {fixed['all=100']:.3f} | {last['reward'] - first['reward']:+.3f} "
            f"| {2 * last['stderr']:.3f} | {two_se:.3f} "
            f"| {last['reward'] - result['uniform_random_reward']:+.3f} |"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
