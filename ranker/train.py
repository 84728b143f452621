"""Ranker training, evaluation and the promotion gate (offline; serving never imports this module).

``train_and_gate`` trains LightGBM lambdarank on logged feature rows, scores the later holdout slice
with the new model and with the current one (the RRF baseline recomputed from the logged
``inverse_rank`` columns when no model exists), and saves the new model as ``out_dir/<version>/``
unless the gate (``GATE_RULE``) finds it significantly worse. The gate's evidence, decision and figures
are in the saved model's manifest (``gate``).
"""

from __future__ import annotations

import hashlib
import logging
import math
import shutil
import tempfile
from dataclasses import dataclass
from functools import partial
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Callable, Sequence

import lightgbm
import numpy as np

from contracts import BadRequest, ConfigError
from contracts.artifacts import file_checksums, replace_directory, sha256_of, write_manifest
from ranker.features import feature_names, rrf_from_features
from ranker.lambdamart import MANIFEST_FORMAT, MODEL_FILE
from ranker.unbiased import fit_from_clicks

logger = logging.getLogger(__name__)

ScoreFunction = Callable[[np.ndarray], np.ndarray]

# The gate rejects a new model only when it is significantly worse than the serving one on the holdout:
# a paired z below -GATE_MAX_WORSE_Z (about a 2.5% one-sided test). The holdout's clicks were collected on
# the serving model's pages (only what it put on the page could be clicked), so a plain "not lower" rule
# favours the incumbent, and a model trained on fresher data is preferred whenever the two are tied.
GATE_MAX_WORSE_Z = 2.0

# Evidence the serving ranker did not choose: on a randomized page (LTRR_RANDOMIZE_PAGES) two adjacent
# results were shown in a coin's order, so when users clicked exactly one of them, which one they preferred
# does not depend on where the serving ranker put it. Each such pair in the holdout scores +1 for a model
# that orders the clicked result above the other, -1 below, 0 tied.
MIN_RANDOMIZED_COMPARISONS = 30
GATE_RULE = (
    f"With at least {MIN_RANDOMIZED_COMPARISONS} randomized pairs in the holdout with exactly one of the two clicked, "
    f"the new model is compared with the serving one on those pairs; otherwise (before enough exist, or without "
    f"page randomization) on nDCG@10 of the holdout's clicks. It is rejected when significantly worse (paired z "
    f"< -{GATE_MAX_WORSE_Z}) and promoted otherwise, so a model trained on fresher data wins ties and a clearly "
    f"better one is promoted at the first retrain that has enough rows to train."
)

# How clicks become training data: ``naive`` keeps the logged candidates below the page as negatives;
# the others train on the shown results only (``ranker.unbiased``): ``none`` as they are, ``position``
# with LightGBM's position-aware lambdarank, ``ipw`` weighted by the inverse examination probability.
CORRECTIONS = ("naive", "none", "position", "ipw")


@dataclass(frozen=True, slots=True)
class TrainingGroup:
    """The logged candidates of one impression: ``features`` ``(n, d)`` exactly as scored, graded
    ``labels`` ``(n,)`` (0 none, 1 click, 2 favorite, 3 play), and the impression time."""

    features: np.ndarray
    labels: np.ndarray
    timestamp: float = 0.0
    positions: np.ndarray | None = None  # 1-based position each row was shown at, 0 below the page (None: not logged)
    pair: int = 0  # upper position of the page's randomized pair (0: none)

    def shown(self) -> TrainingGroup:
        """Only the rows that were on the page, in page order (all rows when positions were not logged)."""
        if self.positions is None:
            return self
        on_page = np.flatnonzero(self.positions > 0)
        order = on_page[np.argsort(self.positions[on_page], kind="stable")]
        return TrainingGroup(self.features[order], self.labels[order], self.timestamp, self.positions[order], self.pair)

    def randomized_preference(self) -> tuple[int, int] | None:
        """``(clicked row, other row)`` of the randomized pair when users engaged exactly one of its two results."""
        if not self.pair or self.positions is None:
            return None
        upper, lower = np.flatnonzero(self.positions == self.pair), np.flatnonzero(self.positions == self.pair + 1)
        if len(upper) != 1 or len(lower) != 1:
            return None
        upper_row, lower_row = int(upper[0]), int(lower[0])
        upper_engaged, lower_engaged = self.labels[upper_row] > 0, self.labels[lower_row] > 0
        if upper_engaged == lower_engaged:
            return None
        return (upper_row, lower_row) if upper_engaged else (lower_row, upper_row)



