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
    TrainingGroup,
    fit,
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
