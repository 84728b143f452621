"""Learning from clicks without their position bias, on synthetic pages whose truth is known: the
examination estimate from randomized swaps, and rankers that learn relevance rather than the logged order."""

from __future__ import annotations

import numpy as np
import pytest

from contracts import ConfigError
from ranker.train import ndcg_at_10
from ranker.unbiased import SwapEvidence, examination_from_swaps, fit_from_clicks

PAGE = 10


def _swap_pages(examination: np.ndarray, pages: int, rng: np.random.Generator) -> SwapEvidence:
    """Randomized pairs of two results of random relevance, clicked by position-based users."""
    pair = rng.integers(1, PAGE, size=pages)
    relevance = rng.uniform(0.1, 0.9, size=(pages, 2))
    upper = rng.random(pages) < examination[pair - 1] * relevance[:, 0]
    lower = rng.random(pages) < examination[pair] * relevance[:, 1]
    return SwapEvidence(pair, upper, lower)


def test_swaps_recover_the_examination_probabilities():
    truth = 1.0 / np.arange(1, PAGE + 1)
    estimate = examination_from_swaps(_swap_pages(truth, 200_000, np.random.default_rng(0)))
    np.testing.assert_allclose(estimate, truth, rtol=0.2)  # ratios chained over 9 pairs: errors add up
    assert estimate[0] == 1.0


def test_without_swaps_every_position_is_assumed_examined():
    empty = SwapEvidence(np.zeros(0, dtype=int), np.zeros(0, dtype=bool), np.zeros(0, dtype=bool))
    assert examination_from_swaps(empty).tolist() == [1.0] * PAGE


def _logged_clicks(rng: np.random.Generator, groups: int, eta: float = 1.0):
    """Pages ordered by a logging score that is mostly noise; relevance follows feature 0 only. Users
    examine position i with probability (1/i)**eta and click what they examine with its relevance."""
    features, clicks, positions, truth = [], [], [], []
    for _ in range(groups):
        relevance = rng.uniform(0, 1, PAGE)
        logging_score = 0.3 * relevance + rng.uniform(0, 1, PAGE)
        order = np.argsort(-logging_score)
        for position, item in enumerate(order, start=1):
            features.append([relevance[item] + rng.normal(0, 0.05), logging_score[item]])
            examined = rng.random() < (1.0 / position) ** eta
            clicks.append(int(examined and rng.random() < relevance[item] ** 2))
            positions.append(position)
            truth.append(int(relevance[item] > 0.7) + int(relevance[item] > 0.9))
    return np.asarray(features), np.asarray(clicks), np.asarray(positions), np.full(groups, PAGE), np.asarray(truth)


def test_corrected_rankers_learn_relevance_where_the_uncorrected_one_learns_the_logged_order():
    rng = np.random.default_rng(3)
    features, clicks, positions, sizes, _ = _logged_clicks(rng, 3000)
    truth_examination = 1.0 / np.arange(1, PAGE + 1)
    test_features, _, _, test_sizes, test_truth = _logged_clicks(np.random.default_rng(4), 500)
    scores = {}
    for method in ("none", "ipw", "position"):
        model = fit_from_clicks(features, clicks, positions, sizes, method, truth_examination, seed=1, rounds=100)
        scores[method] = ndcg_at_10(model.predict(test_features), test_truth, test_sizes)
    logging = ndcg_at_10(test_features[:, 1], test_truth, test_sizes)
    assert scores["ipw"] > scores["none"] + 0.01, scores
    assert scores["position"] > scores["none"] + 0.01, scores
    assert min(scores.values()) > logging, "every ranker beats the logging order"


def test_ipw_needs_the_examination_probabilities_and_methods_are_named():
    features, clicks, positions, sizes, _ = _logged_clicks(np.random.default_rng(0), 20)
    with pytest.raises(ConfigError, match="examination"):
        fit_from_clicks(features, clicks, positions, sizes, "ipw")
    with pytest.raises(ConfigError, match="method"):
        fit_from_clicks(features, clicks, positions, sizes, "dla")
