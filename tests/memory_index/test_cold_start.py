from __future__ import annotations

from memory_index import EntityMeta, LocalMemoryStore, predicted_pairs


def normalize(text: str) -> str:
    return " ".join(text.lower().split())


ENTITIES = [
    EntityMeta("t1", "track", "Hey Jude", artist="The Beatles", album="Hey Jude", popularity=90),
    EntityMeta("t2", "track", "Let It Be", artist="The Beatles", album="Let It Be", popularity=80),
    EntityMeta("t3", "track", "Obscure B-side", artist="The Beatles", popularity=1),
    EntityMeta("a1", "artist", "The Beatles", artist="The Beatles", popularity=95),
    EntityMeta("p1", "playlist", "Evening", genres=("Jazz",), moods=("Calm",), popularity=10),
]


def test_phrases_per_type():
    pairs = {(query, entity_id) for query, entity_id, _ in predicted_pairs(ENTITIES, normalize, top_tracks_per_artist=2)}
    assert {("hey jude", "t1"), ("the beatles hey jude", "t1"), ("hey jude the beatles", "t1")} <= pairs
    assert ("the beatles", "a1") in pairs
    assert ("the beatles", "t1") in pairs and ("the beatles", "t2") in pairs
    assert ("the beatles", "t3") not in pairs  # not one of the top 2 tracks
    assert {("jazz calm", "p1"), ("calm jazz", "p1"), ("jazz", "p1"), ("evening", "p1")} <= pairs


def test_priors_in_range_and_increase_with_popularity():
    priors = {(q, e): p for q, e, p in predicted_pairs(ENTITIES, normalize)}
    assert all(0 <= prior < 0.5 for prior in priors.values())
    assert priors[("let it be", "t2")] > priors[("obscure b-side", "t3")]
    assert len(priors) == len(list(predicted_pairs(ENTITIES, normalize)))  # deduplicated


def test_pairs_load_into_a_store_and_rank_artist_first():
    store = LocalMemoryStore()
    written = store.predict(predicted_pairs(ENTITIES, normalize))
    assert written > 0
    assert store.top("the beatles", 1)[0].entity_id == "a1"
    assert list(predicted_pairs([], normalize)) == []
