"""Propensities you can audit: every logged choice is recomputed from its logged draw and distribution,
the draws come from one generator per process that a model reload never touches, and seeds give each
process its own reproducible stream."""

from __future__ import annotations

import json

import numpy as np
from fastapi.testclient import TestClient
from logged import logged_lines

from contracts import choose_index
from services.app import build_app
from services.randomness import process_randomness
from services.registry import policy_from_directory


def _impressions(settings) -> list[dict]:
    lines = logged_lines(settings)
    return [json.loads(line) for line in lines if '"kind":"impression"' in line]


def test_every_logged_choice_follows_from_its_draw_across_model_reloads(settings, embedder):
    with TestClient(build_app(settings, embedder=embedder)) as client:
        pipeline = client.app.state.pipeline
        saved = settings.data_dir / "models" / "bandit" / "v"
        pipeline.policy.save(saved)
        for _ in range(30):
            pipeline.swap_policy(policy_from_directory(saved, settings))  # what the reloader does
            assert client.post("/search", json={"query": "calm jazz", "k": 3}).status_code == 200
    impressions = _impressions(settings)
    assert len(impressions) == 30
    for impression in impressions:
        names, probabilities = list(impression["distribution"]), list(impression["distribution"].values())
        assert names.index(impression["plan_name"]) == choose_index(probabilities, impression["draw"])
        assert impression["probability"] == impression["distribution"][impression["plan_name"]]
    draws = [impression["draw"] for impression in impressions]
    assert len(set(draws)) == 30, "a reload never restarts the stream: no draw repeats"
    assert len({impression["plan_name"] for impression in impressions}) > 1


def test_seed_unset_draws_from_entropy_and_a_set_seed_gives_each_worker_its_own_stream(settings):
    unset = settings.model_copy(update={"seed": None})
    first, second = process_randomness(unset, "serve"), process_randomness(unset, "serve")
    assert "OS entropy" in first.description
    assert first.generator.random() != second.generator.random()
    seeded = settings.model_copy(update={"seed": 0})
    again = [process_randomness(seeded, "serve").generator.random(4) for _ in range(2)]
    assert np.array_equal(again[0], again[1]), "0 counts as set: reproducible"
    other_worker = process_randomness(seeded.model_copy(update={"worker_id": 1}), "serve").generator.random(4)
    assert not np.array_equal(again[0], other_worker), "replicas never share a stream"
