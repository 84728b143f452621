"""Offline: can a ranker learn from simulated clicks what a ranker learns from judgments?

On a BEIR collection: the candidates of every query are lexical top-100 and dense top-100 (the query's
own id dropped), with the serving ranker's features. The *logging* pages are the top 10 by reciprocal-
rank fusion. Each train query is shown ``impressions`` times to position-based users (``ClickModel``);
on ``randomized`` of the pages one adjacent pair, chosen uniformly, is put in random order (the
intervention the examination estimate needs). Rankers, all LightGBM lambdarank with the same trees:

- ``supervised``: the train judgments over all candidates (the ceiling clicks aim at);
- ``naive``: clicks, every other candidate of the impression a negative, also those never shown (how the
  loop trained before this change);
- ``none``: clicks on shown results only, no correction;
- ``ipw``: shown results, pairs weighted by the inverse of the estimated examination probability;
- ``position``: shown results, LightGBM's position-aware lambdarank.

Each is scored by nDCG@10 on the test queries' judgments, against fusion, over several click seeds.
"""

from __future__ import annotations

import contextlib
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from catalog.beir import load_beir
from contracts import Candidate, ConfigError, Hit
from ranker.features import build_features, rrf_from_features
from ranker.train import TrainingGroup, fit, stack
from ranker.unbiased import SwapEvidence, examination_from_swaps, fit_from_clicks
from retrievers.dense_faiss import FaissDenseRetriever
from retrievers.embedding import Embedder
from retrievers.lexical_tantivy import TantivyLexicalRetriever
from retrievers.understanding import build_query
from services.evaluation.bench_retrieval import CachedDocumentEmbedder, embedding_cache_path
from services.evaluation.click_models import ClickModel
from services.evaluation.collection_traffic import ndcg_at, relevant_grades
from services.search.catalog_changes import entity_facts
from services.search.indexing import ProgressFactory

STRATEGIES = ("lexical", "dense")
PAGE = 10
DEPTH = 100
RANKERS = ("supervised", "naive", "none", "ipw", "position")


@dataclass(frozen=True, slots=True)
class QueryCandidates:
    query_id: str
    ids: tuple[str, ...]
    features: np.ndarray  # (n, d)
    fusion: np.ndarray  # (n,) reciprocal-rank fusion score


def candidates_for(collection: Path, splits: Sequence[str], cache_dir: Path, progress: ProgressFactory,
                   embedder: Embedder | None = None) -> tuple[dict[str, QueryCandidates], dict[str, dict[str, dict[str, int]]]]:
    """Every judged query's candidates and features, and the judgments of each split."""
    judged = {split: load_beir(collection, split) for split in splits}
    first = judged[splits[0]]
    facts = {entity.id: entity_facts(entity) for entity in first.entities}
    model = embedder or Embedder()
    encoder = CachedDocumentEmbedder(model, embedding_cache_path(collection, getattr(model, "model_name", "unknown"), cache_dir))
    texts = {query_id: text for split in judged.values() for query_id, text in split.queries.items()}
    out: dict[str, QueryCandidates] = {}
    with tempfile.TemporaryDirectory(prefix="ltrr-unbiased-") as root, contextlib.ExitStack() as stack_:
        lexical = TantivyLexicalRetriever(Path(root) / "lexical")
        stack_.callback(lexical.close)
        with progress(f"lexical index ({collection.name})", len(first.entities)) as advance:
            lexical.build(first.entities, progress=advance)
        dense = FaissDenseRetriever(encoder, Path(root) / "dense")
        with progress(f"dense index ({collection.name})", len(first.entities)) as advance:
            dense.build(first.entities, progress=advance)
        with progress("candidates and features", len(texts)) as advance:
            for done, (query_id, text) in enumerate(sorted(texts.items()), start=1):
                query = build_query(text)
                provenance: dict[str, dict[str, Hit]] = {}
                for name, retriever in (("lexical", lexical), ("dense", dense)):
                    hits = [hit for hit in retriever.search(query, DEPTH + 1) if hit.entity_id != query_id][:DEPTH]
                    for rank, hit in enumerate(hits, start=1):
                        provenance.setdefault(hit.entity_id, {})[name] = Hit(hit.entity_id, hit.score, rank)
                ids = tuple(sorted(provenance))
                candidates = [Candidate(entity_id, provenance[entity_id]) for entity_id in ids]
                features = build_features(query, candidates, facts, STRATEGIES)
                out[query_id] = QueryCandidates(query_id, ids, features, rrf_from_features(features, STRATEGIES))
                advance(done)
    return out, {split: {q: dict(g) for q, g in collection_.qrels.items()} for split, collection_ in judged.items()}


