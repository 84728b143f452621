"""Last-window reward per query kind of the runs `ltrr simulate` left in a data directory.

    python benchmarks/simulate_by_kind.py --data-dir data --seeds 1 2 3 4 5 --runs learned uniform --out results/by_kind.json

The kind of each query is recomputed from the simulator's own query stream (same catalog, same seed), the
reward of each impression is read from the run's event log as ingest computes it. Prints one markdown row
per seed: ``learned / uniform`` per kind, over the last 1,000 queries.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from services.evaluation.sim_users import KIND_SHARES, QueryStream
from services.evaluation.simulate import WINDOW
from services.ingest.ingestor import join_rounds
from services.registry import Paths, load_catalog, reward_config
from services.settings import load_settings


def last_window_by_kind(data_dir: Path, seed: int, run: str) -> dict[str, float]:
    settings = load_settings(data_dir=data_dir)
    log = Paths(data_dir / "simulations" / f"seed{seed}" / run).events / "events.jsonl"
    rounds, _ = join_rounds(log, reward_config(settings))
    stream = QueryStream(load_catalog(settings), seed)
    kinds = [stream.draw(index).kind for index in range(len(rounds))]
    start = max(0, len(rounds) - WINDOW)
    by_kind: dict[str, list[float]] = {}
    for kind, logged in zip(kinds[start:], rounds[start:], strict=True):
        by_kind.setdefault(kind, []).append(logged.reward)
    return {kind: float(np.mean(values)) for kind, values in by_kind.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--seeds", type=int, nargs="+", required=True)
    parser.add_argument("--runs", nargs="+", default=["learned", "uniform"])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    kinds = list(KIND_SHARES)
    print("| seed | " + " | ".join(kinds) + " |")
    print("|---|" + "---|" * len(kinds))
    report = {}
    for seed in args.seeds:
        per_run = {run: last_window_by_kind(args.data_dir, seed, run) for run in args.runs}
        report[seed] = per_run
        cells = [" / ".join(f"{per_run[run].get(kind, float('nan')):.2f}" for run in args.runs) for kind in kinds]
        print(f"| {seed} | " + " | ".join(cells) + " |")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
