"""The latency benchmark script runs end to end on a small catalog and writes the documented JSON."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.bench_latency import draw_queries, main
from catalog.demo import generate_demo_catalog


def test_queries_are_distinct_and_misspellings_kept_apart() -> None:
    entities = generate_demo_catalog(size=600, seed=3)
    plain, misspelled = draw_queries(entities, 40, seed=3)
    assert len(plain) == len(set(plain)) == 40
    assert len(misspelled) == len(set(misspelled)) and misspelled
    assert not set(plain) & set(misspelled)


def test_small_run_writes_the_report(tmp_path: Path) -> None:
    out = tmp_path / "latency.json"
    assert main(["--size", "400", "--queries", "30", "--k", "20", "--cache-dir", str(tmp_path / "cache"), "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["size"] == 400 and report["k"] == 20
    for case in ("plain", "fuzzy"):
        assert 0 < report["lexical"][case]["p50_ms"] <= report["lexical"][case]["p99_ms"]
    hnsw = report["dense"]["hnsw"]
    recalls = [row["recall@100"] for row in hnsw["ef_search"]]
    assert all(0.0 < r <= 1.0 for r in recalls) and recalls == sorted(recalls)
    assert hnsw["timed_ef_search"] in {row["ef_search"] for row in hnsw["ef_search"]} | {None}
    assert (tmp_path / "cache").is_dir() and any((tmp_path / "cache").iterdir())