@dataclass(frozen=True, slots=True)
class GateEvidence:
    """What the gate compared: ``randomized_pairs`` (per-pair agreement with the users' choice) or
    ``holdout_clicks`` (per-group nDCG@10), over ``comparisons`` pairs or groups."""

    source: str
    comparisons: int
    new: float
    current: float
    paired_z: float


def randomized_agreement(groups: Sequence[TrainingGroup], new_scores: np.ndarray, current_scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per randomized pair with one engaged result, in group order: +1 when a model scores the engaged result
    above the other, -1 below, 0 tied; for the new model and the current one. Scores are over ``stack(groups)``."""
    new_agreement, current_agreement = [], []
    start = 0
    for group in groups:
        if len(group.labels) == 0:
            continue  # stack() skips it too
        preference = group.randomized_preference()
        if preference is not None:
            clicked, other = start + preference[0], start + preference[1]
            new_agreement.append(float(np.sign(new_scores[clicked] - new_scores[other])))
            current_agreement.append(float(np.sign(current_scores[clicked] - current_scores[other])))
        start += len(group.labels)
    return np.asarray(new_agreement, dtype=np.float64), np.asarray(current_agreement, dtype=np.float64)


def gate_evidence(
    groups: Sequence[TrainingGroup], new_scores: np.ndarray, current_scores: np.ndarray, new_ndcgs: np.ndarray, current_ndcgs: np.ndarray
) -> GateEvidence | None:
    """The comparison ``GATE_RULE`` decides on: the randomized pairs once there are enough, else the groups'
    nDCG@10 (``new_ndcgs``, ``current_ndcgs``: ``ndcg_at_10_per_group`` of the scores); ``None`` when the
    holdout has no engaged group at all."""
    new_agreement, current_agreement = randomized_agreement(groups, new_scores, current_scores)
    if len(new_agreement) >= MIN_RANDOMIZED_COMPARISONS:
        return GateEvidence("randomized_pairs", len(new_agreement), float(new_agreement.mean()), float(current_agreement.mean()),
                            paired_z(new_agreement, current_agreement))
    if not len(new_ndcgs):
        return None
    return GateEvidence("holdout_clicks", len(new_ndcgs), float(new_ndcgs.mean()), float(current_ndcgs.mean()), paired_z(new_ndcgs, current_ndcgs))


@dataclass(frozen=True, slots=True)
class GateResult:
    accepted: bool
    version: str
    new_ndcg: float
    current_ndcg: float
    n_train: int
    n_holdout: int
    reason: str
    directory: Path | None = None
    evidence: GateEvidence | None = None


def stack(groups: Sequence[TrainingGroup]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Concatenate groups into ``(features (N, d), labels (N,), group_sizes (G,))``; empty groups are skipped."""
    kept = [group for group in groups if len(group.labels) > 0]
    if not kept:
        raise BadRequest("groups", "no non-empty training groups; log impressions with feedback first")
    widths = {group.features.shape[1] for group in kept}
    if len(widths) != 1:
        raise BadRequest("groups", f"feature widths differ across groups ({sorted(widths)}); train on one feature version only")
    features = np.vstack([group.features for group in kept]).astype(np.float64)
    labels = np.concatenate([np.asarray(group.labels) for group in kept]).astype(np.int32)
    return features, labels, np.array([len(group.labels) for group in kept], dtype=np.int64)


def fit(
    features: np.ndarray, labels: np.ndarray, group_sizes: np.ndarray, seed: int, threads: int = 1, **overrides: object
) -> lightgbm.LGBMRanker:
    """LightGBM lambdarank (Burges, "From RankNet to LambdaRank to LambdaMART", 2010), deterministic for a
    seed and a thread count.

    Even with ``deterministic=True`` the trees depend on the number of threads (the histogram sums are
    split across them), so ``threads`` is fixed by the caller, never read from the machine: a model
    trained under ``taskset`` on one core or on a bigger host is the same model. ``overrides`` replace
    any parameter."""
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ConfigError.about("threads", f"expected a whole number of threads >= 1, got {threads!r}")
    if int(np.sum(group_sizes)) != len(labels) or len(features) != len(labels):
        raise BadRequest("group_sizes", f"sizes sum to {int(np.sum(group_sizes))} but there are {len(labels)} labels and {len(features)} rows")
    model = lightgbm.LGBMRanker(
        objective="lambdarank", n_estimators=200, learning_rate=0.05, num_leaves=31, min_child_samples=5,
        random_state=seed, deterministic=True, force_row_wise=True, verbose=-1,
        n_jobs=threads,
    )
    model.set_params(**overrides)
    model.fit(features, labels, group=group_sizes)
    return model


def ndcg_at_10(scores: np.ndarray, labels: np.ndarray, group_sizes: np.ndarray) -> float:
    """Mean nDCG@10 over the groups that have at least one positive label (linear gain, Järvelin and
    Kekäläinen 2002; the same figure as ranx's ``ndcg@10``, which a test checks). NaN when no group has one."""
    return _mean_or_nan(ndcg_at_10_per_group(scores, labels, group_sizes))


def _mean_or_nan(values: np.ndarray) -> float:
    return float(np.mean(values)) if len(values) else float("nan")


_DISCOUNTS = 1.0 / np.log2(np.arange(2, 12, dtype=np.float64))


def ndcg_at_10_per_group(scores: np.ndarray, labels: np.ndarray, group_sizes: np.ndarray) -> np.ndarray:
    """nDCG@10 of each group that has at least one positive label, in group order (empty if none). Plain
    numpy: the gate runs inside ingest's retrain, where a JIT compile (ranx's numba) would stall for minutes."""
    values = []
    start = 0
    for size in group_sizes:
        size = int(size)
        group_labels = np.asarray(labels[start:start + size], dtype=np.float64)
        group_scores = np.asarray(scores[start:start + size], dtype=np.float64)
        start += size
        if not (group_labels > 0).any():
            continue
        top = group_labels[np.argsort(-group_scores, kind="stable")[:10]]
        ideal = np.sort(group_labels)[::-1][:10]
        values.append(float(top @ _DISCOUNTS[: len(top)]) / float(ideal @ _DISCOUNTS[: len(ideal)]))
    return np.asarray(values, dtype=np.float64)


def paired_z(new: np.ndarray, current: np.ndarray) -> float:
    """``mean(new - current) / stderr(new - current)`` over the same groups (a paired z statistic);
    0.0 when the differences are all equal to zero, +/-inf when they are identical but non-zero."""
    if new.shape != current.shape or new.ndim != 1:
        raise BadRequest("current", f"paired scores need the same groups, got shapes {new.shape} and {current.shape}")
    differences = new - current
    mean = float(np.mean(differences)) if len(differences) else 0.0
    stderr = float(np.std(differences, ddof=1) / np.sqrt(len(differences))) if len(differences) > 1 else 0.0
    if stderr == 0.0:
        return 0.0 if mean == 0.0 else math.copysign(math.inf, mean)
    return mean / stderr


def _model_version(booster: lightgbm.Booster) -> str:
    digest = hashlib.sha256(booster.model_to_string().encode()).hexdigest()
    return f"lgbm-{digest[:12]}"


def save_model(booster: lightgbm.Booster, directory: Path, manifest: dict) -> None:
    """Write ``model.txt`` + ``manifest.json`` into a temporary sibling, then rename it into place."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}-", dir=directory.parent))
    try:
        booster.save_model(str(staging / MODEL_FILE))
        write_manifest(staging, {**manifest, "model_sha256": sha256_of(staging / MODEL_FILE), "files": file_checksums(staging)})
        replace_directory(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def train_and_gate(
    train_groups: Sequence[TrainingGroup],
    holdout_groups: Sequence[TrainingGroup],
    current: ScoreFunction | None,
    out_dir: Path,
    seed: int,
    *,
    strategies: Sequence[str],
    current_version: str = "rrf-60",
    threads: int = 1,
    correction: str = "naive",
    examination: np.ndarray | None = None,
) -> GateResult:
    """Train on ``train_groups``, compare with ``current`` on the (later) ``holdout_groups``, save unless
    significantly worse (paired z of per-group nDCG@10 below ``-GATE_MAX_WORSE_Z``).

    ``current`` scores one feature matrix (e.g. ``LambdaMartRanker.score_features``); ``None`` means the
    fusion baseline ``sum_s 1/(60 + rank_s)`` from the logged features. Saved to ``out_dir/<version>/``.
    """
    names = feature_names(strategies)
    if correction not in CORRECTIONS:
        raise ConfigError.about("correction", f"expected one of {', '.join(CORRECTIONS)}, got {correction!r}")
    with_positions = [group for group in train_groups if group.positions is not None]
    logged_positions = correction != "naive" and len(with_positions) >= 20
    if logged_positions:  # rows logged before positions were cannot say what was shown: left out
        train_groups = [shown for shown in (group.shown() for group in with_positions) if (shown.labels > 0).any()]
    elif correction != "naive":
        logger.warning("ranker: %d of %d training groups have logged positions; trained as correction=naive", len(with_positions), len(train_groups))
    x_train, y_train, sizes_train = stack(train_groups)
    x_holdout, y_holdout, sizes_holdout = stack(holdout_groups)
    for label, matrix in (("train_groups", x_train), ("holdout_groups", x_holdout)):
        if matrix.shape[1] != len(names):
            raise ConfigError.about("strategies", f"{label} have {matrix.shape[1]} features but strategies {list(strategies)} give {len(names)}; train with the strategies the rows were logged with")
    if not logged_positions:
        model = fit(x_train, y_train, sizes_train, seed, threads=threads)
        booster, params = model.booster_, model.get_params()
        correction = "naive"
    else:
        positions = np.concatenate([group.positions for group in train_groups if group.positions is not None])
        booster = fit_from_clicks(x_train, y_train, positions, sizes_train, correction, examination, seed, threads)
        params = {name: value for name, value in booster.params.items() if name != "objective"} | {"correction": correction}
    version = _model_version(booster)
    new_scores = np.asarray(booster.predict(x_holdout), dtype=np.float64)
    current_scores = (
        rrf_from_features(x_holdout, strategies) if current is None else np.asarray(current(x_holdout), dtype=np.float64)
    )
    new_per_group = ndcg_at_10_per_group(new_scores, y_holdout, sizes_holdout)
    current_per_group = ndcg_at_10_per_group(current_scores, y_holdout, sizes_holdout)
    new_ndcg, current_ndcg = _mean_or_nan(new_per_group), _mean_or_nan(current_per_group)
    evidence = gate_evidence(holdout_groups, new_scores, current_scores, new_per_group, current_per_group)
    gate_result = partial(GateResult, version=version, new_ndcg=new_ndcg, current_ndcg=current_ndcg, n_train=len(sizes_train),
                          n_holdout=len(sizes_holdout), evidence=evidence)
    if evidence is None:
        logger.warning("ranker gate: holdout has no positive labels, model %s not promoted", version)
        return gate_result(accepted=False, reason="holdout has no engaged candidates; log more feedback")
    z = evidence.paired_z
    ndcg_z = paired_z(new_per_group, current_per_group)
    described = f"{evidence.source.replace('_', ' ')}: {evidence.new:.4f} vs {evidence.current:.4f} over {evidence.comparisons}"
    if z < -GATE_MAX_WORSE_Z:
        logger.info("ranker gate: %s rejected against %s on %s (paired z %.2f)", version, current_version, described, z)
        return gate_result(accepted=False, reason=f"significantly worse than current on {described} (paired z {z:.2f} < -{GATE_MAX_WORSE_Z})")
    all_groups = list(train_groups) + list(holdout_groups)
    manifest = {
        "format": MANIFEST_FORMAT,
        "version": version,
        "feature_names": list(names),
        "strategies": list(strategies),
        "data_window": {
            "train": [min(g.timestamp for g in train_groups), max(g.timestamp for g in train_groups)],
            "holdout": [min(g.timestamp for g in holdout_groups), max(g.timestamp for g in holdout_groups)],
            "first": min(g.timestamp for g in all_groups),
            "last": max(g.timestamp for g in all_groups),
        },
        "metrics": {"holdout_ndcg@10": new_ndcg, "current_ndcg@10": current_ndcg, "current_version": current_version, "paired_z": ndcg_z,
                    "n_train_groups": len(sizes_train), "n_holdout_groups": len(sizes_holdout)},
        "gate": {"rule": GATE_RULE, "decision": "promoted", "evidence": evidence.source, "comparisons": evidence.comparisons,
                 "new": evidence.new, "current": evidence.current, "paired_z": z, "current_version": current_version},
        "training": {"seed": seed, "correction": correction,
                     "params": {k: v for k, v in params.items() if isinstance(v, (int, float, str, bool)) or v is None}},
        "libraries": {"lightgbm": package_version("lightgbm"), "numpy": np.__version__},
    }
    directory = Path(out_dir) / version
    save_model(booster, directory, manifest)
    logger.info("ranker gate: %s promoted against %s on %s (paired z %.2f), saved to %s", version, current_version, described, z, directory)
    return gate_result(accepted=True, reason=f"not significantly worse than current on {described} (paired z {z:.2f})", directory=directory)
