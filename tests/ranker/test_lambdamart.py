"""LambdaMART training, the promotion gate, save/load, and one nDCG check against a hand computation."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from contracts import ArtifactError, BadRequest, Candidate, ConfigError, EntityFacts, Hit, Query
from ranker import (
    LambdaMartRanker,
    Ranker,
    build_features,
    feature_names,
    rrf_from_features,
)
from ranker.train import (
    GATE_MAX_WORSE_Z,
    GATE_RULE,
    MIN_RANDOMIZED_COMPARISONS,
    TrainingGroup,
    fit,
    gate_evidence,
    ndcg_at_10,
    ndcg_at_10_per_group,
    paired_z,
    stack,
    train_and_gate,
)

STRATEGIES = ("lexical", "dense")


def synthetic_groups(n_groups: int, seed: int, start_time: float = 0.0) -> list[TrainingGroup]:
    """Retrievers rank at random; engagement depends on popularity (which fusion ignores)."""
    rng = np.random.default_rng(seed)
    groups = []
    for group in range(n_groups):
        query = Query(text=f"q{group}", normalized=f"q{group}")
        candidates, facts, labels = [], {}, []
        for rank in range(1, 21):
            entity_id = f"g{group}-e{rank}"
            provenance = {"lexical": Hit(entity_id, float(rng.random()), rank)}
            if rng.random() < 0.5:
                provenance["dense"] = Hit(entity_id, float(rng.random()), int(rng.integers(1, 21)))
            candidates.append(Candidate(entity_id, provenance))
            popularity = float(rng.random())
            facts[entity_id] = EntityFacts(entity_id, "track", f"title {rank}", popularity=popularity)
            labels.append(3 if popularity > 0.9 else 1 if popularity > 0.7 else 0)
        matrix = build_features(query, candidates, facts, STRATEGIES)
        groups.append(TrainingGroup(matrix, np.array(labels), timestamp=start_time + group))
    return groups


def test_gate_ndcg_agrees_with_ranx_on_random_groups():
    from ranx import Qrels, Run, evaluate

    rng = np.random.default_rng(3)
    sizes = rng.integers(1, 40, size=200)
    scores, labels = rng.random(int(sizes.sum())), rng.choice([0, 0, 0, 1, 2, 3], size=int(sizes.sum()))
    qrels, run, start = {}, {}, 0
    for group, size in enumerate(sizes):
        part = slice(start, start + int(size))
        start += int(size)
        relevant = {f"d{i}": int(label) for i, label in enumerate(labels[part]) if label > 0}
        if relevant:
            qrels[f"q{group:04d}"] = relevant
            run[f"q{group:04d}"] = {f"d{i}": float(score) for i, score in enumerate(scores[part])}
    expected = np.asarray(evaluate(Qrels(qrels), Run(run), "ndcg@10", return_mean=False))
    assert np.allclose(ndcg_at_10_per_group(scores, labels, sizes), expected, atol=1e-12)


def test_gate_ndcg_matches_hand_computation():
    scores = np.array([0.5, 0.9, 0.7, 0.1, 0.2])
    labels = np.array([3, 0, 1, 2, 0])
    # group 1 ranks d1(0), d2(1), d0(3); group 2 ranks d1(0), d0(2)
    expected_1 = (1 / math.log2(3) + 3 / math.log2(4)) / (3 / math.log2(2) + 1 / math.log2(3))
    expected_2 = (2 / math.log2(3)) / (2 / math.log2(2))
    assert ndcg_at_10(scores, labels, np.array([3, 2])) == pytest.approx((expected_1 + expected_2) / 2)
    assert math.isnan(ndcg_at_10(scores[:2], np.array([0, 0]), np.array([2])))


def test_lambdamart_beats_fusion_on_a_learnable_task():
    train, holdout = synthetic_groups(150, seed=1), synthetic_groups(50, seed=2, start_time=1000)
    model = fit(*stack(train), seed=0)
    x, y, sizes = stack(holdout)
    trained = ndcg_at_10(model.predict(x), y, sizes)
    fusion = ndcg_at_10(rrf_from_features(x, STRATEGIES), y, sizes)
    assert trained > fusion + 0.2
    assert np.array_equal(model.predict(x), fit(*stack(train), seed=0).predict(x))  # deterministic


def test_gate_accepts_a_better_model_and_round_trips(tmp_path):
    train, holdout = synthetic_groups(150, seed=1), synthetic_groups(50, seed=2, start_time=1000)
    result = train_and_gate(train, holdout, None, tmp_path, seed=0, strategies=STRATEGIES)
    assert result.accepted and result.new_ndcg > result.current_ndcg
    assert (result.n_train, result.n_holdout) == (150, 50)
    assert result.directory == tmp_path / result.version and result.version.startswith("lgbm-")
    manifest = json.loads((result.directory / "manifest.json").read_text())
    assert manifest["feature_names"] == list(feature_names(STRATEGIES))
    assert manifest["data_window"]["last"] == 1049.0
    ranker = LambdaMartRanker.load(result.directory, strategies=STRATEGIES)
    assert isinstance(ranker, Ranker) and ranker.version == result.version
    x, _, _ = stack(holdout)
    expected = fit(*stack(train), seed=0).predict(x)
    assert np.array_equal(ranker.score_features(x), expected)
    query = Query(text="t", normalized="title 3")
    candidates = [Candidate(f"e{i}", {"lexical": Hit(f"e{i}", 1.0, i + 1)}) for i in range(5)]
    facts = {f"e{i}": EntityFacts(f"e{i}", "track", f"title {i}", popularity=i / 5) for i in range(5)}
    scored = ranker.rank(query, candidates, facts)
    assert [s.score for s in scored] == sorted((s.score for s in scored), reverse=True)
    assert scored[0].entity_id == "e4"  # most popular
    assert np.array_equal(np.array([s.features for s in scored]), build_features(query, [c for s in scored for c in candidates if c.entity_id == s.entity_id], facts, STRATEGIES))


def test_gate_rejects_a_worse_model(tmp_path):
    train, holdout = synthetic_groups(150, seed=1), synthetic_groups(50, seed=2, start_time=1000)
    good = train_and_gate(train, holdout, None, tmp_path / "good", seed=0, strategies=STRATEGIES)
    current = LambdaMartRanker.load(good.directory)
    rng = np.random.default_rng(3)
    shuffled = [TrainingGroup(g.features, rng.permutation(g.labels), g.timestamp) for g in train]
    result = train_and_gate(shuffled, holdout, current.score_features, tmp_path / "new", seed=0, strategies=STRATEGIES, current_version=current.version)
    assert not result.accepted and result.new_ndcg < result.current_ndcg
    assert result.current_ndcg == pytest.approx(good.new_ndcg)
    assert result.directory is None and not (tmp_path / "new").exists()


def test_load_errors_say_what_to_do(tmp_path):
    with pytest.raises(ArtifactError, match="missing"):
        LambdaMartRanker.load(tmp_path / "none")
    result = train_and_gate(synthetic_groups(30, seed=1), synthetic_groups(10, seed=2), None, tmp_path, seed=0, strategies=STRATEGIES)
    with pytest.raises(ArtifactError, match="configured strategies"):
        LambdaMartRanker.load(result.directory, strategies=("lexical", "dense", "memory"))
    manifest_path = result.directory / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["feature_names"] = manifest["feature_names"][:-1] + ["old_feature"]
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="retrain"):
        LambdaMartRanker.load(result.directory)
    manifest_path.write_text("{")
    with pytest.raises(ArtifactError, match="manifest"):
        LambdaMartRanker.load(result.directory)


def test_paired_z_rejects_only_a_consistent_loss():
    current = np.array([1.0, 0.5, 0.8, 0.6])
    assert paired_z(current, current) == 0.0
    assert paired_z(current - 0.1, current) == -math.inf
    assert -2.0 < paired_z(np.array([0.9, 0.6, 0.7, 0.6]), current) < 0.0
    with pytest.raises(BadRequest, match="current"):
        paired_z(current, current[:3])


def test_ndcg_per_group_skips_groups_without_positives():
    scores = np.array([0.9, 0.1, 0.5, 0.4, 0.2])
    labels = np.array([0, 1, 0, 0, 0])
    per_group = ndcg_at_10_per_group(scores, labels, np.array([2, 3]))
    assert per_group.shape == (1,) and per_group[0] == pytest.approx(1 / math.log2(3))
    assert ndcg_at_10_per_group(scores[:2], np.array([0, 0]), np.array([2])).shape == (0,)


def test_a_truncated_model_file_is_an_artifact_error_not_a_crash(tmp_path):
    result = train_and_gate(synthetic_groups(30, seed=1), synthetic_groups(10, seed=2), None, tmp_path, seed=0, strategies=STRATEGIES)
    model_file = result.directory / "model.txt"
    manifest = json.loads((result.directory / "manifest.json").read_text())
    assert len(manifest["model_sha256"]) == 64
    LambdaMartRanker.load(result.directory)
    model_file.write_bytes(model_file.read_bytes()[: model_file.stat().st_size // 2])
    with pytest.raises(ArtifactError, match="does not match the checksum in its manifest; the copy is corrupt or partial"):
        LambdaMartRanker.load(result.directory)


def test_the_trained_model_depends_on_the_thread_count_given_not_on_the_machine():
    train = synthetic_groups(60, seed=3)
    one = fit(*stack(train), seed=0, threads=1).booster_.model_to_string()
    assert one == fit(*stack(train), seed=0, threads=1).booster_.model_to_string()
    assert fit(*stack(train), seed=0).booster_.model_to_string() == one, "the default is one thread, whatever the CPUs"
    with pytest.raises(ConfigError, match="^threads: "):
        fit(*stack(train), seed=0, threads=0)


def test_randomized_preference_is_the_pair_result_users_engaged_when_they_engaged_one():
    features = np.zeros((4, 1))
    positions = np.array([1, 2, 3, 0])
    assert TrainingGroup(features, np.array([0, 0, 1, 0]), 0.0, positions, pair=2).randomized_preference() == (2, 1)
    assert TrainingGroup(features, np.array([0, 3, 0, 0]), 0.0, positions, pair=2).randomized_preference() == (1, 2)
    assert TrainingGroup(features, np.array([0, 1, 1, 0]), 0.0, positions, pair=2).randomized_preference() is None, "both engaged"
    assert TrainingGroup(features, np.array([1, 0, 0, 0]), 0.0, positions, pair=2).randomized_preference() is None, "neither"
    assert TrainingGroup(features, np.array([0, 1, 0, 0]), 0.0, positions).randomized_preference() is None, "no randomized pair"
    assert TrainingGroup(features, np.array([0, 1, 0, 0]), 0.0, None, pair=2).randomized_preference() is None, "no positions"


def _pair_groups(count: int) -> list[TrainingGroup]:
    """Groups of two rows shown at 1 and 2 in random order, the second row engaged."""
    return [TrainingGroup(np.array([[0.0], [1.0]]), np.array([0, 1]), float(i), np.array([1, 2]), pair=1) for i in range(count)]


def _evidence(groups: list[TrainingGroup], new_scores: np.ndarray, current_scores: np.ndarray):
    _, labels, sizes = stack(groups)
    return gate_evidence(groups, new_scores, current_scores, ndcg_at_10_per_group(new_scores, labels, sizes),
                         ndcg_at_10_per_group(current_scores, labels, sizes))


def test_the_gate_decides_on_randomized_pairs_once_there_are_enough_and_on_holdout_clicks_before():
    agrees, disagrees = np.tile([0.0, 1.0], MIN_RANDOMIZED_COMPARISONS), np.tile([1.0, 0.0], MIN_RANDOMIZED_COMPARISONS)
    enough = _evidence(_pair_groups(MIN_RANDOMIZED_COMPARISONS), agrees, disagrees)
    assert enough is not None and enough.source == "randomized_pairs"
    assert (enough.comparisons, enough.new, enough.current, enough.paired_z) == (MIN_RANDOMIZED_COMPARISONS, 1.0, -1.0, math.inf)
    few = MIN_RANDOMIZED_COMPARISONS - 1
    before = _evidence(_pair_groups(few), agrees[: 2 * few], disagrees[: 2 * few])
    assert before is not None and before.source == "holdout_clicks" and before.comparisons == few
    assert before.new == pytest.approx(1.0) and before.current == pytest.approx(1 / math.log2(3))
    unpaired = [TrainingGroup(g.features, g.labels, g.timestamp, g.positions) for g in _pair_groups(40)]
    assert _evidence(unpaired, agrees[:80], disagrees[:80]).source == "holdout_clicks", "no randomized pair, no pair evidence"
    assert _evidence([TrainingGroup(np.zeros((2, 1)), np.array([0, 0]))], np.zeros(2), np.zeros(2)) is None


def _served(groups: list[TrainingGroup], score, seed: int, randomize: float) -> list[TrainingGroup]:
    """The pages a serving ranker (``score``) made of ``groups``: its top 10, on ``randomize`` of them one
    adjacent pair in a coin's order, clicked by position-based users (position i examined with probability
    1/i, an examined result engaged with its grade when it has one); results below the page unseen."""
    rng = np.random.default_rng(seed)
    served = []
    for group in groups:
        order = np.argsort(-score(group.features), kind="stable")
        positions = np.zeros(len(order), dtype=np.int64)
        positions[order[:10]] = np.arange(1, 11)
        pair = 0
        if rng.random() < randomize:
            pair = int(rng.integers(1, 10))
            if rng.random() < 0.5:
                upper, lower = np.flatnonzero(positions == pair)[0], np.flatnonzero(positions == pair + 1)[0]
                positions[upper], positions[lower] = pair + 1, pair
        examined = (positions > 0) & (rng.random(len(positions)) < 1.0 / np.maximum(positions, 1))
        served.append(TrainingGroup(group.features, np.where(examined, group.labels, 0), group.timestamp, positions, pair))
    return served


def test_a_clearly_better_ranker_is_promoted_on_randomized_pairs_and_a_worse_one_rejected(tmp_path):
    """The serving ranker is bad (trained on shuffled labels); 150 engaged impressions of its pages train a
    new one, and 300 later impressions, every one with a randomized pair, are the holdout."""
    truth_train, truth_holdout = synthetic_groups(150, seed=1), synthetic_groups(300, seed=2, start_time=1000)
    rng = np.random.default_rng(3)
    bad = train_and_gate([TrainingGroup(g.features, rng.permutation(g.labels), g.timestamp) for g in truth_train],
                         truth_train[:50], None, tmp_path / "bad", seed=0, strategies=STRATEGIES)
    serving = LambdaMartRanker.load(bad.directory)
    train = [g for g in _served(truth_train, serving.score_features, seed=4, randomize=0.2) if (g.labels > 0).any()]
    holdout = _served(truth_holdout, serving.score_features, seed=5, randomize=1.0)
    better = train_and_gate(train, holdout, serving.score_features, tmp_path / "new", seed=0, strategies=STRATEGIES,
                            current_version=serving.version)
    assert better.accepted and better.evidence is not None and better.evidence.source == "randomized_pairs"
    assert better.evidence.comparisons >= MIN_RANDOMIZED_COMPARISONS and better.evidence.new > better.evidence.current
    gate = json.loads((better.directory / "manifest.json").read_text())["gate"]
    assert (gate["decision"], gate["evidence"], gate["current_version"]) == ("promoted", "randomized_pairs", serving.version)
    assert gate["comparisons"] == better.evidence.comparisons and gate["rule"] == GATE_RULE

    promoted = LambdaMartRanker.load(better.directory)
    shuffled = [TrainingGroup(g.features, rng.permutation(g.labels), g.timestamp, g.positions, g.pair) for g in train]
    worse = train_and_gate(shuffled, holdout, promoted.score_features, tmp_path / "worse", seed=0, strategies=STRATEGIES,
                           current_version=promoted.version)
    assert not worse.accepted and worse.evidence is not None and worse.evidence.source == "randomized_pairs"
    assert worse.evidence.paired_z < -2.0 and "randomized pairs" in worse.reason


def _biased_holdout(count: int, seed: int) -> tuple[list[TrainingGroup], np.ndarray, np.ndarray]:
    """Engaged impressions of a noisy serving ranker's pages, each with one randomized pair, clicked by users
    who examine position i with probability i**-2 and engage relevant results only a little more often
    (0.7) than others (0.3); with the scores of a ranker that knows relevance and of the serving one."""
    rng = np.random.default_rng(seed)
    groups, truth, serving = [], [], []
    while len(groups) < count:
        relevance = (rng.random(20) < 0.3).astype(float)
        scores = relevance + rng.normal(0.0, 1.5, 20)
        positions = np.zeros(20, dtype=np.int64)
        positions[np.argsort(-scores, kind="stable")[:10]] = np.arange(1, 11)
        pair = int(rng.integers(1, 10))
        if rng.random() < 0.5:
            upper, lower = np.flatnonzero(positions == pair)[0], np.flatnonzero(positions == pair + 1)[0]
            positions[upper], positions[lower] = pair + 1, pair
        examined = (positions > 0) & (rng.random(20) < np.maximum(positions, 1) ** -2.0)
        labels = (examined & (rng.random(20) < np.where(relevance > 0, 0.7, 0.3))).astype(int)
        if labels.any():
            groups.append(TrainingGroup(relevance[:, None], labels, float(len(groups)), positions, pair))
            truth.append(relevance + rng.normal(0.0, 0.01, 20))
            serving.append(scores)
    return groups, np.concatenate(truth), np.concatenate(serving)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_clicks_on_the_serving_rankers_pages_reject_a_better_ranker_and_the_randomized_pairs_do_not(seed):
    holdout, better, serving = _biased_holdout(300, seed)
    _, labels, sizes = stack(holdout)
    clicks_z = paired_z(ndcg_at_10_per_group(better, labels, sizes), ndcg_at_10_per_group(serving, labels, sizes))
    assert clicks_z < -GATE_MAX_WORSE_Z, "users clicked where the serving ranker put things: on clicks alone it looks best"
    evidence = _evidence(holdout, better, serving)
    assert evidence is not None and evidence.source == "randomized_pairs" and evidence.comparisons >= MIN_RANDOMIZED_COMPARISONS
    assert evidence.paired_z > -GATE_MAX_WORSE_Z, "on the pairs the better ranker is not worse: the gate promotes it"
    assert evidence.new > evidence.current, "it agrees with the users' choice more often than the serving ranker"
