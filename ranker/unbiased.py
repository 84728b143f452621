"""Learning to rank from clicks without their position bias (offline; serving never imports this module).

Users click what they examine, and they examine the top of a page more: a ranker trained on raw clicks
learns the order of the pages it was trained on. Two corrections, both fed with the position each
candidate was shown at:

- **Inverse-propensity weighting** (Joachims, Swaminathan and Schnabel, WSDM 2017; Wang et al., WSDM
  2018): a lambdarank objective whose pairs (clicked ``i`` above unclicked ``j``) are weighted by
  ``1 / examination(position_i)``. The examination probabilities come from randomized interventions
  (``examination_from_swaps``), not from the clicks the ranker chose.
- **LightGBM's position-aware lambdarank** (``Dataset(position=...)``, after Hu et al., "Unbiased
  LambdaMART", WWW 2019): the position bias is learned jointly with the ranker from the same clicks.

Only what was shown is a training example: a candidate below the page was never examined, so it is not
a negative.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import lightgbm
import numpy as np

from contracts import BadRequest, ConfigError

METHODS = ("none", "ipw", "position")
MIN_EXAMINATION = 0.02  # a propensity floor: one click at a rarely examined position must not dominate


@dataclass(frozen=True, slots=True)
class SwapEvidence:
    """Randomized pages: on each, the results at positions ``pair`` and ``pair + 1`` (1-based) were put in
    random order (swapped with probability 1/2), and whether each of the two positions was clicked."""

    pair: np.ndarray  # (n,) upper position of the randomized pair
    clicked_upper: np.ndarray  # (n,) bool: position ``pair`` was clicked
    clicked_lower: np.ndarray  # (n,) bool: position ``pair + 1`` was clicked


def examination_from_swaps(evidence: SwapEvidence, depth: int = 10, prior_clicks: float = 1.0) -> np.ndarray:
    """Examination probability per position ``1..depth`` relative to position 1.

    A randomized pair puts either of its two results at either position with probability 1/2, so the
    results' relevance is the same in expectation at both: the ratio of clicks at ``k + 1`` to clicks at
    ``k`` over the pages that randomized pair ``k`` estimates ``examination(k + 1) / examination(k)``
    (the intervention harvesting of Agarwal et al., WSDM 2019, in its simplest form). Ratios are chained
    from position 1; ``prior_clicks`` pseudo-clicks on each side keep a pair with little evidence near 1.
    A pair never randomized repeats the ratio above it."""
    if depth < 1:
        raise ConfigError.about("depth", f"expected >= 1 positions, got {depth}")
    pair = np.asarray(evidence.pair, dtype=int)
    upper = np.asarray(evidence.clicked_upper, dtype=float)
    lower = np.asarray(evidence.clicked_lower, dtype=float)
    if not (len(pair) == len(upper) == len(lower)):
        raise BadRequest("evidence", f"pair, clicked_upper and clicked_lower differ in length ({len(pair)}, {len(upper)}, {len(lower)})")
    examination = np.ones(depth)
    ratio = 1.0
    for k in range(1, depth):
        on_pair = pair == k
        if on_pair.any():
            ratio = float((lower[on_pair].sum() + prior_clicks) / (upper[on_pair].sum() + prior_clicks))
        examination[k] = examination[k - 1] * min(ratio, 1.0)
    return np.clip(examination, MIN_EXAMINATION, 1.0)


def _padded(values: np.ndarray, group_sizes: np.ndarray, fill: float) -> np.ndarray:
    width = int(group_sizes.max())
    out = np.full((len(group_sizes), width), fill, dtype=np.float64)
    starts = np.concatenate([[0], np.cumsum(group_sizes)[:-1]])
    for row, (start, size) in enumerate(zip(starts, group_sizes, strict=True)):
        out[row, :size] = values[start:start + size]
    return out


def ipw_lambdarank(
    clicks: np.ndarray, propensities: np.ndarray, group_sizes: np.ndarray, sigma: float = 1.0
) -> Callable[[np.ndarray, lightgbm.Dataset], tuple[np.ndarray, np.ndarray]]:
    """A LightGBM objective: lambdarank on clicks (nDCG deltas by the current scores), each pair of a
    clicked ``i`` and an unclicked ``j`` of the same group weighted by ``1 / propensities[i]``."""
    group_sizes = np.asarray(group_sizes, dtype=int)
    mask = _padded(np.ones(len(clicks)), group_sizes, 0.0) > 0
    clicked = _padded(np.asarray(clicks, dtype=float), group_sizes, 0.0) > 0
    weight = 1.0 / _padded(np.maximum(np.asarray(propensities, dtype=float), MIN_EXAMINATION), group_sizes, 1.0)
    pairs = clicked[:, :, None] & ~clicked[:, None, :] & mask[:, :, None] & mask[:, None, :]
    ideal = np.zeros(len(group_sizes))
    counts = clicked.sum(axis=1)
    for count in np.unique(counts):
        ideal[counts == count] = (1.0 / np.log2(np.arange(2, int(count) + 2))).sum() if count else 1.0
    flat_index = mask.ravel()

    def objective(predictions: np.ndarray, dataset: lightgbm.Dataset) -> tuple[np.ndarray, np.ndarray]:
        scores = np.where(mask, _padded(predictions, group_sizes, 0.0), -np.inf)
        order = np.argsort(-scores, axis=1, kind="stable")
        ranks = np.empty_like(order)
        np.put_along_axis(ranks, order, np.arange(scores.shape[1])[None, :].repeat(len(scores), 0), axis=1)
        discount = 1.0 / np.log2(ranks + 2.0)
        delta = np.abs(discount[:, :, None] - discount[:, None, :]) / ideal[:, None, None]
        finite = np.where(mask, scores, 0.0)
        rho = 1.0 / (1.0 + np.exp(np.clip(sigma * (finite[:, :, None] - finite[:, None, :]), -50, 50)))
        lam = np.where(pairs, sigma * rho * delta * weight[:, :, None], 0.0)
        hess_pairs = np.where(pairs, sigma * sigma * rho * (1.0 - rho) * delta * weight[:, :, None], 0.0)
        gradient = -lam.sum(axis=2) + lam.sum(axis=1)
        hessian = hess_pairs.sum(axis=2) + hess_pairs.sum(axis=1)
        return gradient.ravel()[flat_index], np.maximum(hessian.ravel()[flat_index], 1e-9)

    return objective


TREE_PARAMS = {"learning_rate": 0.05, "num_leaves": 31, "min_data_in_leaf": 5, "deterministic": True,
               "force_row_wise": True, "verbose": -1}


def fit_from_clicks(
    features: np.ndarray,
    clicks: np.ndarray,
    positions: np.ndarray,
    group_sizes: np.ndarray,
    method: str,
    examination: np.ndarray | None = None,
    seed: int = 0,
    threads: int = 1,
    rounds: int = 200,
) -> lightgbm.Booster:
    """A ranker trained on shown results only (``positions`` 1-based, as shown) with their graded
    engagement (``clicks``: 0 none, higher is better; ``ipw`` uses clicked or not), and ``method``: ``none`` (plain lambdarank on clicks), ``ipw`` (``examination`` per position, from
    ``examination_from_swaps``) or ``position`` (LightGBM learns the position bias)."""
    if method not in METHODS:
        raise ConfigError.about("method", f"expected one of {', '.join(METHODS)}, got {method!r}")
    positions = np.asarray(positions, dtype=int)
    grades = np.asarray(clicks)
    if not (len(features) == len(grades) == len(positions) == int(np.sum(group_sizes))):
        raise BadRequest("group_sizes", f"features, clicks and positions have {len(features)}, {len(grades)} and {len(positions)} rows; "
                         f"group_sizes add up to {int(np.sum(group_sizes))}: one row per shown result")
    if positions.min(initial=1) < 1:
        raise BadRequest("positions", "positions are 1-based (the first result is 1)")
    params: dict[str, Any] = {**TREE_PARAMS, "seed": seed, "num_threads": threads}
    labels = (grades > 0).astype(np.int32)
    if method == "ipw":
        if examination is None:
            raise ConfigError.about("examination", "ipw needs the examination probability per position (examination_from_swaps)")
        depth = len(examination)
        propensities = np.asarray(examination, dtype=float)[np.minimum(positions, depth) - 1]
        params["objective"] = ipw_lambdarank(labels, propensities, np.asarray(group_sizes, dtype=int))
        dataset = lightgbm.Dataset(features, label=labels, group=group_sizes, free_raw_data=False)
        return lightgbm.train(params, dataset, num_boost_round=rounds)
    params["objective"] = "lambdarank"  # graded: a play counts more than a click, as in the naive ranker
    dataset = lightgbm.Dataset(features, label=np.maximum(grades, 0).astype(np.int32), group=group_sizes,
                               position=positions - 1 if method == "position" else None, free_raw_data=False)
    return lightgbm.train(params, dataset, num_boost_round=rounds)
