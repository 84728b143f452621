"""Ranker retraining from the rows ingest writes: the most recent engaged impressions, split by time
into train and a later holdout slice; the new model replaces the serving one unless the gate finds it
significantly worse (``ranker.train.GATE_RULE``: on the holdout's randomized pairs once enough exist, else
on its clicks' nDCG@10)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from contracts.artifacts import ModelStore
from contracts.events import LOGGED_BELOW_PAGE
from ranker.base import Ranker
from ranker.features import feature_names
from ranker.lambdamart import LambdaMartRanker
from ranker.train import TrainingGroup, train_and_gate
from services.ingest.rows import TrainingRow
from services.settings import Settings

logger = logging.getLogger(__name__)

MAX_GROUPS = 3000
MAX_NEGATIVES_PER_GROUP = LOGGED_BELOW_PAGE  # impressions log no more below the page


def rows_from_file(rows_path: Path) -> list[str]:
    """The rows the in-process ingest appended (oldest first)."""
    return rows_path.read_text(encoding="utf-8").splitlines() if rows_path.exists() else []


def load_groups(lines: Sequence[str], width: int, max_groups: int = MAX_GROUPS) -> list[TrainingGroup]:
    """The newest ``max_groups`` of ``lines`` (oldest first) whose feature width matches, one per request id;
    per row every engaged candidate, every shown one and the first ``MAX_NEGATIVES_PER_GROUP`` others in
    logged (ranked) order, with the position each was shown at (0: below the page) when the row has them."""
    groups = []
    seen: set[str] = set()
    for line in lines[-max_groups:]:
        row = TrainingRow.from_line(line)
        if row.request_id in seen:
            continue
        seen.add(row.request_id)
        features = np.asarray(row.features, dtype=np.float64)
        if features.ndim != 2 or features.shape[1] != width:
            continue
        labels = np.asarray(row.labels, dtype=np.float64)
        logged = np.asarray(row.positions, dtype=np.int64) if len(row.positions) == len(labels) else None
        negatives = np.flatnonzero(labels == 0)[:MAX_NEGATIVES_PER_GROUP]
        kept = [np.flatnonzero(labels > 0), negatives] + ([np.flatnonzero(logged > 0)] if logged is not None else [])
        keep = np.unique(np.concatenate(kept))  # sorted: the logged (ranked) order
        groups.append(TrainingGroup(features[keep], labels[keep], row.time, None if logged is None else logged[keep],
                                    row.pair if logged is not None else 0))
    return groups


def retrain_ranker(
    settings: Settings,
    models: ModelStore,
    rows: Sequence[str],
    current: Callable[[], Ranker],
    install: Callable[[Ranker], None],
) -> str:
    """Train, gate, publish and install; returns one line saying what happened."""
    if settings.ranker == "fusion":
        return "not retrained: LTRR_RANKER=fusion"
    strategies = tuple(settings.strategies)
    groups = load_groups(rows, len(feature_names(strategies)))
    holdout_size = max(1, int(len(groups) * settings.ranker_holdout_fraction))
    if len(groups) - holdout_size < 20:
        return f"not retrained: {len(groups)} engaged impressions, need at least {20 + holdout_size}"
    serving = current()
    score = serving.score_features if isinstance(serving, LambdaMartRanker) else None
    result = train_and_gate(
        groups[:-holdout_size],
        groups[-holdout_size:],
        score,
        models.root / "ranker",
        settings.seed if settings.seed is not None else 0,
        strategies=strategies,
        current_version=serving.version,
        threads=settings.ranker_threads,
        correction=settings.ranker_correction,
    )
    if not result.accepted:
        return f"kept {serving.version}: {result.reason}"
    models.publish("ranker", result.version)
    models.prune("ranker")
    install(LambdaMartRanker.load(models.directory("ranker", result.version)))
    return f"{result.version} replaces {serving.version}: {result.reason}"
