"""Print the README's simulation table from `ltrr simulate --out` files, and optionally plot the curves.

    python benchmarks/simulate_table.py results/simulate_seed1.json results/simulate_seed2.json ...
    python benchmarks/simulate_table.py results/simulate_seed*.json --plot docs/simulation.png

The plot has one panel per seed: the learned policy's reward per 1,000-query window with a 2-standard-error
band, uniform random's whole-run mean (the bar the acceptance test sets) and each fixed plan's.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path


def load(paths: list[str]) -> list[dict]:
    results = []
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            results.append(json.load(handle))
    return results


def print_table(results: list[dict]) -> None:
    print("| seed | first window | last window | uniform random | dense=100 | lexical=100 | memory=100 | all=100 | last − first | 2·SE of last | 2·SE of the difference | last − uniform |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for result in results:
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


def plot(results: list[dict], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = min(3, len(results))
    rows = math.ceil(len(results) / columns)
    figure, grid = plt.subplots(rows, columns, figsize=(4.4 * columns, 3.4 * rows), sharey=True, squeeze=False)
    axes = list(grid.flat)
    for axis in axes[len(results):]:
        axis.set_visible(False)
    for axis, result in zip(axes, results, strict=False):
        windows = result["windows"]
        x = [(w["start"] + w["end"]) / 2 for w in windows]
        y = [w["reward"] for w in windows]
        band = [2 * w["stderr"] for w in windows]
        axis.fill_between(x, [a - b for a, b in zip(y, band, strict=True)], [a + b for a, b in zip(y, band, strict=True)], alpha=0.2, color="tab:blue")
        axis.plot(x, y, marker="o", color="tab:blue", label="learned (window ± 2 SE)")
        axis.axhline(result["uniform_random_reward"], color="black", linestyle="--", label="uniform random (run mean)")
        for (name, value), color in zip(sorted(result.get("fixed_plan_rewards", {}).items()), ("tab:orange", "tab:green", "tab:red", "tab:purple"), strict=False):
            axis.axhline(value, color=color, linestyle=":", linewidth=1.2, label=name)
        axis.set_title(f"seed {result['seed']}")
        axis.set_xlabel("query")
        axis.grid(alpha=0.3)
    for row in grid:
        row[0].set_ylabel("mean reward per query")
    axes[len(results) - 1].legend(loc="lower right", fontsize=7)
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=110)
    plt.close(figure)
    print(f"wrote {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", help="JSON files written by `ltrr simulate --out`")
    parser.add_argument("--plot", type=Path, help="also draw the learning curves into this image (PNG or SVG)")
    args = parser.parse_args()
    results = load(args.results)
    print_table(results)
    if args.plot is not None:
        plot(results, args.plot)


if __name__ == "__main__":
    main()
