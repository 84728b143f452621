"""Retrieval benchmark on a BEIR-format collection: our lexical, dense and fused retrievers against judgments.

The corpus is indexed with ``TantivyLexicalRetriever`` (title -> ``title``, text -> ``description``, default
boosts) and a flat ``FaissDenseRetriever`` in a temporary directory, and every judged query of the split is
searched for its top ``k``. Metrics come from ranx (nDCG@10 with graded gains as trec_eval's ``ndcg_cut``,
Recall@100, MRR@10). As BEIR's evaluator and Anserini's ``-removeQuery`` do, a retrieved document whose id
equals the query id is ignored (``k + 1`` are fetched so that ``k`` remain).

Strategies:

* ``lexical``: BM25; latency is ``search``.
* ``dense``: cosine over all-MiniLM-L6-v2 embeddings; queries are encoded first (``encode_p50_ms``) and
  latency is the FAISS search (``search_vector``) alone.
* ``rrf``: reciprocal-rank fusion (Cormack, Clarke & Buettcher, SIGIR 2009; ``1 / (60 + rank)``) of the
  lexical and dense top ``k`` with ``ranx.fuse``; latency is lexical + dense of the same query plus the
  fusion's mean per-query time.
* ``memory`` is reported absent: a BEIR collection has no interaction log, and the memory index must
  never be fed test judgments.

``union`` is the set recall of the union of every strategy's top ``k`` (relevant = grade > 0), averaged
over queries as ranx's recall is, and the union's mean size.

Document embeddings are cached in ``<cache_dir>/<dataset>-<model>-<sha256(corpus.jsonl)[:12]>.npy``.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ContextManager, Iterator, Mapping, Sequence

import numpy as np

from catalog.beir import load_beir
from contracts import ConfigError, Hit
from retrievers.dense_faiss import FaissDenseRetriever
from retrievers.embedding import Embedder
from retrievers.lexical_tantivy import TantivyLexicalRetriever
from retrievers.understanding import build_query

logger = logging.getLogger(__name__)

METRICS = ("ndcg@10", "recall@100", "mrr@10")
RRF_K = 60
MEMORY_ABSENT = ("no interaction log for this collection; the memory index is never fed test judgments")

ProgressFactory = Callable[[str, int], ContextManager[Callable[[int], None]]]


@contextlib.contextmanager
def _no_progress(label: str, total: int) -> Iterator[Callable[[int], None]]:
    yield lambda done: None


@dataclass(frozen=True, slots=True)
class StrategyResult:
    """One strategy's quality (ranx means over the split's queries) and latency percentiles in ms."""

    name: str
    ndcg_at_10: float
    recall_at_100: float
    mrr_at_10: float
    p50_ms: float
    p99_ms: float

    def to_json(self) -> dict[str, float]:
        return {"ndcg@10": self.ndcg_at_10, "recall@100": self.recall_at_100, "mrr@10": self.mrr_at_10,
                "p50_ms": self.p50_ms, "p99_ms": self.p99_ms}


@dataclass(frozen=True, slots=True)
class RetrievalBenchmark:
    """The whole report; ``absent`` maps a strategy that was not run to the reason."""

    dataset: str
    split: str
    k: int
    docs: int
    queries: int
    encode_p50_ms: float
    strategies: tuple[StrategyResult, ...]
    union_recall_at_100: float
    union_size: float
    absent: tuple[tuple[str, str], ...]

    def strategy(self, name: str) -> StrategyResult:
        for result in self.strategies:
            if result.name == name:
                return result
        raise KeyError(name)

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "split": self.split,
            "k": self.k,
            "docs": self.docs,
            "queries": self.queries,
            "encode_p50_ms": self.encode_p50_ms,
            "strategies": {result.name: result.to_json() for result in self.strategies},
            "union": {"recall@100": self.union_recall_at_100, "size": self.union_size},
            "absent": dict(self.absent),
        }


class CachedDocumentEmbedder:
    """An ``Embedder`` whose ``encode_documents`` reads/writes one ``.npy`` file (for one fixed corpus)."""

    def __init__(self, embedder: Embedder, cache_path: Path | None) -> None:
        self._embedder = embedder
        self.cache_path = cache_path
        self.dim = embedder.dim
        self.model_name = getattr(embedder, "model_name", "unknown")

    def encode_query(self, text: str) -> np.ndarray:
        return self._embedder.encode_query(text)

    def encode_documents(self, texts: Sequence[str], batch_size: int = 64,
                         progress: Callable[[int], None] | None = None) -> np.ndarray:
        if self.cache_path is not None and self.cache_path.is_file():
            vectors = np.load(self.cache_path)
            if vectors.shape == (len(texts), self.dim):
                logger.info("document embeddings read from %s", self.cache_path)
                if progress is not None:
                    progress(len(texts))
                return vectors
            logger.warning("ignoring %s: shape %s, expected %s", self.cache_path, vectors.shape, (len(texts), self.dim))
        vectors = self._embedder.encode_documents(texts, batch_size, progress)
        if self.cache_path is not None:
            self.cache_path.parent.mkdir(parents=True, exist_ok=True)
            partial = self.cache_path.with_suffix(".partial.npy")
            np.save(partial, vectors)
            partial.replace(self.cache_path)
        return vectors


def embedding_cache_path(dataset: Path, model_name: str, cache_dir: Path) -> Path:
    """``<cache_dir>/<dataset>-<model>-<first 12 hex of sha256(corpus.jsonl)>.npy``."""
    digest = hashlib.sha256()
    with (dataset / "corpus.jsonl").open("rb") as corpus:
        for block in iter(lambda: corpus.read(1 << 20), b""):
            digest.update(block)
    return cache_dir / f"{dataset.name}-{model_name}-{digest.hexdigest()[:12]}.npy"


def _percentiles(milliseconds: Sequence[float]) -> tuple[float, float]:
    if not milliseconds:
        return 0.0, 0.0
    p50, p99 = np.percentile(np.asarray(milliseconds, dtype=np.float64), [50, 99])
    return float(p50), float(p99)


def _ranked(hits: Sequence[Hit], query_id: str, k: int) -> dict[str, float]:
    """Top ``k`` ids, the query's own id dropped, scored by rank (``k - position``) so ranx keeps our order."""
    kept = [hit.entity_id for hit in hits if hit.entity_id != query_id][:k]
    return {entity_id: float(k - position) for position, entity_id in enumerate(kept)}


