"""The demo simulator's first learning target, paired per query: does the learned policy's last window
beat uniform random's and every fixed plan's by more than twice the standard error of the difference?

    for s in 1 2 3 4 5; do
      python benchmarks/simulate_run.py --data-dir results/demo_runs --seed $s --run learned
      for run in uniform dense=100+lexical=0+memory=0 dense=0+lexical=100+memory=0 \\
                 dense=0+lexical=0+memory=100 dense=100+lexical=100+memory=100; do
        python benchmarks/simulate_run.py --data-dir results/demo_runs --seed $s --run $run
      done
    done
    python benchmarks/demo_paired.py --data-dir results/demo_runs --seeds 1 2 3 4 5 --out docs/benchmarks/demo_paired.json

Every run of a seed answers the same query stream, so the last window's runs can be compared query by
query: the difference's standard error is that of the per-query differences (the queries' own spread,
exact names against vague topics, cancels out). The unpaired one, from the two windows' standard errors,
is printed beside it. Both cover the users' clicks and the queries, not the loop's path: each run is one
random stream of plans, and what the memory index and the ranker learn depends on it.

``--learned-data-dir`` reads the learned runs from elsewhere (a variant's settings) against the same
baselines. Prints a markdown table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.plan_mix import read_run  # noqa: E402

BASELINES = {
    "uniform": "uniform",
    "dense=100": "dense_100_lexical_0_memory_0",
    "lexical=100": "dense_0_lexical_100_memory_0",
    "memory=100": "dense_0_lexical_0_memory_100",
    "all=100": "dense_100_lexical_100_memory_100",
}


def paired(learned: np.ndarray, baseline: np.ndarray) -> dict[str, float]:
    """Mean difference of two runs over the same queries, its paired and unpaired standard errors."""
    if len(learned) != len(baseline):
        raise SystemExit(f"error: the runs have {len(learned)} and {len(baseline)} queries in the window; rerun them with the same --queries")
    diff = learned - baseline
    n = len(diff)
    return {
        "learned": float(learned.mean()),
        "baseline": float(baseline.mean()),
        "difference": float(diff.mean()),
        "paired_se": float(diff.std(ddof=1) / math.sqrt(n)),
        "unpaired_se": float(math.hypot(learned.std(ddof=1), baseline.std(ddof=1)) / math.sqrt(n)),
    }


def seed_report(learned_dir: Path, baselines_dir: Path, seed: int, window: int) -> dict[str, dict[str, float]]:
    learned = np.array([query.reward for query in read_run(learned_dir, seed, "learned")])[-window:]
    return {name: paired(learned, np.array([query.reward for query in read_run(baselines_dir, seed, run)])[-window:])
            for name, run in BASELINES.items()}


def table(reports: dict[int, dict[str, dict[str, float]]]) -> str:
    lines = ["| seed | learned, last window | " + " | ".join(f"− {name} [2 SE paired / unpaired]" for name in BASELINES) + " | beats all by 2 paired SE |",
             "|---" * (len(BASELINES) + 3) + "|"]
    for seed, by_baseline in sorted(reports.items()):
        cells = [f"{by_baseline[name]['difference']:+.3f} [{2 * by_baseline[name]['paired_se']:.3f} / {2 * by_baseline[name]['unpaired_se']:.3f}]"
                 for name in BASELINES]
        beats = all(value["difference"] > 2 * value["paired_se"] for value in by_baseline.values())
        learned = next(iter(by_baseline.values()))["learned"]
        lines.append(f"| {seed} | {learned:.3f} | " + " | ".join(cells) + f" | {'yes' if beats else 'no'} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="Where `simulate_run.py` left the runs (its --data-dir).")
    parser.add_argument("--learned-data-dir", type=Path, help="Read the learned runs from here instead (same catalog and seeds).")
    parser.add_argument("--seeds", type=int, nargs="+", required=True)
    parser.add_argument("--window", type=int, default=1000, help="Queries in the last window.")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    reports = {seed: seed_report(args.learned_data_dir or args.data_dir, args.data_dir, seed, args.window) for seed in args.seeds}
    print(table(reports))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"window": args.window, "seeds": {str(seed): report for seed, report in reports.items()}}, indent=2))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
