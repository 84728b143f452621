"""The BEIR retrieval benchmark on a five-document collection whose metrics can be worked out by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ranx import Qrels, Run, evaluate

from contracts import Hit
from services.evaluation.bench_retrieval import (
    _ranked,
    run_retrieval_benchmark,
    union_recall,
)

CORPUS = [
    {"_id": "d1", "title": "Vitamin D deficiency", "text": "Low vitamin D levels in the blood are linked to bone loss."},
    {"_id": "d2", "title": "Coffee and sleep", "text": "Caffeine in the evening delays sleep onset."},
    {"_id": "d3", "title": "Zinc and immunity", "text": "Zinc deficiency weakens immune defense against the common cold."},
    {"_id": "d4", "title": "Gut bacteria", "text": "The microbiome shapes digestion."},
    # Same id as query q3 and the best lexical match for it: the benchmark must ignore it, as BEIR does.
    {"_id": "q3", "title": "Zinc lozenges for the common cold", "text": "Zinc lozenges shorten the common cold."},
]
QUERIES = [
    {"_id": "q1", "text": "vitamin D deficiency and bone loss"},
    {"_id": "q2", "text": "does caffeine delay sleep?"},
    {"_id": "q3", "text": "zinc lozenges for the common cold"},
    {"_id": "q9", "text": "an unjudged query of another split"},
]
QRELS = "query-id\tcorpus-id\tscore\r\nq1\td1\t2\r\nq2\td2\t1\r\nq3\td3\t1\r\n"


@pytest.fixture
def tiny_beir(tmp_path: Path) -> Path:
    folder = tmp_path / "tiny"
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text("".join(json.dumps(doc) + "\n" for doc in CORPUS))
    (folder / "queries.jsonl").write_text("".join(json.dumps(query) + "\n" for query in QUERIES))
    (folder / "qrels" / "test.tsv").write_bytes(QRELS.encode())
    return folder


def test_benchmark_on_a_tiny_collection(tiny_beir: Path, tmp_path: Path, embedder) -> None:
    report = run_retrieval_benchmark(tiny_beir, embedder, k=100, cache_dir=tmp_path / "cache", work_dir=tmp_path / "work")

    assert (report.dataset, report.docs, report.queries) == ("tiny", 5, 3)
    lexical = report.strategy("lexical")
    # Each query's only relevant doc is lexical's first hit once doc "q3" is dropped from query q3's list;
    # were it kept, q3 would score 1/2 and the mean MRR (1 + 1 + 1/2) / 3.
    assert lexical.mrr_at_10 == pytest.approx((1 + 1 + 1) / 3)
    assert lexical.ndcg_at_10 == pytest.approx(1.0)
    # Flat search returns every document, so dense, rrf and the union find every relevant one.
    assert report.strategy("dense").recall_at_100 == pytest.approx(1.0)
    assert report.strategy("rrf").recall_at_100 == pytest.approx(1.0)
    assert report.union_recall_at_100 == pytest.approx(1.0)
    # The union holds all 5 docs for q1 and q2, and 4 for q3 (its namesake doc is ignored).
    assert report.union_size == pytest.approx((5 + 5 + 4) / 3)
    assert [result.name for result in report.strategies] == ["lexical", "dense", "rrf"]
    assert dict(report.absent).keys() == {"memory"}

    payload = report.to_json()
    assert set(payload) >= {"dataset", "docs", "queries", "encode_p50_ms", "strategies", "union"}
    assert set(payload["strategies"]["rrf"]) == {"ndcg@10", "recall@100", "mrr@10", "p50_ms", "p99_ms"}
    assert payload["union"] == {"recall@100": report.union_recall_at_100, "size": report.union_size}
    assert len(list((tmp_path / "cache").glob("tiny-*.npy"))) == 1

    again = run_retrieval_benchmark(tiny_beir, embedder, k=100, cache_dir=tmp_path / "cache")
    assert again.strategy("dense").ndcg_at_10 == pytest.approx(report.strategy("dense").ndcg_at_10)


def test_ranked_drops_the_query_itself_and_keeps_the_retriever_order() -> None:
    hits = [Hit("q3", 9.0, 1), Hit("b", 5.0, 2), Hit("a", 5.0, 3), Hit("c", 1.0, 4)]
    ranked = _ranked(hits, "q3", k=2)
    assert list(ranked) == ["b", "a"]
    # ranx orders by score, so ties in the retriever's scores must not reorder the list.
    assert ranked["b"] > ranked["a"]


def test_union_recall_matches_ranx_recall_for_one_run() -> None:
    qrels = {"q1": {"a": 2, "b": 1, "c": 1}, "q2": {"d": 1}}
    lexical = {"q1": {"a": 2.0, "x": 1.0}, "q2": {"y": 1.0}}
    dense = {"q1": {"b": 1.0}, "q2": {"d": 1.0}}
    recall, size = union_recall(qrels, [lexical, dense])
    assert recall == pytest.approx((2 / 3 + 1 / 1) / 2)
    assert size == pytest.approx((3 + 2) / 2)
    alone, _ = union_recall(qrels, [lexical])
    assert alone == pytest.approx(evaluate(Qrels(qrels), Run(lexical), "recall@100"))


def test_ltrr_bench_retrieval_runs_from_the_installed_command(tiny_beir: Path, tmp_path: Path) -> None:
    import json
    import os
    import subprocess
    import sys

    out = tmp_path / "report.json"
    script = Path(sys.executable).with_name("ltrr")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("LTRR_")}, "HF_HUB_OFFLINE": "1", "COLUMNS": "120"}
    completed = subprocess.run(
        [str(script), "bench", "retrieval", "--dataset", str(tiny_beir), "--out", str(out), "--cache-dir", str(tmp_path / "cache")],
        capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    report = json.loads(out.read_text())
    assert set(report["strategies"]) == {"lexical", "dense", "rrf"} and report["absent"] == {"memory": report["absent"]["memory"]}
    assert "nDCG@10" in completed.stdout
