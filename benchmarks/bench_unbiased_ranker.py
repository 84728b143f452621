"""Rankers learned from simulated clicks, with and without position-bias correction, against one learned
from the judgments; the logic lives in ``services.evaluation.bench_unbiased``.

    python benchmarks/bench_unbiased_ranker.py --dataset ../shared/datasets/scifact --out results/unbiased_scifact.json

is the same as ``ltrr bench unbiased-ranker --dataset ... --out ...``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.cli import app  # noqa: E402

if __name__ == "__main__":
    app(["bench", "unbiased-ranker", *sys.argv[1:]])
