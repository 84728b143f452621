"""Deterministic demo music catalog: tracks, artists, albums, playlists and podcasts.

Everything is drawn from one ``numpy.random.default_rng(seed)``, so a seed fully determines the output.
Popularity is long-tailed with a shape that does not depend on the catalog size: the item at quantile
``q = rank / count`` of a random ranking gets ``(1 + q / ZIPF_KNEE) ** -ZIPF_EXPONENT`` (1 for the top item).
A track gets its artist's value times a Beta(TRACK_SHARE_A, TRACK_SHARE_B) share, and artists are given
albums, and albums tracks, with probability proportional to the square root of the artist's popularity.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from catalog import demo_vocab as vocab
from catalog.demo_vocab import GENRES, MOODS, THEMES
from catalog.schema import Entity

__all__ = ["GENRES", "MOODS", "THEMES", "TYPE_SHARES", "generate_demo_catalog", "type_counts"]

# Share of the catalog per entity type; tracks take the rest (about 75%).
TYPE_SHARES: tuple[tuple[str, float], ...] = (
    ("artist", 0.06), ("album", 0.12), ("playlist", 0.05), ("podcast", 0.02),
)
ZIPF_EXPONENT = 0.8
ZIPF_KNEE = 0.01
TRACK_SHARE_A, TRACK_SHARE_B = 2.0, 1.0
LAST_YEAR = 2024
SINGER_GENRES = frozenset({"pop", "folk", "country", "indie", "soul", "r&b", "blues", "latin", "reggae"})
PRODUCER_GENRES = frozenset({"electronic", "house", "techno", "ambient", "lo-fi"})


@dataclass(frozen=True, slots=True)
class _Artist:
    name: str
    kind: str  # "band", "dj" or "person"
    genres: tuple[str, ...]
    popularity: float
    city: str
    debut_year: int
    theme: str


def type_counts(size: int) -> dict[str, int]:
    """Entities per type for a catalog of ``size`` (each type at least one; tracks take the remainder)."""
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < len(TYPE_SHARES) + 1:
        raise ValueError(f"size: expected an integer >= {len(TYPE_SHARES) + 1} (one entity per type), got {size!r}")
    counts = {entity_type: max(1, int(size * share)) for entity_type, share in TYPE_SHARES}
    return {"track": int(size) - sum(counts.values()), **counts}


def _pick(rng: np.random.Generator, words: tuple[str, ...], count: int) -> list[str]:
    return [words[i] for i in rng.integers(0, len(words), size=count)]


def _zipf_weights(rng: np.random.Generator, count: int) -> np.ndarray:
    """Popularity in (0, 1] per item: ``(1 + q / ZIPF_KNEE) ** -ZIPF_EXPONENT`` at a random quantile rank ``q``."""
    quantiles = rng.permutation(count) / count
    return (1.0 + quantiles / ZIPF_KNEE) ** -ZIPF_EXPONENT


def _assign_groups(rng: np.random.Generator, count: int, weights: np.ndarray) -> np.ndarray:
    """Sorted group index per item; every group gets one item first when ``count`` allows, the rest by weight."""
    groups = len(weights)
    base = np.arange(min(groups, count))
    extra = rng.choice(groups, size=count - len(base), p=weights / weights.sum())
    return np.sort(np.concatenate([base, extra]))


def _date(year: int, month: int, day: int) -> str:
    return f"{year:04d}-{month:02d}-{day:02d}"


def _random_dates(rng: np.random.Generator, count: int, first_year: int) -> list[str]:
    years = rng.integers(first_year, LAST_YEAR + 1, size=count)
    months, days = rng.integers(1, 13, size=count), rng.integers(1, 29, size=count)
    return [_date(int(y), int(m), int(d)) for y, m, d in zip(years, months, days, strict=True)]


def _article(word: str) -> str:
    return "An" if word[:1].lower() in "aeiou" else "A"


def _genre_label(genre: str) -> str:
    return vocab.GENRE_LABELS.get(genre, genre.title())


def _topic_label(topic: str) -> str:
    return " ".join(word if word == "and" else word.capitalize() for word in topic.split())


def _artist_name(rng: np.random.Generator) -> tuple[str, str]:
    pattern = rng.random()
    if pattern < 0.25:
        return f"{vocab.BAND_ADJECTIVES[rng.integers(len(vocab.BAND_ADJECTIVES))]} " \
               f"{vocab.BAND_NOUNS[rng.integers(len(vocab.BAND_NOUNS))]}", "band"
    if pattern < 0.45:
        adjective = vocab.BAND_ADJECTIVES[rng.integers(len(vocab.BAND_ADJECTIVES))]
        return f"The {adjective} {vocab.BAND_PLURALS[rng.integers(len(vocab.BAND_PLURALS))]}", "band"
    if pattern < 0.55:
        prefix = vocab.STAGE_PREFIXES[rng.integers(len(vocab.STAGE_PREFIXES))]
        return f"{prefix} {vocab.STAGE_NAMES[rng.integers(len(vocab.STAGE_NAMES))]}", "dj"
    first = vocab.FIRST_NAMES[rng.integers(len(vocab.FIRST_NAMES))]
    return f"{first} {vocab.LAST_NAMES[rng.integers(len(vocab.LAST_NAMES))]}", "person"


def _unique_artist_name(rng: np.random.Generator, taken: set[str]) -> tuple[str, str]:
    """An unused (name, kind); after 20 clashes a numeral suffix makes it unique."""
    for _ in range(20):
        name, kind = _artist_name(rng)
        if name not in taken:
            break
    else:
        name = f"{name} {len(taken)}"
    taken.add(name)
    return name, kind


def _make_artists(rng: np.random.Generator, count: int) -> list[_Artist]:
    genre_p = np.asarray(vocab.GENRE_WEIGHTS) / sum(vocab.GENRE_WEIGHTS)
    primaries = rng.choice(len(GENRES), size=count, p=genre_p)
    popularity = _zipf_weights(rng, count)
    has_secondary = rng.random(count) < 0.4
    debut_years = np.clip(LAST_YEAR - rng.exponential(12.0, size=count).astype(int), 1960, LAST_YEAR)
    cities, themes = _pick(rng, vocab.CITIES, count), _pick(rng, THEMES, count)
    taken: set[str] = set()
    artists = []
    for i in range(count):
        name, kind = _unique_artist_name(rng, taken)
        primary = GENRES[primaries[i]]
        related = vocab.RELATED_GENRES[primary]
        genres = (primary, related[rng.integers(len(related))]) if has_secondary[i] else (primary,)
        artists.append(_Artist(name, kind, genres, float(popularity[i]), cities[i], int(debut_years[i]), themes[i]))
    return artists


def _track_title(rng: np.random.Generator) -> str:
    noun = vocab.TITLE_NOUNS[rng.integers(len(vocab.TITLE_NOUNS))]
    pattern = rng.random()
    if pattern < 0.06:
        return noun
    if pattern < 0.30:
        return f"{vocab.TITLE_ADJECTIVES[rng.integers(len(vocab.TITLE_ADJECTIVES))]} {noun}"
    gerund = vocab.TITLE_GERUNDS[rng.integers(len(vocab.TITLE_GERUNDS))]
    if pattern < 0.40:
        return f"{gerund} {noun}"
    if pattern < 0.52:
        return f"{gerund} the {noun}"
    if pattern < 0.62:
        return f"{noun} of {vocab.TITLE_NOUNS[rng.integers(len(vocab.TITLE_NOUNS))]}"
    if pattern < 0.80:
        return f"{gerund} {vocab.TITLE_PREPOSITIONS[rng.integers(len(vocab.TITLE_PREPOSITIONS))]} {noun}"
    if pattern < 0.88:
        return f"The {vocab.TITLE_ADJECTIVES[rng.integers(len(vocab.TITLE_ADJECTIVES))]} {noun}"
    return vocab.TITLE_PHRASES[rng.integers(len(vocab.TITLE_PHRASES))].format(noun)


def _track_titles(rng: np.random.Generator, count: int) -> list[str]:
    """Titles of 1-5 words; a repeat is redrawn up to twice, so most titles are distinct but some repeat."""
    seen: set[str] = set()
    titles = []
    for _ in range(count):
        title = _track_title(rng)
        for _ in range(2):
            if title not in seen:
                break
            title = _track_title(rng)
        seen.add(title)
        titles.append(title)
    return titles


def _album_title(rng: np.random.Generator, first_track_title: str) -> str:
    pattern = rng.random()
    if pattern < 0.25:
        return first_track_title
    if pattern < 0.60:
        return f"{vocab.BAND_ADJECTIVES[rng.integers(len(vocab.BAND_ADJECTIVES))]} " \
               f"{vocab.ALBUM_PLURALS[rng.integers(len(vocab.ALBUM_PLURALS))]}"
    noun = vocab.TITLE_NOUNS[rng.integers(len(vocab.TITLE_NOUNS))]
    if pattern < 0.75:
        return f"{noun} {vocab.ALBUM_SUFFIXES[rng.integers(len(vocab.ALBUM_SUFFIXES))]}"
    if pattern < 0.88:
        return f"The {vocab.TITLE_ADJECTIVES[rng.integers(len(vocab.TITLE_ADJECTIVES))]} {noun}"
    return f"{noun} & {vocab.TITLE_NOUNS[rng.integers(len(vocab.TITLE_NOUNS))]}"


def _album_dates(rng: np.random.Generator, album_artist: np.ndarray, artists: list[_Artist]) -> list[str]:
    """Release dates; each artist's albums come out in order, one to three years apart, from the debut year."""
    gaps = rng.integers(1, 4, size=len(album_artist))
    months, days = rng.integers(1, 13, size=len(album_artist)), rng.integers(1, 29, size=len(album_artist))
    year_by_artist: dict[int, int] = {}
    dates = []
    for i, artist_index in enumerate(album_artist.tolist()):
        previous = year_by_artist.get(artist_index)
        year = artists[artist_index].debut_year if previous is None else min(LAST_YEAR, previous + int(gaps[i]))
        year_by_artist[artist_index] = year
        dates.append(_date(year, int(months[i]), int(days[i])))
    return dates


