"""A Markdown table of `ltrr simulate --collection ... --out` results: per file, the last window of every
run (nDCG@10, reward, candidates drawn) and the learned loop's paired nDCG@10 difference to each.

    python benchmarks/loop_table.py results/loops/scifact-train-pbm-s*.json
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args()
    print("| loop | run | nDCG@10 (last window) | reward | drawn | learned − run, nDCG@10 [95%] |")
    print("|---|---|---|---|---|---|")
    for path in args.files:
        for line in rows(json.loads(path.read_text())):
            print(line)


if __name__ == "__main__":
    main()
