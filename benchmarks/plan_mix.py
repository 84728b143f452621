"""Which plan the learned bandit settles on for each query kind, against each kind's best plan, and its
cumulative regret: the per-kind table of issue 13's bandit target, from the runs `ltrr simulate` left.

    for s in 1 2 3 4 5; do
      ltrr simulate --queries 5000 --seed $s --no-baselines --data-dir results/plan_mix_data
      python benchmarks/simulate_run.py --data-dir results/plan_mix_data --seed $s --run uniform
    done
    python benchmarks/plan_mix.py --data-dir results/plan_mix_data --seeds 1 2 3 4 5 \
        --out docs/benchmarks/plan_mix.json --plot docs/plan_mix_regret.png

- **Plan values** per (query kind, plan): the mean reward, with its standard error, of the uniform runs'
  impressions of that kind and plan, pooled over the seeds. The kind is the simulator's intent kind,
  recomputed from its query stream (an evaluation label; the bandit never sees it).
- **Best plan** of a kind: the highest value; a plan is *near-best* when its value is within 2 standard
  errors of the difference to the best's.
- **Last window** (``--window`` queries) of each learned run, per kind: the share of queries whose
  highest-probability plan, in the logged distribution, is near-best (target: at least 90%), and the three
  plans it chose most.
- **Regret** of a query: its kind's best value minus the value of the plan chosen. Summed over the first
  and the last window, for the learned and the uniform runs (target: learned last at most half of learned
  first, and below uniform's last); the cumulative curves are plotted.

Prints markdown tables and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

CURVE_EVERY = 25  # the JSON keeps every 25th point of each cumulative regret curve; the plot draws them all


@dataclass(frozen=True, slots=True)
class PlanValue:
    mean: float
    stderr: float
    count: int


@dataclass(frozen=True, slots=True)
class Query:
    """One finalized impression of a run: its kind, the plan chosen, the plan of highest logged probability."""

    kind: str
    chosen: str
    greedy: str
    reward: float


def plan_values(queries: Sequence[Query], min_count: int = 5) -> dict[str, dict[str, PlanValue]]:
    """Mean reward and standard error per kind and chosen plan (plans seen fewer than ``min_count`` times
    in a kind are left out: no value can be told from two samples)."""
    rewards: dict[tuple[str, str], list[float]] = {}
    for query in queries:
        rewards.setdefault((query.kind, query.chosen), []).append(query.reward)
    values: dict[str, dict[str, PlanValue]] = {}
    for (kind, plan), samples in rewards.items():
        if len(samples) < min_count:
            continue
        array = np.asarray(samples, dtype=float)
        values.setdefault(kind, {})[plan] = PlanValue(float(array.mean()), float(array.std(ddof=1) / math.sqrt(len(array))), len(array))
    return values


def best_plans(values: dict[str, dict[str, PlanValue]]) -> dict[str, str]:
    return {kind: max(by_plan, key=lambda plan: by_plan[plan].mean) for kind, by_plan in values.items()}


def near_best(values: dict[str, dict[str, PlanValue]], kind: str, plan: str) -> bool:
    """``plan``'s value is within 2 standard errors of the difference to the kind's best value."""
    by_plan = values[kind]
    best = by_plan[max(by_plan, key=lambda name: by_plan[name].mean)]
    value = by_plan.get(plan)
    if value is None:
        return False
    return best.mean - value.mean <= 2.0 * math.hypot(best.stderr, value.stderr)


def regrets(queries: Sequence[Query], values: dict[str, dict[str, PlanValue]]) -> np.ndarray:
    """Per query: its kind's best value minus the chosen plan's value (``nan`` where either is unknown)."""
    best = best_plans(values)
    out = np.full(len(queries), np.nan)
    for index, query in enumerate(queries):
        by_plan = values.get(query.kind)
        if by_plan is None or query.chosen not in by_plan:
            continue
        out[index] = by_plan[best[query.kind]].mean - by_plan[query.chosen].mean
    return out


def last_window_report(queries: Sequence[Query], values: dict[str, dict[str, PlanValue]], window: int) -> dict[str, dict]:
    """Per kind over the last ``window`` queries: how many, the near-best share of their greedy plans, the
    plans chosen most."""
    report: dict[str, dict] = {}
    for kind in sorted({query.kind for query in queries}):
        last = [query for query in queries[-window:] if query.kind == kind]
        if not last or kind not in values:
            continue
        near = sum(near_best(values, kind, query.greedy) for query in last)
        mix = Counter(query.chosen for query in last).most_common(3)
        report[kind] = {
            "queries": len(last),
            "greedy_near_best_share": near / len(last),
            "best_plan": best_plans(values)[kind],
            "chosen_most": [[plan, count / len(last)] for plan, count in mix],
        }
    return report


def read_run(data_dir: Path, seed: int, run: str) -> list[Query]:
    """The run's impressions in query order, with rewards as ingest computes them and the simulator's kinds."""
    from services.evaluation.sim_users import QueryStream
    from services.ingest.ingestor import join_rounds
    from services.registry import Paths, load_catalog, reward_config
    from services.settings import load_settings

    settings = load_settings(data_dir=data_dir)
    log = Paths(data_dir / "simulations" / f"seed{seed}" / run).events / "events.jsonl"
    if not log.exists():
        raise SystemExit(f"error: no event log at {log}; run the simulations in this script's docstring first")
    rounds, _ = join_rounds(log, reward_config(settings))
    stream = QueryStream(load_catalog(settings), seed)
    queries = []
    for index, logged in enumerate(rounds):
        decision = logged.decision
        greedy = decision.plans[int(np.argmax(decision.distribution))].name
        queries.append(Query(stream.draw(index).kind, decision.plan.name, greedy, logged.reward))
    return queries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--seeds", type=int, nargs="+", required=True)
    parser.add_argument("--uniform-data-dir", type=Path, help="Where the uniform runs are, when not in --data-dir (same catalog and seeds).")
    parser.add_argument("--window", type=int, default=1000)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--plot", type=Path)
    args = parser.parse_args()
    learned = {seed: read_run(args.data_dir, seed, "learned") for seed in args.seeds}
    uniform = {seed: read_run(args.uniform_data_dir or args.data_dir, seed, "uniform") for seed in args.seeds}
    values = plan_values([query for queries in uniform.values() for query in queries])
    kinds = sorted(values)

    print(f"Best plan per kind (uniform runs of seeds {', '.join(map(str, args.seeds))} pooled):\n")
    print("| kind | best plan | value | plans with a value |")
    print("|---|---|---|---|")
    for kind, plan in best_plans(values).items():
        print(f"| {kind} | {plan} | {values[kind][plan].mean:.3f} ± {values[kind][plan].stderr:.3f} | {len(values[kind])} |")

    print(f"\nLast {args.window} queries of the learned runs: share whose highest-probability plan is near-best\n")
    print("| seed | " + " | ".join(kinds) + " |")
    print("|---|" + "---|" * len(kinds))
    report: dict = {"seeds": args.seeds, "window": args.window, "best": {}, "runs": {}}
    for kind, plan in best_plans(values).items():
        report["best"][kind] = {"plan": plan, "value": values[kind][plan].mean, "stderr": values[kind][plan].stderr}
    for seed in args.seeds:
        by_kind = last_window_report(learned[seed], values, args.window)
        cells = [f"{by_kind[kind]['greedy_near_best_share']:.0%}" if kind in by_kind else "–" for kind in kinds]
        print(f"| {seed} | " + " | ".join(cells) + " |")
        regret = {name: regrets(queries, values) for name, queries in (("learned", learned[seed]), ("uniform", uniform[seed]))}
        report["runs"][seed] = {
            "last_window_by_kind": by_kind,
            "regret": {name: {"first_window": float(np.nansum(curve[: args.window])), "last_window": float(np.nansum(curve[-args.window:]))}
                       for name, curve in regret.items()},
            "cumulative_regret": {name: np.nancumsum(curve) for name, curve in regret.items()},
        }

    print(f"\nRegret against each kind's best plan, summed over the first and the last {args.window} queries\n")
    print("| seed | learned first | learned last | last / first | uniform last |")
    print("|---|---|---|---|---|")
    for seed in args.seeds:
        regret = report["runs"][seed]["regret"]
        first, last = regret["learned"]["first_window"], regret["learned"]["last_window"]
        print(f"| {seed} | {first:.1f} | {last:.1f} | {last / first:.2f} | {regret['uniform']['last_window']:.1f} |")

    if args.out is not None:
        written = {**report, "curve_every": CURVE_EVERY, "runs": {
            seed: {**run, "cumulative_regret": {name: curve[::CURVE_EVERY].round(2).tolist() for name, curve in run["cumulative_regret"].items()}}
            for seed, run in report["runs"].items()}}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(written, indent=1))
        print(f"\nwrote {args.out}")
    if args.plot is not None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        figure, axis = plt.subplots(figsize=(8, 4.5))
        for index, seed in enumerate(args.seeds):
            color = f"C{index}"
            curves = report["runs"][seed]["cumulative_regret"]
            axis.plot(curves["learned"], color=color, label=f"learned, seed {seed}")
            axis.plot(curves["uniform"], color=color, linestyle=":", label=f"uniform, seed {seed}")
        axis.set_xlabel("query")
        axis.set_ylabel("cumulative regret against each kind's best plan")
        axis.legend(fontsize=7, ncol=2)
        figure.tight_layout()
        args.plot.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(args.plot, dpi=110)
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
