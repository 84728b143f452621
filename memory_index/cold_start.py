"""Cold start: predicted query -> entity pairs from catalog metadata, before any click exists.

Phrases per entity type (each normalized with the caller's ``normalize``; empty phrases are dropped):

- every entity: its title
- track: ``artist title``, ``title artist``; its album name; its artist name if it is one of the
  artist's ``top_tracks_per_artist`` most popular tracks
- artist: its name (title) and its ``artist`` field
- album: ``artist title``, ``title artist``
- playlist: ``genre mood`` and ``mood genre`` for every genre x mood, and each genre and mood alone

``prior = 0.5 * phrase_weight * (0.1 + 0.9 * popularity_rank)`` scaled into [0, 0.5), where
``popularity_rank`` in [0, 1] is the entity's popularity percentile among the entities given (so any
popularity scale works) and ``phrase_weight`` in (0, 1] says how specific the phrase is. Pairs are
deduplicated keeping the highest prior; the order follows the input.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Callable, Iterable, Iterator

from memory_index.base import EntityMeta, MemoryStore

_MAX_PRIOR = 0.4999

PHRASE_WEIGHTS = {
    "title": 1.0,
    "artist_title": 1.0,
    "artist_name": 1.0,
    "album_of_track": 0.4,
    "artist_top_track": 0.6,
    "genre_mood": 0.7,
    "genre_or_mood": 0.5,
}


def _popularity_ranks(entities: list[EntityMeta]) -> dict[str, float]:
    """Percentile of each entity's popularity in [0, 1] (ties share the lowest rank)."""
    if len(entities) == 1:
        return {entities[0].entity_id: 1.0}
    ordered = sorted(entities, key=lambda entity: entity.popularity)
    ranks: dict[str, float] = {}
    first_index_by_value: dict[float, int] = {}
    for index, entity in enumerate(ordered):
        first = first_index_by_value.setdefault(entity.popularity, index)
        ranks[entity.entity_id] = first / (len(ordered) - 1)
    return ranks


def _phrases(entity: EntityMeta, top_track_ids: set[str]) -> Iterator[tuple[str, str]]:
    yield entity.title, "title"
    if entity.type in ("track", "album") and entity.artist:
        yield f"{entity.artist} {entity.title}", "artist_title"
        yield f"{entity.title} {entity.artist}", "artist_title"
    if entity.type == "track":
        if entity.album:
            yield entity.album, "album_of_track"
        if entity.artist and entity.entity_id in top_track_ids:
            yield entity.artist, "artist_top_track"
    if entity.type == "artist" and entity.artist:
        yield entity.artist, "artist_name"
    if entity.type == "playlist":
        for genre in entity.genres:
            for mood in entity.moods:
                yield f"{genre} {mood}", "genre_mood"
                yield f"{mood} {genre}", "genre_mood"
        for word in entity.genres + entity.moods:
            yield word, "genre_or_mood"


def predicted_pairs(
    entities: Iterable[EntityMeta],
    normalize: Callable[[str], str],
    top_tracks_per_artist: int = 3,
) -> Iterator[tuple[str, str, float]]:
    """Yield ``(normalized query, entity_id, prior)`` with ``prior`` in [0, 0.5); see the module docstring."""
    entity_list = list(entities)
    if not entity_list:
        return
    popularity_rank = _popularity_ranks(entity_list)
    tracks_by_artist: dict[str, list[EntityMeta]] = defaultdict(list)
    for entity in entity_list:
        if entity.type == "track" and entity.artist:
            tracks_by_artist[normalize(entity.artist)].append(entity)
    top_track_ids = {
        track.entity_id
        for tracks in tracks_by_artist.values()
        for track in sorted(tracks, key=lambda t: (-t.popularity, t.entity_id))[:top_tracks_per_artist]
    }
    prior_by_pair: dict[tuple[str, str], float] = {}
    for entity in entity_list:
        base = 0.1 + 0.9 * popularity_rank[entity.entity_id]
        for phrase, kind in _phrases(entity, top_track_ids):
            query = normalize(phrase)
            if not query:
                continue
            prior = min(_MAX_PRIOR, 0.5 * PHRASE_WEIGHTS[kind] * base)
            key = (query, entity.entity_id)
            if prior > prior_by_pair.get(key, -1.0):
                prior_by_pair[key] = prior
    for (query, entity_id), prior in prior_by_pair.items():
        yield query, entity_id, prior


def cold_start(memory: MemoryStore, entities: Iterable[EntityMeta], normalize: Callable[[str], str]) -> int:
    """Write the predicted pairs of ``entities`` into ``memory``; observed statistics are never overwritten.
    Returns how many pairs were written."""
    return memory.predict(predicted_pairs(entities, normalize))