def _moods_for(rng: np.random.Generator, genres: Sequence[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """One or two moods per item, 80% from its primary genre's leanings, otherwise from all of MOODS."""
    count = len(genres)
    two, from_genre = rng.random(count) < 0.65, rng.random((count, 2)) < 0.8
    genre_slot, any_slot = rng.integers(0, 4, size=(count, 2)), rng.integers(0, len(MOODS), size=(count, 2))
    result = []
    for i, item_genres in enumerate(genres):
        leanings = vocab.MOODS_BY_GENRE[item_genres[0]]
        picks = [leanings[genre_slot[i, j] % len(leanings)] if from_genre[i, j] else MOODS[any_slot[i, j]]
                 for j in range(2 if two[i] else 1)]
        result.append(tuple(dict.fromkeys(picks)))
    return result


def _music_entities(rng: np.random.Generator, counts: dict[str, int]) -> list[Entity]:
    artists = _make_artists(rng, counts["artist"])
    artist_weight = np.array([artist.popularity for artist in artists])
    album_artist = _assign_groups(rng, counts["album"], np.sqrt(artist_weight))
    track_album = _assign_groups(rng, counts["track"], np.sqrt(artist_weight[album_artist]))
    track_artist = album_artist[track_album]
    factors = rng.beta(TRACK_SHARE_A, TRACK_SHARE_B, size=counts["track"])
    track_popularity = artist_weight[track_artist] * factors
    titles = _track_titles(rng, counts["track"])
    track_genres = [artists[a].genres for a in track_artist.tolist()]
    track_moods = _moods_for(rng, track_genres)
    own_theme, random_themes = rng.random(counts["track"]) < 0.5, _pick(rng, THEMES, counts["track"])
    bounds = np.searchsorted(track_album, np.arange(counts["album"] + 1))  # album i holds tracks bounds[i]:bounds[i+1]
    album_titles = [_album_title(rng, titles[bounds[i]]) for i in range(counts["album"])]
    album_dates = _album_dates(rng, album_artist, artists)
    track_width, album_width, artist_width = (max(w, len(str(counts[t]))) for w, t in
                                              ((6, "track"), (5, "album"), (4, "artist")))
    tracks = []
    for i, album_index in enumerate(track_album.tolist()):
        artist = artists[track_artist[i]]
        genres, moods = track_genres[i], track_moods[i]
        theme = artist.theme if own_theme[i] else random_themes[i]
        noun = vocab.TRACK_NOUN_BY_GENRE.get(genres[0], "song")
        phrase = f"{', '.join(moods)} {' '.join(genres)} {noun}"
        description = (f"{_article(phrase)} {phrase} by {artist.name} about {theme}, "
                       f"from the album {album_titles[album_index]} ({album_dates[album_index][:4]}).")
        tracks.append(Entity(id=f"track:{i:0{track_width}d}", type="track", title=titles[i], artist=artist.name,
                             album=album_titles[album_index], genres=genres, moods=moods, description=description,
                             popularity=round(float(track_popularity[i]), 4), release_date=album_dates[album_index]))
    albums = []
    for i, artist_index in enumerate(album_artist.tolist()):
        artist = artists[artist_index]
        members = range(bounds[i], bounds[i + 1])
        mood_counts = Counter(mood for t in members for mood in track_moods[t])
        moods = tuple(mood for mood, _ in mood_counts.most_common(2))
        popularity = float(track_popularity[bounds[i]:bounds[i + 1]].mean())
        kind = "single" if len(members) == 1 else "EP" if len(members) < 5 else "album"
        description = (f"{album_titles[i]} is a {album_dates[i][:4]} "
                       f"{' '.join(artist.genres)} {kind} by {artist.name} with {len(members)} "
                       f"track{'s' if len(members) != 1 else ''}, {' and '.join(moods) or 'eclectic'} in mood.")
        albums.append(Entity(id=f"album:{i:0{album_width}d}", type="album", title=album_titles[i], artist=artist.name,
                             album=album_titles[i], genres=artist.genres, moods=moods, description=description,
                             popularity=round(popularity, 4), release_date=album_dates[i]))
    artist_entities = [_artist_entity(i, artist, artist_width) for i, artist in enumerate(artists)]
    return artist_entities + albums + tracks


def _artist_entity(index: int, artist: _Artist, width: int) -> Entity:
    leanings = vocab.MOODS_BY_GENRE[artist.genres[0]][:2]
    if artist.kind == "band":
        role = "band"
    elif artist.kind == "dj":
        role = "DJ and producer"
    elif artist.genres[0] == "hip hop":
        role = "rapper"
    elif artist.genres[0] in SINGER_GENRES:
        role = "singer-songwriter"
    elif artist.genres[0] in PRODUCER_GENRES:
        role = "producer"
    else:
        role = "composer" if artist.genres[0] == "classical" else "musician"
    phrase = f"{' '.join(artist.genres)} {role}"
    verb = "are" if artist.name.startswith("The ") else "is"
    description = (f"{artist.name} {verb} {_article(phrase).lower()} {phrase} from {artist.city} known for "
                   f"{' and '.join(leanings)} songs about {artist.theme}.")
    return Entity(id=f"artist:{index:0{width}d}", type="artist", title=artist.name, artist=artist.name,
                  genres=artist.genres, moods=leanings, description=description,
                  popularity=round(artist.popularity, 4), release_date=f"{artist.debut_year:04d}")


def _playlists(rng: np.random.Generator, count: int) -> list[Entity]:
    genre_p = np.asarray(vocab.GENRE_WEIGHTS) / sum(vocab.GENRE_WEIGHTS)
    genres = [(GENRES[i],) for i in rng.choice(len(GENRES), size=count, p=genre_p)]
    moods = [picked[:1] for picked in _moods_for(rng, genres)]
    templates, popularity = rng.integers(0, 4, size=count), _zipf_weights(rng, count)
    suffixes, occasions = _pick(rng, vocab.PLAYLIST_SUFFIXES, count), _pick(rng, vocab.PLAYLIST_OCCASIONS, count)
    activities, decades = _pick(rng, vocab.PLAYLIST_ACTIVITIES, count), _pick(rng, vocab.DECADES, count)
    themes, dates = _pick(rng, THEMES, count), _random_dates(rng, count, 2012)
    width, seen, playlists = max(4, len(str(count))), Counter[str](), []
    for i in range(count):
        genre, mood = genres[i][0], moods[i][0]
        label = _genre_label(genre)
        title = (f"{mood.capitalize()} {label} {suffixes[i]}", f"{occasions[i]} {label}",
                 f"{label} for {activities[i]}", f"{decades[i]} {label} {suffixes[i]}")[templates[i]]
        seen[title] += 1
        title = title if seen[title] == 1 else f"{title}, Vol. {seen[title]}"
        noun = vocab.TRACK_NOUN_BY_GENRE.get(genre, "song")
        description = f"A playlist of {mood} {genre} {noun}s for {themes[i]}."
        playlists.append(Entity(id=f"playlist:{i:0{width}d}", type="playlist", title=title, genres=genres[i],
                                moods=moods[i], description=description, popularity=round(float(popularity[i]), 4),
                                release_date=dates[i]))
    return playlists


def _podcasts(rng: np.random.Generator, count: int) -> list[Entity]:
    topics, templates = _pick(rng, vocab.PODCAST_TOPICS, count), _pick(rng, vocab.PODCAST_TITLE_TEMPLATES, count)
    firsts, lasts = _pick(rng, vocab.FIRST_NAMES, 2 * count), _pick(rng, vocab.LAST_NAMES, 2 * count)
    two_hosts, popularity = rng.random(count) < 0.4, _zipf_weights(rng, count)
    moods, frequencies = _pick(rng, vocab.PODCAST_MOODS, count), _pick(rng, vocab.PODCAST_FREQUENCIES, count)
    formats, dates = _pick(rng, vocab.PODCAST_FORMATS, count), _random_dates(rng, count, 2008)
    width, seen, podcasts = max(4, len(str(count))), Counter[str](), []
    for i in range(count):
        hosts = [f"{firsts[2 * i + j]} {lasts[2 * i + j]}" for j in range(2 if two_hosts[i] else 1)]
        title = templates[i].format(topic=_topic_label(topics[i]))
        seen[title] += 1
        title = title if seen[title] == 1 else f"{title} with {hosts[0]}"
        description = (f"A {frequencies[i]} talk show about {topics[i]} hosted by {' and '.join(hosts)}, "
                       f"with {formats[i]}.")
        podcasts.append(Entity(id=f"podcast:{i:0{width}d}", type="podcast", title=title, artist=" & ".join(hosts),
                               genres=(topics[i],), moods=(moods[i],), description=description,
                               popularity=round(float(popularity[i]), 4),
                               release_date=dates[i]))
    return podcasts


def generate_demo_catalog(size: int = 20000, seed: int = 7) -> list[Entity]:
    """Exactly ``size`` entities (shares in ``TYPE_SHARES``, about 75% tracks), identical for identical seeds.

    Ids are ``track:000123``, ``artist:0042``, ``album:00012``, ``playlist:0003``, ``podcast:0001``.
    Track, album, artist and playlist genres come from ``GENRES`` and moods from ``MOODS``; podcast
    ``genres`` hold their talk topic (e.g. ``"true crime"``).
    """
    counts = type_counts(size)
    rng = np.random.default_rng(seed)
    return _music_entities(rng, counts) + _playlists(rng, counts["playlist"]) + _podcasts(rng, counts["podcast"])
