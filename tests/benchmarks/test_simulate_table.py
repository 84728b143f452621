"""The simulation table and plot script reads `ltrr simulate --out` files as written."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.simulate_table import load, plot, print_table
from services.evaluation.simulate import windows


def _result(seed: int, rewards: list[float]) -> dict:
    return {
        "queries": len(rewards), "seed": seed, "windows": windows(rewards, size=100),
        "uniform_random_reward": 0.5,
        "fixed_plan_rewards": {"dense=100": 0.4, "lexical=100": 0.3, "memory=100": 0.2, "all=100": 0.1},
    }


def test_table_and_plot_from_simulate_output(tmp_path: Path, capsys) -> None:
    paths = []
    for seed in (1, 2):
        path = tmp_path / f"simulate_seed{seed}.json"
        path.write_text(json.dumps(_result(seed, [0.0, 1.0] * 50 + [1.0, 2.0] * 50)))
        paths.append(str(path))
    results = load(paths)
    print_table(results)
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| 1 ") or line.startswith("| 2 ")]
    assert len(rows) == 2
    cells = [cell.strip() for cell in rows[0].strip("|").split("|")]
    assert cells[1].startswith("0.500 ± ") and cells[2].startswith("1.500 ± ")
    assert cells[8] == "+1.000" and cells[-1] == "+1.000"
    image = tmp_path / "plots" / "curves.png"
    plot(results, image)
    assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