def _top(scores: np.ndarray, ids: Sequence[str], k: int = PAGE) -> list[str]:
    order = sorted(range(len(ids)), key=lambda i: (-scores[i], ids[i]))[:k]
    return [ids[i] for i in order]


@dataclass(frozen=True, slots=True)
class ClickLog:
    features: np.ndarray
    clicks: np.ndarray
    positions: np.ndarray
    group_sizes: np.ndarray
    naive_groups: list[TrainingGroup]
    evidence: SwapEvidence


def simulate_clicks(candidates: dict[str, QueryCandidates], qrels: dict[str, dict[str, int]], users: ClickModel,
                    impressions: int, randomized: float, seed: int) -> ClickLog:
    """``impressions`` fusion pages per train query, clicked by ``users``; ``randomized`` of them put one
    adjacent pair (upper position uniform over 1..9) in random order."""
    rng = np.random.default_rng([seed, 41])
    max_grade = max((g for judged in qrels.values() for g in judged.values()), default=1)
    rows: list[tuple[str, int]] = []
    clicks: list[int] = []
    positions: list[int] = []
    sizes: list[int] = []
    naive: list[TrainingGroup] = []
    pairs: list[int] = []
    upper: list[bool] = []
    lower: list[bool] = []
    for query_id in sorted(qrels):
        if query_id not in candidates:
            continue
        found = candidates[query_id]
        grades = relevant_grades(qrels[query_id], query_id)
        if not grades:
            continue
        index = {entity_id: i for i, entity_id in enumerate(found.ids)}
        base = _top(found.fusion, found.ids)
        for _ in range(impressions):
            page = list(base)
            pair = 0
            if rng.random() < randomized and len(page) >= 2:
                pair = int(rng.integers(1, len(page)))
                if rng.random() < 0.5:
                    page[pair - 1], page[pair] = page[pair], page[pair - 1]
            clicked = set(users.clicks(page, grades, max_grade, rng))
            if pair:
                pairs.append(pair)
                upper.append(pair in clicked)
                lower.append(pair + 1 in clicked)
            rows_of = [index[entity_id] for entity_id in page]
            rows.extend((query_id, i) for i in rows_of)
            clicks.extend(1 if position in clicked else 0 for position in range(1, len(page) + 1))
            positions.extend(range(1, len(page) + 1))
            sizes.append(len(page))
            labels = np.zeros(len(found.ids), dtype=np.int32)
            for position in clicked:
                labels[rows_of[position - 1]] = 1
            naive.append(TrainingGroup(found.features, labels))
    features = np.vstack([candidates[query_id].features[i] for query_id, i in rows]) if rows else np.zeros((0, 0))
    return ClickLog(features, np.asarray(clicks), np.asarray(positions), np.asarray(sizes), naive,
                    SwapEvidence(np.asarray(pairs), np.asarray(upper), np.asarray(lower)))


def _evaluate(scorer, candidates: dict[str, QueryCandidates], qrels: dict[str, dict[str, int]]) -> np.ndarray:
    values = []
    for query_id in sorted(qrels):
        grades = relevant_grades(qrels[query_id], query_id)
        if not grades or query_id not in candidates:
            continue
        found = candidates[query_id]
        scores = found.fusion if scorer is None else scorer(found.features)
        values.append(ndcg_at(_top(scores, found.ids), grades, query_id))
    return np.asarray(values)