def union_recall(qrels: Mapping[str, Mapping[str, int]], runs: Sequence[Mapping[str, Mapping[str, float]]]) -> tuple[float, float]:
    """(mean set recall of the union of ``runs``' lists, mean union size) over queries with a relevant doc."""
    recalls, sizes = [], []
    for query_id, judged in qrels.items():
        relevant = {doc_id for doc_id, grade in judged.items() if grade > 0}
        union: set[str] = set()
        for run in runs:
            union.update(run.get(query_id, {}))
        sizes.append(len(union))
        if relevant:
            recalls.append(len(relevant & union) / len(relevant))
    return (float(np.mean(recalls)) if recalls else 0.0), (float(np.mean(sizes)) if sizes else 0.0)


def _evaluate(qrels: Any, run: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    from ranx import Run, evaluate

    scores = evaluate(qrels, Run({q: dict(d) for q, d in run.items()}), list(METRICS), make_comparable=True)
    return {metric: float(scores[metric]) for metric in METRICS}


def run_retrieval_benchmark(
    dataset: Path | str,
    embedder: Embedder,
    split: str = "test",
    k: int = 100,
    cache_dir: Path | str | None = None,
    work_dir: Path | str | None = None,
    progress: ProgressFactory | None = None,
) -> RetrievalBenchmark:
    """Index ``dataset`` (a BEIR folder), search its ``split`` queries with each strategy and score them.

    ``cache_dir``: where document embeddings are cached (``None``: no cache). ``work_dir``: where the
    indexes are built (default: a temporary directory, removed afterwards).
    """
    from ranx import Qrels, Run, fuse

    if k < 10:
        raise ConfigError(f"k: expected >= 10 (nDCG@10 and MRR@10 need 10 results), got {k}")
    dataset = Path(dataset)
    progress = progress or _no_progress
    collection = load_beir(dataset, split)
    cache_path = None if cache_dir is None else embedding_cache_path(
        dataset, getattr(embedder, "model_name", "unknown"), Path(cache_dir))
    entities = collection.entities
    query_ids = list(collection.queries)

    with contextlib.ExitStack() as stack:
        root = Path(work_dir) if work_dir is not None else Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ltrr-bench-")))
        lexical = TantivyLexicalRetriever(root / "lexical")
        stack.callback(lexical.close)
        with progress(f"lexical index ({dataset.name})", len(entities)) as advance:
            lexical.build(entities, progress=advance)
        dense = FaissDenseRetriever(CachedDocumentEmbedder(embedder, cache_path), root / "dense", kind="flat")
        with progress(f"document embeddings ({dataset.name})", len(entities)) as advance:
            dense.build(entities, progress=advance)

        queries = {query_id: build_query(collection.queries[query_id]) for query_id in query_ids}
        vectors: dict[str, np.ndarray] = {}
        encode_ms: list[float] = []
        with progress(f"query embeddings ({dataset.name})", len(query_ids)) as advance:
            for done, query_id in enumerate(query_ids, start=1):
                started = time.perf_counter()
                vectors[query_id] = embedder.encode_query(queries[query_id].normalized or queries[query_id].text)
                encode_ms.append((time.perf_counter() - started) * 1000)
                advance(done)

        runs: dict[str, dict[str, dict[str, float]]] = {"lexical": {}, "dense": {}}
        latency_ms: dict[str, list[float]] = {"lexical": [], "dense": []}
        with progress(f"search ({dataset.name})", len(query_ids)) as advance:
            for done, query_id in enumerate(query_ids, start=1):
                started = time.perf_counter()
                hits = lexical.search(queries[query_id], k + 1)
                latency_ms["lexical"].append((time.perf_counter() - started) * 1000)
                runs["lexical"][query_id] = _ranked(hits, query_id, k)
                started = time.perf_counter()
                hits = dense.search_vector(vectors[query_id], k + 1)
                latency_ms["dense"].append((time.perf_counter() - started) * 1000)
                runs["dense"][query_id] = _ranked(hits, query_id, k)
                advance(done)

    # The first call compiles ranx's numba kernels; warm them up so that the timing is the fusion's alone.
    fuse([Run({"warm-up": {"a": 2.0, "b": 1.0}}), Run({"warm-up": {"b": 2.0}})], norm=None, method="rrf", params={"k": RRF_K})
    ranx_runs = [Run(runs["lexical"]), Run(runs["dense"])]
    started = time.perf_counter()
    fused = fuse(ranx_runs, norm=None, method="rrf", params={"k": RRF_K})
    fuse_ms_per_query = (time.perf_counter() - started) * 1000 / max(len(query_ids), 1)
    fused_dict = fused.to_dict()
    runs["rrf"] = {}
    for query_id in query_ids:
        ordered = sorted(fused_dict.get(query_id, {}).items(), key=lambda item: (-item[1], item[0]))[:k]
        runs["rrf"][query_id] = {doc_id: score for doc_id, score in ordered}
    latency_ms["rrf"] = [lex + den + fuse_ms_per_query for lex, den in zip(latency_ms["lexical"], latency_ms["dense"], strict=True)]

    qrels = Qrels({query_id: dict(judged) for query_id, judged in collection.qrels.items()})
    strategies = []
    for name in ("lexical", "dense", "rrf"):
        scores = _evaluate(qrels, runs[name])
        p50, p99 = _percentiles(latency_ms[name])
        strategies.append(StrategyResult(name=name, ndcg_at_10=scores["ndcg@10"], recall_at_100=scores["recall@100"],
                                         mrr_at_10=scores["mrr@10"], p50_ms=p50, p99_ms=p99))
    recall, size = union_recall(collection.qrels, list(runs.values()))
    return RetrievalBenchmark(
        dataset=collection.name, split=split, k=k, docs=len({entity.id for entity in entities}),
        queries=len(query_ids), encode_p50_ms=_percentiles(encode_ms)[0], strategies=tuple(strategies),
        union_recall_at_100=recall, union_size=size, absent=(("memory", MEMORY_ABSENT),),
    )
