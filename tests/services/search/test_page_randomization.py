"""The randomized part of each page: on LTRR_RANDOMIZE_PAGES of the pages two adjacent results are shown
in random order, logged with the pair, the coin and the probability; training rows keep the position
every candidate was shown at, and a ranker trained on the shown results says how in its manifest."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fastapi.testclient import TestClient
from logged import logged_lines

from contracts import BadRequest
from contracts.events import ImpressionEvent
from ranker.train import TrainingGroup, train_and_gate
from services.app import build_app


def test_every_randomized_page_logs_its_pair_and_shows_it_in_the_logged_order(settings, embedder):
    randomized = settings.model_copy(update={"randomize_pages": 1.0})
    with TestClient(build_app(randomized, embedder=embedder)) as client:
        bodies = [client.post("/search", json={"query": query, "k": 10}).json() for query in ("jazz", "rock", "calm piano", "happy pop") * 10]
    impressions = [ImpressionEvent.from_json(json.loads(line)) for line in logged_lines(randomized)]
    impressions = [event for event in impressions if event.kind == "impression"]
    assert len(impressions) == len(bodies) == 40
    swapped = 0
    for body, event in zip(bodies, impressions, strict=True):
        assert event.request_id == body["request_id"]
        assert event.randomized is not None and 1 <= event.randomized.pair < len(event.page)
        assert event.randomized.probability == pytest.approx(1.0 / (len(event.page) - 1))
        ranked = [candidate.entity_id for candidate in event.candidates[: len(event.page)]]
        shown = [item.entity_id for item in event.page]
        assert shown == [item["id"] for item in body["results"]], "the response shows the logged page"
        pair = event.randomized.pair
        expected = list(ranked)
        if event.randomized.swapped:
            expected[pair - 1], expected[pair] = expected[pair], expected[pair - 1]
            swapped += 1
        assert shown == expected, "the ranker's order, with exactly the logged pair exchanged when the coin said so"
    assert 8 <= swapped <= 32, "a fair coin"


def test_pages_are_left_alone_when_randomization_is_off(settings, embedder):
    plain = settings.model_copy(update={"randomize_pages": 0.0})
    with TestClient(build_app(plain, embedder=embedder)) as client:
        for _ in range(10):
            assert client.post("/search", json={"query": "jazz", "k": 10}).status_code == 200
    impressions = [json.loads(line) for line in logged_lines(plain)]
    assert all("randomized" not in event for event in impressions if event["kind"] == "impression")


@pytest.mark.parametrize("randomized, field", [({"pair": 0, "swapped": True, "probability": 0.1}, "randomized.pair"),
                                               ({"pair": 1, "swapped": "yes", "probability": 0.1}, "randomized.swapped"),
                                               ({"pair": 1, "swapped": False, "probability": 0}, "randomized.probability")])
def test_a_logged_randomization_is_checked_by_field(settings, embedder, randomized, field):
    with TestClient(build_app(settings, embedder=embedder)) as client:
        client.post("/search", json={"query": "jazz", "k": 5})
    record = next(json.loads(line) for line in logged_lines(settings) if json.loads(line)["kind"] == "impression")
    record["randomized"] = randomized
    with pytest.raises(BadRequest) as error:
        ImpressionEvent.from_json(record)
    assert error.value.field == field


def _clicked_groups(rng: np.random.Generator, count: int) -> list[TrainingGroup]:
    groups = []
    for index in range(count):
        features = rng.normal(size=(15, 4))
        positions = np.array(list(range(1, 11)) + [0] * 5)
        labels = ((features[:, 0] > 0.8) & (positions > 0) & (positions <= 5)).astype(float)
        labels[0] = max(labels[0], 1.0)
        groups.append(TrainingGroup(features, labels, float(index), positions))
    return groups


def test_a_ranker_trained_on_shown_results_records_its_correction(tmp_path):
    groups = _clicked_groups(np.random.default_rng(0), 200)
    strategies = ("lexical",)
    from ranker.features import feature_names

    width = len(feature_names(strategies))
    padded = [TrainingGroup(np.hstack([g.features, np.zeros((len(g.labels), width - 4))]), g.labels, g.timestamp, g.positions) for g in groups]
    result = train_and_gate(padded[:160], padded[160:], None, tmp_path, seed=1, strategies=strategies, correction="position")
    manifest = json.loads((tmp_path / result.version / "manifest.json").read_text())
    assert manifest["training"]["correction"] == "position"
    assert result.n_train == 160


def test_training_rows_keep_shown_positions_and_old_rows_still_load():
    from services.ingest.rows import TrainingRow
    from services.ingest.training import load_groups

    features = tuple((float(i), 0.0) for i in range(70))
    labels = tuple(1 if i == 60 else 0 for i in range(70))
    positions = tuple(i + 1 if i < 65 else 0 for i in range(70))  # a 65-result page, 5 logged below it
    new = TrainingRow("r1", 1.0, "rrf-60", features, labels, positions).to_line()
    old = TrainingRow("r0", 0.0, "rrf-60", features, labels).to_line()
    assert "positions" not in old
    old_group, new_group = load_groups([old, new], width=2)
    assert old_group.positions is None and len(old_group.labels) == 51, "old rows: engaged + the first 50 others"
    assert sorted(new_group.positions.tolist()) == list(range(1, 66)), "all 65 shown results kept (not only 50 negatives)"
    shown = new_group.shown()
    assert shown.positions.tolist() == list(range(1, 66)), "every shown result, in page order; nothing below the page"
    assert shown.labels[60] == 1, "the engaged result at position 61"
    assert (old_group.pair, new_group.pair) == (0, 0)
    randomized = TrainingRow("r2", 2.0, "rrf-60", features, labels, positions, pair=60).to_line()
    (group,) = load_groups([randomized], width=2)
    assert group.pair == 60 and group.randomized_preference() == (60, 59), "the engaged result at 61 beat the one at 60"
    shown = group.shown()
    assert shown.positions[list(shown.randomized_preference())].tolist() == [61, 60], "the same pair once only shown rows are kept"
