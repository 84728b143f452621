"""Glue of ``ltrr bench``: run a benchmark, print its rich table, write its JSON."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Callable, NoReturn

from rich.console import Console
from rich.table import Table

from catalog.schema import CatalogError
from contracts import LtrrError
from services.evaluation.bench_retrieval import (
    ProgressFactory,
    RetrievalBenchmark,
    run_retrieval_benchmark,
)


def retrieval_table(report: RetrievalBenchmark) -> Table:
    """One row per strategy plus the union and the absent strategies."""
    table = Table(title=f"{report.dataset} ({report.split}): {report.docs:,} docs, {report.queries:,} queries, "
                        f"query encoding p50 {report.encode_p50_ms:.2f} ms")
    for column in ("strategy", "nDCG@10", "Recall@100", "MRR@10", "p50 ms", "p99 ms"):
        table.add_column(column, justify="left" if column == "strategy" else "right")
    for result in report.strategies:
        table.add_row(result.name, f"{result.ndcg_at_10:.4f}", f"{result.recall_at_100:.4f}", f"{result.mrr_at_10:.4f}",
                      f"{result.p50_ms:.2f}", f"{result.p99_ms:.2f}")
    table.add_row(f"union (mean size {report.union_size:.1f})", "", f"{report.union_recall_at_100:.4f}", "", "", "")
    for name, _reason in report.absent:
        table.add_row(name, "absent", "", "", "", "", style="dim")
    return table


def run_bench_retrieval(dataset: Path, out: Path, split: str, k: int, cache_dir: Path | None,
                        progress: ProgressFactory, fail: Callable[[Exception], NoReturn]) -> RetrievalBenchmark:
    """Load the embedder, run the benchmark, print the table to stdout and write ``out``."""
    logging.basicConfig(level=logging.WARNING)
    from retrievers.embedding import Embedder

    try:
        report = run_retrieval_benchmark(dataset, Embedder(), split=split, k=k, cache_dir=cache_dir, progress=progress)
    except (LtrrError, CatalogError) as error:
        fail(error)
    console = Console()
    console.print(retrieval_table(report))
    for name, reason in report.absent:
        console.print(f"{name}: absent ({reason})")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report.to_json(), indent=2) + "\n")
    console.print(f"wrote {out}")
    return report
