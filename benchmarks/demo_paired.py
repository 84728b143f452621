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
baselines. ``--plan-seeds`` also compares learned and uniform runs made with ``simulate_run.py
--plan-seed N`` (the same queries and users, other random paths of the loop), stream by stream, and
reports the spread of the difference over the streams: the interval the per-query errors leave out.
Prints markdown tables and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from plan_mix import read_run  # noqa: E402

from services.evaluation.simulate import run_directory_name  # noqa: E402

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


def last_rewards(data_dir: Path, seed: int, run: str, window: int, plan_seed: int | None = None) -> np.ndarray:
    """The rewards of a run's last ``window`` queries (``run``: the run's name, as its folder spells it)."""
    return np.array([query.reward for query in read_run(data_dir, seed, run_directory_name(run, plan_seed))])[-window:]


def seed_report(learned_dir: Path, baselines_dir: Path, seed: int, window: int) -> dict[str, dict[str, float]]:
    learned = last_rewards(learned_dir, seed, "learned", window)
    return {name: paired(learned, last_rewards(baselines_dir, seed, run, window)) for name, run in BASELINES.items()}


def streams_report(learned_dir: Path, baselines_dir: Path, seed: int, plan_seeds: Sequence[int], window: int) -> dict[str, object]:
    """Learned minus uniform on each plan stream of ``seed`` (the default one and ``plan_seeds``), and the
    mean difference with its standard error over the streams."""
    streams = {}
    for plan_seed in (None, *plan_seeds):
        streams["default" if plan_seed is None else str(plan_seed)] = paired(
            last_rewards(learned_dir, seed, "learned", window, plan_seed), last_rewards(baselines_dir, seed, "uniform", window, plan_seed))
    differences = np.array([value["difference"] for value in streams.values()])
    spread = float(differences.std(ddof=1) / math.sqrt(len(differences))) if len(differences) > 1 else float("nan")
    return {"streams": streams, "mean_difference": float(differences.mean()), "se_over_streams": spread}


def streams_table(reports: dict[int, dict]) -> str:
    lines = ["| seed | plan stream | learned | uniform | difference [2 SE paired] |", "|---|---|---|---|---|"]
    for seed, report in sorted(reports.items()):
        for stream, value in report["streams"].items():
            lines.append(f"| {seed} | {stream} | {value['learned']:.3f} | {value['baseline']:.3f} | {value['difference']:+.3f} [{2 * value['paired_se']:.3f}] |")
        lines.append(f"| {seed} | mean over {len(report['streams'])} | | | {report['mean_difference']:+.3f} ± {report['se_over_streams']:.3f} (SE over streams) |")
    return "\n".join(lines)


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
    parser.add_argument("--plan-seeds", type=int, nargs="*", default=[],
                        help="Also compare the learned and uniform runs of these --plan-seed streams, stream by stream.")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    learned_dir = args.learned_data_dir or args.data_dir
    reports = {seed: seed_report(learned_dir, args.data_dir, seed, args.window) for seed in args.seeds}
    print(table(reports))
    output: dict[str, object] = {"window": args.window, "seeds": {str(seed): report for seed, report in reports.items()}}
    if args.plan_seeds:
        streams = {seed: streams_report(learned_dir, args.data_dir, seed, args.plan_seeds, args.window) for seed in args.seeds}
        print()
        print(streams_table(streams))
        output["plan_streams"] = {str(seed): report for seed, report in streams.items()}
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(output, indent=2))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
