from __future__ import annotations

import numpy as np
import pytest

from contracts import Candidate, ConfigError, EntityFacts, Hit, Query, Slot
from ranker import (
    FEATURE_NAMES,
    FusionRanker,
    Ranker,
    build_features,
    feature_names,
    rrf_from_features,
)

STRATEGIES = ("lexical", "dense", "memory")
QUERY = Query(text="Hey Jude", normalized="hey jude")
CANDIDATES = [
    Candidate("t1", {"lexical": Hit("t1", 12.0, 3), "dense": Hit("t1", 0.8, 1)}),
    Candidate("t2", {"lexical": Hit("t2", 15.0, 1)}),
    Candidate("t3", {"memory": Hit("t3", 1.5, 2), "explore": Hit("t3", 0.1, 1)}),
    Candidate("t4", {"dense": Hit("t4", 0.7, 2)}),
]
FACTS = {
    "t1": EntityFacts("t1", "track", "Hey Jude", artist="The Beatles", genres=("rock",), popularity=0.9),
    "t2": EntityFacts("t2", "playlist", "Jude's mix", genres=("Hey",), moods=("calm",), popularity=0.2),
    "t3": EntityFacts("t3", "artist", "Jude", artist="Jude", popularity=0.4),
}


def test_feature_width_and_names():
    matrix = build_features(QUERY, CANDIDATES, FACTS, STRATEGIES)
    names = feature_names(STRATEGIES)
    assert matrix.shape == (4, len(names))
    assert len(set(names)) == len(names)
    assert build_features(QUERY, CANDIDATES, FACTS, ("lexical", "dense", "memory", "explore")).shape[1] == len(FEATURE_NAMES)
    assert build_features(QUERY, [], FACTS, STRATEGIES).shape == (0, len(names))


def test_feature_values():
    row = dict(zip(feature_names(STRATEGIES), build_features(QUERY, CANDIDATES, FACTS, STRATEGIES)[0], strict=True))
    assert (row["lexical:found"], row["lexical:score"], row["lexical:inverse_rank"]) == (1.0, 12.0, 1 / 3)
    assert (row["dense:found"], row["dense:inverse_rank"], row["memory:found"]) == (1.0, 1.0, 0.0)
    assert row["n_strategies_found"] == 2.0
    assert (row["popularity"], row["type:track"], row["type:artist"]) == (0.9, 1.0, 0.0)
    assert (row["title_exact_match"], row["title_token_overlap"], row["artist_token_overlap"]) == (1.0, 1.0, 0.0)
    assert row["query_token_count"] == 2.0
    t3 = dict(zip(feature_names(STRATEGIES), build_features(QUERY, CANDIDATES, FACTS, STRATEGIES)[2], strict=True))
    assert t3["n_strategies_found"] == 1.0  # "explore" is not among the strategies
    assert (t3["title_exact_match"], t3["title_token_overlap"], t3["artist_token_overlap"]) == (0.0, 0.5, 0.5)
    t2 = dict(zip(feature_names(STRATEGIES), build_features(QUERY, CANDIDATES, FACTS, STRATEGIES)[1], strict=True))
    assert t2["tags_token_overlap"] == 0.5 and t2["type:playlist"] == 1.0
    t4 = build_features(QUERY, CANDIDATES, FACTS, STRATEGIES)[3]  # no facts: entity columns are zero
    assert t4[feature_names(STRATEGIES).index("popularity")] == 0.0


def test_history_features_carry_the_candidates_counts_for_this_query():
    shown = [Candidate("t1", {"lexical": Hit("t1", 12.0, 1)}, impressions=4.0, clicks=1.0), CANDIDATES[1]]
    names = feature_names(STRATEGIES)
    matrix = build_features(QUERY, shown, FACTS, STRATEGIES)
    t1, t2 = (dict(zip(names, row, strict=True)) for row in matrix)
    assert (t1["history:impressions"], t1["history:clicks"], t1["history:ctr"]) == (4.0, 1.0, 0.2)
    assert (t2["history:impressions"], t2["history:clicks"], t2["history:ctr"]) == (0.0, 0.0, 0.0)
    assert names[-3:] == ("history:impressions", "history:clicks", "history:ctr")


def test_rrf_score_is_pinned_and_ties_break_by_id():
    ranker = FusionRanker(STRATEGIES)
    assert isinstance(ranker, Ranker) and ranker.version == "rrf-60"
    scored = ranker.rank(QUERY, CANDIDATES, FACTS)
    score_by_id = {item.entity_id: item.score for item in scored}
    assert score_by_id["t1"] == pytest.approx(1 / (60 + 3) + 1 / (60 + 1))
    assert score_by_id["t2"] == pytest.approx(1 / (60 + 1))
    assert score_by_id["t3"] == pytest.approx(1 / (60 + 2))
    assert [item.entity_id for item in scored] == ["t1", "t2", "t3", "t4"]  # t3 and t4 tie at 1/62
    assert all(len(item.features) == len(feature_names(STRATEGIES)) for item in scored)
    matrix = np.array([item.features for item in scored])
    assert rrf_from_features(matrix, STRATEGIES) == pytest.approx([item.score for item in scored])


def test_strategies_must_be_unique_and_non_empty():
    for bad in ((), ("lexical", "lexical")):
        with pytest.raises(ConfigError, match="^strategies: "):
            build_features(QUERY, CANDIDATES, FACTS, bad)


def test_slot_features_say_which_recognized_slots_a_candidate_matches():
    query = Query(
        text="beatles rock song jude calm",
        normalized="beatles rock song jude calm",
        slots=(Slot("artist", "The Beatles", "beatles"), Slot("genre", "Rock", "rock"),
               Slot("type", "track", "song"), Slot("title", "Jude's Mix", "jude s mix"), Slot("mood", "calm", "calm")),
    )
    rows = build_features(query, CANDIDATES, FACTS, STRATEGIES)
    names = feature_names(STRATEGIES)
    slot_columns = [names.index(f"slot:{kind}_match") for kind in ("artist", "title", "genre", "mood", "type")]
    assert rows[0, slot_columns].tolist() == [1.0, 0.0, 1.0, 0.0, 1.0]  # Beatles rock track
    assert rows[1, slot_columns].tolist() == [0.0, 1.0, 0.0, 1.0, 0.0]  # "Jude's mix" playlist, calm
    assert rows[2, slot_columns].tolist() == [0.0, 0.0, 0.0, 0.0, 0.0]  # the artist Jude
    assert rows[3, slot_columns].tolist() == [0.0, 0.0, 0.0, 0.0, 0.0]  # no facts
    no_slots = build_features(QUERY, CANDIDATES, FACTS, STRATEGIES)
    assert not no_slots[:, slot_columns].any()


def test_an_artist_entity_matches_its_own_artist_slot():
    query = Query(text="jude", normalized="jude", slots=(Slot("artist", "Jude", "jude"),))
    row = dict(zip(feature_names(STRATEGIES), build_features(query, CANDIDATES, FACTS, STRATEGIES)[2], strict=True))
    assert row["slot:artist_match"] == 1.0