def run_unbiased_benchmark(
    collection: Path,
    train_split: str = "train",
    test_split: str = "test",
    seeds: Sequence[int] = (1, 2, 3),
    impressions: int = 10,
    randomized: float = 0.2,
    users: ClickModel | None = None,
    cache_dir: Path = Path("results/cache"),
    progress: ProgressFactory | None = None,
    threads: int = 1,
) -> dict[str, Any]:
    from services.evaluation.simulate import _no_progress

    users = users or ClickModel("pbm")
    if users.name != "pbm":
        raise ConfigError.about("--click-model", "the offline benchmark simulates position-based users (pbm)")
    if train_split == test_split:
        raise ConfigError.about("--test-split", "train and test splits must differ")
    candidates, qrels = candidates_for(collection, (train_split, test_split), cache_dir, progress or _no_progress)
    train, test = qrels[train_split], qrels[test_split]
    fusion = _evaluate(None, candidates, test)
    supervised_groups = []
    for query_id in sorted(train):
        if query_id in candidates:
            found = candidates[query_id]
            labels = np.array([max(0, train[query_id].get(entity_id, 0)) for entity_id in found.ids], dtype=np.int32)
            if labels.any():
                supervised_groups.append(TrainingGroup(found.features, labels))
    per_seed: dict[str, list[np.ndarray]] = {name: [] for name in RANKERS}
    estimates = []
    with (progress or _no_progress)("rankers trained", len(seeds) * len(RANKERS)) as advance:
        for done, seed in enumerate(seeds):
            x, y, sizes = stack(supervised_groups)
            model = fit(x, y, sizes, seed=seed, threads=threads)
            per_seed["supervised"].append(_evaluate(model.predict, candidates, test))
            log = simulate_clicks(candidates, train, users, impressions, randomized, seed)
            x, y, sizes = stack([g for g in log.naive_groups if g.labels.any()])
            model = fit(x, y, sizes, seed=seed, threads=threads)
            per_seed["naive"].append(_evaluate(model.predict, candidates, test))
            advance(done * len(RANKERS) + 2)
            examination = examination_from_swaps(log.evidence, PAGE)
            estimates.append(examination)
            for offset, method in enumerate(("none", "ipw", "position"), start=3):
                booster = fit_from_clicks(log.features, log.clicks, log.positions, log.group_sizes, method, examination, seed, threads)
                per_seed[method].append(_evaluate(booster.predict, candidates, test))
                advance(done * len(RANKERS) + offset)
    fusion_mean = float(fusion.mean())
    rankers: dict[str, Any] = {"fusion": {"ndcg@10": fusion_mean, "se_over_seeds": 0.0}}
    for name, values in per_seed.items():
        means = np.array([v.mean() for v in values])
        rankers[name] = {
            "ndcg@10": float(means.mean()),
            "se_over_seeds": float(means.std(ddof=1) / math.sqrt(len(means))) if len(means) > 1 else 0.0,
            "per_seed": means.tolist(),
            "gain_over_fusion": float(means.mean() - fusion_mean),
        }
    supervised_gain = rankers["supervised"]["gain_over_fusion"]
    for name in ("naive", "none", "ipw", "position"):
        rankers[name]["share_of_supervised_gain"] = rankers[name]["gain_over_fusion"] / supervised_gain if supervised_gain > 0 else None
    comparisons = {}
    for name in ("ipw", "position"):
        for baseline in ("none", "naive"):
            diffs = np.concatenate([a - b for a, b in zip(per_seed[name], per_seed[baseline], strict=True)])
            se = float(diffs.std(ddof=1) / math.sqrt(len(diffs)))
            comparisons[f"{name}-{baseline}"] = {"mean": float(diffs.mean()), "low95": float(diffs.mean() - 1.96 * se),
                                                 "high95": float(diffs.mean() + 1.96 * se)}
    true_examination = [users.examination(position) for position in range(1, PAGE + 1)]
    return {
        "collection": collection.name,
        "train_split": train_split,
        "test_split": test_split,
        "train_queries": len(supervised_groups),
        "test_queries": len(fusion),
        "seeds": list(seeds),
        "impressions_per_query": impressions,
        "randomized_pages": randomized,
        "click_model": {"name": users.name, "eta": users.eta, "noise": users.noise},
        "examination": {"true": true_examination, "estimated_mean": np.mean(estimates, axis=0).tolist()},
        "rankers": rankers,
        "paired_differences": comparisons,
    }
