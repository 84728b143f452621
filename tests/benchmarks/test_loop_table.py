"""The loop table reads `ltrr simulate --collection --out` files as written."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.loop_table import summary_row


def _window(ndcg: float, drawn: float) -> dict:
    return {"ndcg@10": {"mean": ndcg, "se": 0.01}, "reward": {"mean": ndcg, "se": 0.01}, "drawn": {"mean": drawn, "se": 1.0}}


def test_the_summary_row_picks_the_best_fixed_plan_by_last_window_ndcg(tmp_path: Path) -> None:
    last = {"learned": (0.60, 90), "uniform": (0.55, 150), "lexical=100": (0.50, 100), "dense=100": (0.58, 100),
            "memory=100": (0.20, 100), "all=100": (0.57, 300), "static": (0.40, 200)}
    result = {
        "collection": "tiny", "split": "test", "seed": 2, "click_model": {"name": "pbm"},
        "runs": {name: {"windows": [_window(0.1, 10), _window(ndcg, drawn)]} for name, (ndcg, drawn) in last.items()},
        "last_window_differences": {name: {"ndcg@10": {"mean": 0.60 - ndcg, "low95": 0.60 - ndcg - 0.01, "high95": 0.60 - ndcg + 0.01}}
                                    for name, (ndcg, _) in last.items() if name != "learned"},
    }
    path = tmp_path / "loop.json"
    path.write_text(json.dumps(result))
    row = summary_row(json.loads(path.read_text()))
    assert row == ("| tiny test, pbm, seed 2 | 0.600 | 0.550 | 0.580 (dense=100) | 0.570 | 0.400 | +0.050 [+0.040, +0.060] | "
                   "+0.020 [+0.010, +0.030] | +50% | 90 / 300 |")
