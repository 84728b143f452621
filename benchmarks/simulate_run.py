"""One closed-loop run of `ltrr simulate`, on its own: the learned policy, uniform random or a fixed plan.

    python benchmarks/simulate_run.py --data-dir data --seed 3 --run uniform --out results/uniform_seed3.json

Uses the indexes `ltrr simulate` built under ``--data-dir`` (builds them if missing) and the same
settings, numerics and query stream, so a run here equals the same run inside `ltrr simulate`. Prints and
writes the whole-run mean, the 1,000-query windows and the last window's mean.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from services.numerics import pin_instruction_set
from services.settings import load_settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--run", default="uniform", help="learned, uniform, or a plan name such as dense=100+lexical=0+memory=0")
    parser.add_argument("--queries", type=int, default=5000)
    parser.add_argument("--plan-seed", type=int, help="Seed of the run's own choices (plans, bootstraps, exploring retrievers) "
                        "instead of --seed; the queries and users stay on --seed. Runs go to <run>_plans<N>.")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    settings = load_settings(data_dir=args.data_dir)
    pin_instruction_set(settings.numeric_isa)
    import torch

    from services.evaluation.simulate import WINDOW, RunSpec, run_one, windows
    from services.search.indexing import build_indexes, indexes_exist

    torch.set_num_threads(1)  # as in `ltrr simulate`'s workers
    if not indexes_exist(settings):
        from services.cli import progress_factory

        build_indexes(settings, progress_factory(settings))
    spec = RunSpec("learned", "vw") if args.run == "learned" else RunSpec(args.run.replace("+", "_") if args.run != "uniform" else "uniform", args.run)
    result = run_one(settings, spec, args.queries, args.seed, 100, plan_seed=args.plan_seed)
    rewards = np.asarray(result["rewards"], dtype=float)
    report = {
        "seed": args.seed,
        "run": args.run,
        "plan_seed": args.plan_seed,
        "queries": args.queries,
        "reward": float(rewards.mean()),
        "last_window_reward": float(rewards[-WINDOW:].mean()),
        "windows": windows(result["rewards"]),
        "by_kind": result["by_kind"],
    }
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
