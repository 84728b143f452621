"""Retrieval quality and latency on a BEIR collection; the logic lives in ``services.evaluation.bench_retrieval``.

    python benchmarks/bench_retrieval.py --dataset ../shared/datasets/scifact --out results/beir_scifact.json

is the same as ``ltrr bench retrieval --dataset ... --out ...``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.cli import app  # noqa: E402

if __name__ == "__main__":
    app(["bench", "retrieval", *sys.argv[1:]])
