"""A Markdown table of `ltrr simulate --collection ... --out` results: per file, the last window of every
run (nDCG@10, reward, candidates drawn) and the learned loop's paired nDCG@10 difference to each.

    python benchmarks/loop_table.py results/loops/scifact-train-pbm-s*.json
    python benchmarks/loop_table.py --summary results/loops/*-test-*.json

``--summary``: one row a loop, the learned loop against uniform, the best fixed plan (by last-window
nDCG@10), all=100 and static, as the README's tables have it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def rows(result: dict) -> list[str]:
    lines = []
    label = f"{result['collection']} {result['split']} {result['click_model']['name']} s{result['seed']}"
    for name, run in result["runs"].items():
        last = run["windows"][-1]
        diff = result["last_window_differences"].get(name, {}).get("ndcg@10")
        difference = f"{diff['mean']:+.3f} [{diff['low95']:+.3f}, {diff['high95']:+.3f}]" if diff else "—"
        lines.append(
            f"| {label} | {name} | {last['ndcg@10']['mean']:.3f} ± {last['ndcg@10']['se']:.3f} | "
            f"{last['reward']['mean']:.3f} ± {last['reward']['se']:.3f} | {last['drawn']['mean']:.0f} | {difference} |"
        )
    return lines


FIXED = ("lexical=100", "dense=100", "memory=100", "all=100")


def summary_row(result: dict) -> str:
    runs, differences = result["runs"], result["last_window_differences"]

    def last(name: str, figure: str = "ndcg@10") -> float:
        return runs[name]["windows"][-1][figure]["mean"]

    def versus(name: str) -> str:
        diff = differences[name]["ndcg@10"]
        return f"{diff['mean']:+.3f} [{diff['low95']:+.3f}, {diff['high95']:+.3f}]"

    best = max((name for name in FIXED if name in runs), key=last)
    label = f"{result['collection']} {result['split']}, {result['click_model']['name']}, seed {result['seed']}"
    return (f"| {label} | {last('learned'):.3f} | {last('uniform'):.3f} | {last(best):.3f} ({best}) | {last('all=100'):.3f} | "
            f"{last('static'):.3f} | {versus('uniform')} | {versus(best)} | {last('learned') / last('static') - 1:+.0%} | "
            f"{last('learned', 'drawn'):.0f} / {last('all=100', 'drawn'):.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--summary", action="store_true", help="One row a loop: learned against uniform, the best fixed plan, all=100 and static.")
    args = parser.parse_args()
    if args.summary:
        print("| loop | learned | uniform | best fixed plan | all=100 | static | learned − uniform [95%] | "
              "learned − best fixed [95%] | learned / static | drawn: learned / all |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for path in args.files:
            print(summary_row(json.loads(path.read_text())))
        return
    print("| loop | run | nDCG@10 (last window) | reward | drawn | learned − run, nDCG@10 [95%] |")
    print("|---|---|---|---|---|---|")
    for path in args.files:
        for line in rows(json.loads(path.read_text())):
            print(line)


if __name__ == "__main__":
    main()
