"""Gazetteer slots: exact, accent/case-insensitive and one-typo matches; ``build_query``; speed."""

from __future__ import annotations

import numpy as np
import pytest
from retriever_fixtures import MINI_CATALOG

from catalog.schema import Entity
from contracts import BadRequest, Slot
from retrievers.understanding import Gazetteer, build_query, understand


@pytest.fixture(scope="module")
def gazetteer() -> Gazetteer:
    return Gazetteer.from_entities(MINI_CATALOG)


def kinds(slots) -> set[tuple[str, str]]:
    return {(slot.kind, slot.value) for slot in slots}


def test_exact_artist_genre_mood_and_type(gazetteer):
    slots = gazetteer.understand("taylor swift happy pop songs")
    assert kinds(slots) == {
        ("artist", "Taylor Swift"), ("mood", "happy"), ("genre", "pop"), ("type", "track"),
    }
    assert Slot(kind="artist", value="Taylor Swift", matched="taylor swift") in slots


def test_accents_and_case_come_from_normalization(gazetteer):
    slots = build_query("BEYONCÉ   Halo!!", gazetteer=gazetteer).slots
    assert ("artist", "Beyoncé") in kinds(slots)
    assert ("title", "Halo") in kinds(slots)


@pytest.mark.parametrize(
    ("query", "artist"),
    [
        ("tayler swift", "Taylor Swift"),  # substitution
        ("taylr swift", "Taylor Swift"),  # deletion
        ("taylorr swift", "Taylor Swift"),  # insertion
        ("tyalor swift", "Taylor Swift"),  # adjacent transposition
        ("beyonse", "Beyoncé"),
        ("motorheed", "Motörhead"),
    ],
)
def test_one_typo_artist(gazetteer, query, artist):
    slots = gazetteer.understand(query)
    assert ("artist", artist) in kinds(slots)
    assert all(slot.matched == query for slot in slots if slot.kind == "artist")


def test_two_typos_or_short_names_are_not_guessed(gazetteer):
    assert gazetteer.understand("tayler swiff") == ()
    # "hale" is one edit from "halo" but shorter than FUZZY_MIN_CHARS, so no fuzzy match
    assert gazetteer.understand("hale") == ()


def test_longest_match_wins_and_tokens_are_consumed_once(gazetteer):
    slots = gazetteer.understand("ace of spades motorhead")
    assert kinds(slots) == {("title", "Ace of Spades"), ("artist", "Motörhead")}
    assert [slot.matched for slot in slots] == ["ace of spades", "motorhead"]


def test_multi_word_genre_and_unknown_words(gazetteer):
    slots = gazetteer.understand("some indie folk for the weekend")
    assert kinds(slots) == {("genre", "indie folk")}


def test_common_single_words_are_not_titles():
    gazetteer = Gazetteer.from_entities([Entity("t1", "track", "You"), Entity("t2", "track", "Me and You")])
    assert gazetteer.understand("songs for you") == (Slot("type", "track", "songs"),)
    assert ("title", "Me and You") in kinds(gazetteer.understand("me and you"))


def test_understand_without_gazetteer_finds_type_words_only():
    assert understand("best jazz playlists") == (Slot("type", "playlist", "playlists"),)


def test_build_query_fields(gazetteer):
    query = build_query("  Chill Evening JAZZ ", user_id="u1", session_id="s1", timestamp=12.5, gazetteer=gazetteer)
    assert query.text == "  Chill Evening JAZZ "
    assert query.normalized == "chill evening jazz"
    assert query.tokens == ("chill", "evening", "jazz")
    assert (query.user_id, query.session_id, query.timestamp) == ("u1", "s1", 12.5)
    assert ("title", "Chill Evening Jazz") in kinds(query.slots)


def test_build_query_rejects_non_text():
    with pytest.raises(BadRequest) as raised:
        build_query(None)  # type: ignore[arg-type]
    assert raised.value.field == "text"


def test_understand_is_fast_on_a_large_vocabulary():
    rng = np.random.default_rng(7)
    syllables = ["ka", "lo", "mi", "ren", "tu", "sa", "vel", "dor", "ni", "pha", "zu", "bri", "con", "el"]

    def word() -> str:
        return "".join(rng.choice(syllables, size=int(rng.integers(2, 4))))

    entities = [
        Entity(f"e{i}", "track", f"{word()} {word()}", artist=f"{word()} {word()}",
               genres=(word(),), moods=(word(),))
        for i in range(20_000)
    ]
    gazetteer = Gazetteer.from_entities(entities)
    artist = entities[123].artist.lower()
    typo = artist[:2] + artist[3:]  # one deletion
    query = f"{typo} songs for a rainy day"
    assert len(query.split()) >= 6
    assert ("artist", entities[123].artist) in kinds(gazetteer.understand(query))

