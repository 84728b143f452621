"""Loader for the TidyTuesday "Spotify Songs" CSV (2020-01-21; one row per (track, playlist) pair).

Rows are merged by ``track_id``: the first row gives the metadata and audio features, and the
``playlist_genre`` then ``playlist_subgenre`` values of all rows, in file order, become ``genres``.
Rows whose track name is the literal ``NA`` (missing metadata) are skipped.

Moods come from the audio features (all in [0, 1]) by ``MOOD_RULES``, checked in order:

=============  ===============================
mood           rule
=============  ===============================
danceable      danceability >= 0.70
happy          valence >= 0.65
sad            valence <= 0.30
energetic      energy >= 0.75
chill          energy <= 0.45
acoustic       acousticness >= 0.60
instrumental   instrumentalness >= 0.50
=============  ===============================
"""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path
from typing import Mapping

from catalog.schema import CatalogError, Entity

MISSING = "NA"
FEATURES = ("danceability", "energy", "valence", "acousticness", "instrumentalness")
MOOD_RULES: tuple[tuple[str, str, str, float], ...] = (
    ("danceable", "danceability", ">=", 0.70),
    ("happy", "valence", ">=", 0.65),
    ("sad", "valence", "<=", 0.30),
    ("energetic", "energy", ">=", 0.75),
    ("chill", "energy", "<=", 0.45),
    ("acoustic", "acousticness", ">=", 0.60),
    ("instrumental", "instrumentalness", ">=", 0.50),
)
REQUIRED_COLUMNS = ("track_id", "track_name", "track_artist", "track_popularity", "track_album_name",
                    "track_album_release_date", "playlist_genre", "playlist_subgenre", *FEATURES)


def moods_from_features(features: Mapping[str, float]) -> tuple[str, ...]:
    """Apply ``MOOD_RULES`` to a {feature name: value} mapping."""
    moods = []
    for mood, feature, comparison, threshold in MOOD_RULES:
        value = features[feature]
        if (value >= threshold) if comparison == ">=" else (value <= threshold):
            moods.append(mood)
    return tuple(moods)


def _article(word: str) -> str:
    return "An" if word[:1].lower() in "aeiou" else "A"


def describe_track(title: str, artist: str, album: str, genre: str, moods: tuple[str, ...], year: str) -> str:
    """One sentence, e.g. "A danceable, happy dance pop track by Ed Sheeran from the album X (2019)."."""
    words = [", ".join(moods[:2]), genre, "track"]
    phrase = " ".join(word for word in words if word)
    sentence = f"{_article(phrase)} {phrase} by {artist}"
    if album:
        sentence += f" from the album {album}"
    if year:
        sentence += f" ({year})"
    return sentence + "."


def _number(row: Mapping[str, str], column: str, location: str) -> float:
    try:
        return float(row[column])
    except (TypeError, ValueError) as error:
        raise CatalogError(f"{location}: {column}: expected a number, got {row[column]!r}") from error


def _track_from_row(row: Mapping[str, str], location: str) -> Entity:
    features = {name: _number(row, name, location) for name in FEATURES}
    moods = moods_from_features(features)
    release_date = row["track_album_release_date"].strip()
    title, artist, album = row["track_name"].strip(), row["track_artist"].strip(), row["track_album_name"].strip()
    genre = row["playlist_subgenre"].strip() or row["playlist_genre"].strip()
    return Entity(
        id=f"track:{row['track_id'].strip()}",
        type="track",
        title=title,
        artist=artist,
        album=album,
        moods=moods,
        description=describe_track(title, artist, album, genre, moods, release_date[:4]),
        popularity=_number(row, "track_popularity", location) / 100.0,
        release_date=release_date,
    )


def load_spotify(path: str | Path, limit: int | None = None) -> list[Entity]:
    """Read ``spotify_songs.csv`` into one ``track`` entity per distinct ``track_id``, in first-seen order.

    ``popularity`` is ``track_popularity / 100``. ``limit`` keeps the first ``limit`` tracks (their genres
    are still gathered from the whole file). Raises ``CatalogError`` naming the file, line and column.
    """
    if limit is not None and limit < 0:
        raise CatalogError(f"limit: expected None or a non-negative integer, got {limit!r}")
    csv_path = Path(path)
    if not csv_path.is_file():
        raise CatalogError(f"path: {str(csv_path)!r} does not exist; pass the path of spotify_songs.csv")
    tracks: dict[str, Entity] = {}
    genres_by_id: dict[str, list[str]] = {}
    with csv_path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        missing_columns = [column for column in REQUIRED_COLUMNS if column not in (reader.fieldnames or ())]
        if missing_columns:
            raise CatalogError(f"{csv_path}:1: missing columns {', '.join(missing_columns)}; "
                               "expected the TidyTuesday spotify_songs.csv header")
        for row in reader:
            track_id = row["track_id"].strip()
            if not track_id or row["track_name"].strip() in ("", MISSING):
                continue
            if track_id not in tracks:
                tracks[track_id] = _track_from_row(row, f"{csv_path}:{reader.line_num}")
                genres_by_id[track_id] = []
            genres = genres_by_id[track_id]
            for genre in (row["playlist_genre"].strip(), row["playlist_subgenre"].strip()):
                if genre and genre not in genres:
                    genres.append(genre)
    selected = list(tracks.items()) if limit is None else list(tracks.items())[:limit]
    return [replace(entity, genres=tuple(genres_by_id[track_id])) for track_id, entity in selected]
