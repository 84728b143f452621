"""Loader for the shared TidyTuesday Spotify songs CSV (read in place, never copied)."""

from __future__ import annotations

from pathlib import Path

import pytest

from catalog import CatalogError, Entity, load_spotify
from catalog.spotify import describe_track, moods_from_features

SPOTIFY_CSV = Path("/work/shared/datasets/music/spotify_songs.csv")
HEADER = ("track_id,track_name,track_artist,track_popularity,track_album_id,track_album_name,"
          "track_album_release_date,playlist_name,playlist_id,playlist_genre,playlist_subgenre,danceability,"
          "energy,key,loudness,mode,speechiness,acousticness,instrumentalness,liveness,valence,tempo,duration_ms")


@pytest.fixture(scope="module")
def tracks() -> list[Entity]:
    if not SPOTIFY_CSV.is_file():
        pytest.skip(f"{SPOTIFY_CSV} not found; the shared datasets folder is not mounted")
    return load_spotify(SPOTIFY_CSV)


def test_dedupes_by_track_id_and_skips_na_rows(tracks):
    # 28,356 distinct track ids; the 5 "NA" rows belong to 4 of them, so 28,356 - 4 remain.
    assert len(tracks) == 28356 - 4
    assert len({t.id for t in tracks}) == len(tracks)
    assert not any(t.title == "NA" or t.artist == "NA" for t in tracks)


def test_first_track_fields(tracks):
    first = tracks[0]
    assert first.id == "track:6f807x0ima9a1j3VPbc7VN"
    assert (first.type, first.artist, first.popularity, first.release_date) == ("track", "Ed Sheeran", 0.66, "2019-06-14")
    assert first.genres[:2] == ("pop", "dance pop")
    assert first.description.startswith("A danceable, energetic dance pop track by Ed Sheeran from the album ")
    assert first.description.endswith("(2019).")


def test_genres_are_collected_across_playlists(tracks):
    assert max(len(t.genres) for t in tracks) > 2
    assert all(t.genres for t in tracks)


def test_every_track_round_trips_and_is_in_range(tracks):
    for track in tracks:
        assert Entity.from_json(track.to_json()) == track
        assert 0.0 <= track.popularity <= 1.0


def test_limit_keeps_the_first_tracks(tracks):
    assert load_spotify(SPOTIFY_CSV, limit=10) == tracks[:10]


def test_mood_rules():
    features = {"danceability": 0.8, "energy": 0.3, "valence": 0.2, "acousticness": 0.9, "instrumentalness": 0.0}
    assert moods_from_features(features) == ("danceable", "sad", "chill", "acoustic")


def test_description_article_and_missing_parts():
    assert describe_track("T", "Band", "", "electro house", (), "") == "An electro house track by Band."


def test_bad_number_names_line_and_column(tmp_path):
    row = "id1,Song,Artist,high,alb,Album,2019-01-01,P,pid,pop,dance pop,0.5,0.5,1,-5,1,0.1,0.1,0,0.1,0.5,120,200000"
    path = tmp_path / "songs.csv"
    path.write_text(f"{HEADER}\n{row}\n", encoding="utf-8")
    with pytest.raises(CatalogError, match=r"songs\.csv:2: track_popularity: expected a number, got 'high'"):
        load_spotify(path)


def test_missing_column_is_named(tmp_path):
    path = tmp_path / "songs.csv"
    path.write_text("track_id,track_name\nx,y\n", encoding="utf-8")
    with pytest.raises(CatalogError, match="missing columns track_artist"):
        load_spotify(path)
