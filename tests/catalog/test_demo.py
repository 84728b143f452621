"""The deterministic demo catalog generator."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from catalog import Entity, generate_demo_catalog
from catalog.demo import GENRES, MOODS, THEMES, type_counts


@pytest.fixture(scope="module")
def catalog_20k() -> list[Entity]:
    return generate_demo_catalog(size=20000, seed=7)


def test_same_seed_gives_identical_output():
    assert generate_demo_catalog(size=400, seed=7) == generate_demo_catalog(size=400, seed=7)


def test_different_seed_differs():
    first, second = generate_demo_catalog(size=400, seed=7), generate_demo_catalog(size=400, seed=8)
    assert [e.id for e in first] == [e.id for e in second]
    assert sum(a != b for a, b in zip(first, second, strict=True)) > 300


def test_default_arguments_are_size_20000_seed_7(catalog_20k):
    assert generate_demo_catalog() == catalog_20k


@pytest.mark.parametrize("size", [5, 6, 400, 1001])
def test_returns_exactly_size_entities_with_unique_ids(size):
    entities = generate_demo_catalog(size=size, seed=3)
    assert len(entities) == size
    assert len({e.id for e in entities}) == size
    assert {e.type for e in entities} == {"track", "artist", "album", "playlist", "podcast"}


@pytest.mark.parametrize("size", [0, 4, -1, 2.5, True])
def test_too_small_or_non_integer_size_is_rejected(size):
    with pytest.raises(ValueError, match="size"):
        generate_demo_catalog(size=size)


def test_type_proportions(catalog_20k):
    counts = Counter(e.type for e in catalog_20k)
    assert counts == type_counts(20000)
    assert counts == {"track": 15000, "album": 2400, "artist": 1200, "playlist": 1000, "podcast": 400}


def test_ids_are_stable_and_zero_padded(catalog_20k):
    ids = {e.id for e in catalog_20k}
    assert {"track:000123", "artist:0042", "album:00012", "playlist:0003", "podcast:0001"} <= ids
    assert catalog_20k[0].id == "artist:0000"


def test_track_popularity_is_long_tailed(catalog_20k):
    popularity = np.sort([e.popularity for e in catalog_20k if e.type == "track"])[::-1]
    top_decile_share = popularity[: len(popularity) // 10].sum() / popularity.sum()
    assert top_decile_share > 0.40
    assert 0.0 < popularity.min() and popularity.max() <= 1.0
    assert np.median(popularity) < 0.1


def test_popular_artists_have_popular_tracks(catalog_20k):
    artist_popularity = {e.title: e.popularity for e in catalog_20k if e.type == "artist"}
    tracks = [e for e in catalog_20k if e.type == "track"]
    correlation = np.corrcoef([artist_popularity[t.artist] for t in tracks], [t.popularity for t in tracks])[0, 1]
    assert correlation > 0.7


def test_every_entity_round_trips_through_json(catalog_20k):
    for entity in catalog_20k:
        assert Entity.from_json(entity.to_json()) == entity


def test_vocabularies():
    assert len(GENRES) == 20 and len(set(GENRES)) == 20
    assert len(MOODS) == 15 and all(" " not in mood for mood in MOODS) and "sad" not in MOODS
    assert len(THEMES) == 30 and isinstance(THEMES, tuple)


def test_music_entities_use_the_vocabularies(catalog_20k):
    for entity in catalog_20k:
        if entity.type != "podcast":
            assert entity.genres and set(entity.genres) <= set(GENRES), entity
            assert entity.moods and set(entity.moods) <= set(MOODS), entity


def test_tracks_are_complete_and_described(catalog_20k):
    tracks = [e for e in catalog_20k if e.type == "track"]
    for track in tracks:
        assert track.title and track.artist and track.album and track.release_date[:2] in ("19", "20")
        assert track.artist in track.description and track.album in track.description
        assert any(theme in track.description for theme in THEMES)
        assert 1 <= len(track.title.split()) <= 5
    assert len({t.title for t in tracks}) / len(tracks) > 0.9


def test_albums_group_tracks_of_one_artist(catalog_20k):
    album_artists = {(e.title, e.artist) for e in catalog_20k if e.type == "album"}
    tracks = [e for e in catalog_20k if e.type == "track"]
    assert all((t.album, t.artist) in album_artists for t in tracks)
    tracks_per_album = Counter((t.album, t.artist) for t in tracks)
    assert len(tracks_per_album) == len(album_artists)
    assert max(tracks_per_album.values()) > 5


def test_artist_names_are_distinct_and_varied(catalog_20k):
    names = [e.title for e in catalog_20k if e.type == "artist"]
    assert len(set(names)) == len(names)
    assert any(name.startswith("The ") for name in names)
    assert any(name.startswith("DJ ") for name in names)


def test_playlists_and_podcasts(catalog_20k):
    playlists = [e for e in catalog_20k if e.type == "playlist"]
    podcasts = [e for e in catalog_20k if e.type == "podcast"]
    assert len({p.title for p in playlists}) == len(playlists)
    assert all(len(p.genres) == 1 and len(p.moods) == 1 for p in playlists)
    assert all("talk show" in p.description and p.artist for p in podcasts)
