"""Retrieval latency at catalog scale: tantivy BM25 and FAISS flat / HNSW on the demo generator's catalog.

    python benchmarks/bench_latency.py --size 100000 --queries 1000 --out results/bench_latency.json

Generates the demo catalog at ``--size`` entities, builds the lexical (tantivy) index, embeds every entity
once (cached under ``--cache-dir``, so reruns skip the ~100k encodings), builds FAISS flat and HNSW, and
times single-query searches (k = ``--k``) after a warm-up pass:

* lexical on plain queries (exact titles, artist + title, topic and head phrases drawn by the simulator's
  query generator) and, separately, on misspelled titles, the queries whose unseen terms switch on the
  fuzzy clauses; queries carry the gazetteer's slots, as in the service;
* dense search excluding query encoding (queries are encoded first and timed on their own): flat, and
  HNSW at several ``efSearch`` values with its recall@100 against flat's exact top 100.

Reports build times (encoding separately), index sizes on disk, p50/p99 per case; prints a table and
writes JSON. Single-threaded searches: FAISS's OpenMP pool is limited to one thread, as one request uses.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import cast

import numpy as np
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import faiss  # noqa: E402

from catalog.demo import generate_demo_catalog  # noqa: E402
from retrievers.dense_faiss import FaissDenseRetriever  # noqa: E402
from retrievers.embedding import MODEL_NAME, Embedder, entity_text  # noqa: E402
from retrievers.lexical_tantivy import TantivyLexicalRetriever  # noqa: E402
from retrievers.understanding import Gazetteer, build_query  # noqa: E402
from services.evaluation.bench_retrieval import CachedDocumentEmbedder  # noqa: E402
from services.evaluation.sim_users import QueryStream  # noqa: E402

EF_SEARCH = (16, 32, 64, 128, 256)
RECALL_TARGET = 0.95


def draw_queries(entities, count: int, seed: int) -> tuple[list[str], list[str]]:
    """``count`` distinct plain query texts and up to ``count`` distinct misspelled ones."""
    stream = QueryStream(entities, seed)
    plain: dict[str, None] = {}
    misspelled: dict[str, None] = {}
    index = 0
    while (len(plain) < count or len(misspelled) < count) and index < 200 * count:
        intent = stream.draw(index)
        index += 1
        bucket = misspelled if intent.kind == "misspelled" else plain
        if len(bucket) < count:
            bucket[intent.text] = None
    return list(plain), list(misspelled)


def percentiles(seconds: list[float]) -> dict[str, float]:
    milliseconds = np.asarray(seconds) * 1000.0
    return {"p50_ms": round(float(np.percentile(milliseconds, 50)), 3), "p99_ms": round(float(np.percentile(milliseconds, 99)), 3)}


def timed(function, items) -> list[float]:
    for item in items[: min(100, len(items))]:  # warm-up: page in the index, fill caches
        function(item)
    seconds = []
    for item in items:
        start = time.perf_counter()
        function(item)
        seconds.append(time.perf_counter() - start)
    return seconds


def directory_mb(path: Path) -> float:
    return round(sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6, 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=100_000, help="Entities in the generated demo catalog.")
    parser.add_argument("--queries", type=int, default=1000, help="Distinct queries per kind (plain, misspelled).")
    parser.add_argument("--k", type=int, default=100, help="Results per search (the largest plan quota).")
    parser.add_argument("--hnsw-m", type=int, default=32, help="HNSW graph degree M.")
    parser.add_argument("--seed", type=int, default=7, help="Seed of the catalog and the query stream.")
    parser.add_argument("--cache-dir", type=Path, default=Path("results/cache"), help="Entity embedding cache.")
    parser.add_argument("--out", type=Path, default=Path("results/bench_latency.json"))
    args = parser.parse_args(argv)
    console = Console()
    faiss.omp_set_num_threads(1)

    entities = generate_demo_catalog(size=args.size, seed=args.seed)
    plain_texts, fuzzy_texts = draw_queries(entities, args.queries, args.seed)
    gazetteer = Gazetteer.from_entities(entities)
    plain = [build_query(text, gazetteer=gazetteer) for text in plain_texts]
    fuzzy = [build_query(text, gazetteer=gazetteer) for text in fuzzy_texts]
    console.print(f"{len(entities):,} entities, {len(plain):,} plain and {len(fuzzy):,} misspelled queries, k={args.k}")
    report: dict = {"size": len(entities), "k": args.k, "queries": {"plain": len(plain), "fuzzy": len(fuzzy)},
                    "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()}

    with tempfile.TemporaryDirectory(prefix="ltrr-latency-") as scratch, Progress(console=console) as progress:
        root = Path(scratch)
        task = progress.add_task("lexical index", total=len(entities))
        lexical = TantivyLexicalRetriever(root / "lexical")
        start = time.perf_counter()
        lexical.build(entities, progress=lambda done: progress.update(task, completed=done))
        lexical_build = time.perf_counter() - start
        lexical.close()
        lexical = TantivyLexicalRetriever.open(root / "lexical")
        report["lexical"] = {
            "build_s": round(lexical_build, 1),
            "index_mb": directory_mb(root / "lexical"),
            "plain": percentiles(timed(lambda q: lexical.search(q, args.k), plain)),
            "fuzzy": percentiles(timed(lambda q: lexical.search(q, args.k), fuzzy)),
        }

        embedder = Embedder(threads=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None)
        cache = args.cache_dir / f"demo-{args.size}-seed{args.seed}-{MODEL_NAME}.npy"
        cached = CachedDocumentEmbedder(embedder, cache)
        task = progress.add_task("embeddings", total=len(entities))
        start = time.perf_counter()
        vectors = cached.encode_documents([entity_text(e) for e in entities], progress=lambda done: progress.update(task, completed=done))
        encode_s = time.perf_counter() - start
        texts = [q.normalized for q in plain]
        encode_seconds = timed(lambda text: embedder.encode_documents([text]), texts[:300])  # uncached, one at a time
        query_vectors = embedder.encode_documents(texts)

        class Precomputed:
            """Hands the cached entity vectors to ``FaissDenseRetriever.build``."""
            dim, model_name = embedder.dim, MODEL_NAME

            def encode_query(self, text: str) -> np.ndarray:
                return embedder.encode_query(text)

            def encode_documents(self, texts, batch_size=64, progress=None):
                return vectors

        dense: dict = {"entity_encoding_s": round(encode_s, 1), "entity_encoding_cached": encode_s < 5,
                       "query_encode": percentiles(encode_seconds)}
        exact_top: list[set[str]] = []
        for kind in ("flat", "hnsw"):
            retriever = FaissDenseRetriever(Precomputed(), root / kind, kind=kind, hnsw_m=args.hnsw_m)
            start = time.perf_counter()
            retriever.build(entities)
            build_s = time.perf_counter() - start
            retriever.save()
            entry: dict = {"build_s": round(build_s, 1), "index_mb": directory_mb(root / kind)}
            if kind == "flat":
                entry.update(percentiles(timed(partial(retriever.search_vector, k=args.k), list(query_vectors))))
                exact_top = [{h.entity_id for h in retriever.search_vector(v, 100)} for v in query_vectors]
            else:
                entry["m"] = args.hnsw_m
                entry["ef_construction"] = retriever.ef_construction
                entry["ef_search"] = []
                hnsw = cast(faiss.IndexHNSW, faiss.downcast_index(retriever._index.index)).hnsw
                for ef in EF_SEARCH:
                    hnsw.efSearch = ef
                    seconds = timed(partial(retriever.search_vector, k=args.k), list(query_vectors))
                    found = [{h.entity_id for h in retriever.search_vector(v, 100)} for v in query_vectors]
                    recall = float(np.mean([len(a & b) / max(1, len(b)) for a, b in zip(found, exact_top, strict=True)]))
                    entry["ef_search"].append({"ef_search": ef, "recall@100": round(recall, 4), **percentiles(seconds)})
                good = [row for row in entry["ef_search"] if row["recall@100"] >= RECALL_TARGET]
                entry["timed_ef_search"] = good[0]["ef_search"] if good else None
            dense[kind] = entry
        report["dense"] = dense

    table = Table(title=f"retrieval latency at {report['size']:,} entities (k={args.k}, one thread, encoding excluded)")
    for column in ("case", "p50 ms", "p99 ms", "recall@100 vs flat", "build s", "index MB"):
        table.add_column(column)
    lex = report["lexical"]
    table.add_row("lexical, plain queries", f"{lex['plain']['p50_ms']:.3f}", f"{lex['plain']['p99_ms']:.3f}", "", f"{lex['build_s']}", f"{lex['index_mb']}")
    table.add_row("lexical, misspelled (fuzzy)", f"{lex['fuzzy']['p50_ms']:.3f}", f"{lex['fuzzy']['p99_ms']:.3f}", "", "", "")
    flat = dense["flat"]
    table.add_row("dense flat (exact)", f"{flat['p50_ms']:.3f}", f"{flat['p99_ms']:.3f}", "1.0000", f"{flat['build_s']}", f"{flat['index_mb']}")
    for row in dense["hnsw"]["ef_search"]:
        marker = " *" if row["ef_search"] == dense["hnsw"]["timed_ef_search"] else ""
        table.add_row(f"dense HNSW M={args.hnsw_m} efSearch={row['ef_search']}{marker}", f"{row['p50_ms']:.3f}", f"{row['p99_ms']:.3f}",
                      f"{row['recall@100']:.4f}", f"{dense['hnsw']['build_s']}", f"{dense['hnsw']['index_mb']}")
    table.add_row("query encoding (MiniLM, one query)", f"{dense['query_encode']['p50_ms']:.3f}", f"{dense['query_encode']['p99_ms']:.3f}", "", "", "")
    console.print(table)
    console.print(f"* smallest efSearch with recall@100 >= {RECALL_TARGET}; entity encoding {dense['entity_encoding_s']} s"
                  f"{' (read from cache)' if dense['entity_encoding_cached'] else ''}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    console.print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
