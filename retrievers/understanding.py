"""Query understanding: recognize catalog concepts (artists, titles, genres, moods, type words) in a query.

The gazetteer is built from the catalog's own vocabulary. Matching is greedy longest-n-gram-first over
the normalized tokens: exact first, then at most one edit (insertion, deletion, substitution or adjacent
transposition) for names (artists, genres, moods, type words) of at least ``FUZZY_MIN_CHARS`` characters,
found through a symmetric deletion neighbourhood (Garbe's SymSpell idea: two strings within one edit
share a one-deletion variant), so a lookup costs ``O(len(span))`` dictionary probes instead of a scan
of the vocabulary. Titles match exactly only: they are the bulk of a catalog and their deletion
neighbourhood would cost hundreds of MB at 20k entities; the lexical retriever's fuzzy clauses cover
misspelled titles.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

from catalog.schema import Entity
from contracts import BadRequest, Query, Slot
from retrievers.text import normalize_query

logger = logging.getLogger(__name__)

FUZZY_MIN_CHARS = 5
MAX_NGRAM = 6
FUZZY_KINDS = frozenset({"artist", "genre", "mood", "type"})

# Query words that name an entity type; the slot value is the catalog type.
TYPE_WORDS: Mapping[str, str] = {
    "song": "track", "songs": "track", "track": "track", "tracks": "track",
    "album": "album", "albums": "album", "record": "album", "lp": "album",
    "playlist": "playlist", "playlists": "playlist", "mix": "playlist",
    "podcast": "podcast", "podcasts": "podcast", "episode": "podcast", "episodes": "podcast",
    "artist": "artist", "artists": "artist", "band": "artist", "singer": "artist",
}

# Single words too common to be taken as a title on their own.
_STOPWORDS = frozenset(
    "a an and are as at be by for from i in is it me my of on or so the to up we you your with".split()
)

# Order in which kinds are reported when one phrase has several meanings.
_KIND_ORDER = {"type": 0, "artist": 1, "genre": 2, "mood": 3, "title": 4}


def _one_deletions(text: str) -> set[str]:
    return {text[:i] + text[i + 1:] for i in range(len(text))}


def _within_one_edit(a: str, b: str) -> bool:
    """Optimal-string-alignment distance <= 1 (one insertion, deletion, substitution or transposition)."""
    if a == b:
        return True
    la, lb = len(a), len(b)
    if abs(la - lb) > 1:
        return False
    if la == lb:
        diffs = [i for i in range(la) if a[i] != b[i]]
        if len(diffs) == 1:
            return True
        return len(diffs) == 2 and diffs[1] == diffs[0] + 1 and a[diffs[0]] == b[diffs[1]] and a[diffs[1]] == b[diffs[0]]
    shorter, longer = (a, b) if la < lb else (b, a)
    i = 0
    while i < len(shorter) and shorter[i] == longer[i]:
        i += 1
    return shorter[i:] == longer[i + 1:]


def _entity_meanings(entities: Iterable[Entity]) -> dict[str, tuple[tuple[str, str], ...]]:
    """Normalized phrase -> (kind, catalog spelling) pairs named by ``entities``."""
    meanings: dict[str, dict[tuple[str, str], None]] = {}

    def add(kind: str, value: str) -> None:
        phrase = normalize_query(value)
        if not phrase:
            return
        if kind == "title" and " " not in phrase and (phrase in _STOPWORDS or len(phrase) < 3):
            return
        meanings.setdefault(phrase, {})[(kind, value)] = None

    for entity in entities:
        if entity.artist:
            add("artist", entity.artist)
        if entity.type == "artist":
            add("artist", entity.title)
        elif entity.type in ("track", "album", "playlist", "podcast"):
            add("title", entity.title)
        if entity.album:
            add("title", entity.album)
        for genre in entity.genres:
            add("genre", genre)
        for mood in entity.moods:
            add("mood", mood)
    return {phrase: tuple(pairs) for phrase, pairs in meanings.items()}



@dataclass(slots=True)
class Gazetteer:
    """Normalized phrase -> the (kind, value) pairs it names, plus a deletion index for typo tolerance.

    ``value`` is the catalog's spelling (``"Beyoncé"``); lookups use the normalized phrase (``"beyonce"``).
    """

    meanings: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    # key: a fuzzy-eligible phrase or one of its one-deletion variants -> the phrase(s) it comes from
    deletions: dict[str, str | tuple[str, ...]] = field(default_factory=dict)
    max_tokens: int = 1

    @classmethod
    def from_entities(cls, entities: Iterable[Entity]) -> Gazetteer:
        """Vocabulary: artist names, titles of tracks/albums/playlists/podcasts, genres, moods, type words."""
        meanings: dict[str, tuple[tuple[str, str], ...]] = {word: (("type", kind),) for word, kind in TYPE_WORDS.items()}
        for phrase, pairs in _entity_meanings(entities).items():
            meanings[phrase] = tuple(dict.fromkeys(meanings.get(phrase, ()) + pairs))
        return cls.from_meanings(meanings)

    @classmethod
    def from_meanings(cls, meanings: Mapping[str, Sequence[tuple[str, str]]]) -> Gazetteer:
        gazetteer = cls()
        gazetteer._merge(meanings)
        logger.info("gazetteer: %d phrases, %d deletion keys", len(gazetteer.meanings), len(gazetteer.deletions))
        return gazetteer

    def add(self, entities: Iterable[Entity]) -> None:
        """Learn the vocabulary of new or changed entities (names of deleted ones stay known: harmless)."""
        self._merge(_entity_meanings(entities))

    def _merge(self, meanings: Mapping[str, Sequence[tuple[str, str]]]) -> None:
        for phrase, pairs in meanings.items():
            known = self.meanings.get(phrase, ())
            merged = set(known) | set(pairs)
            self.meanings[phrase] = tuple(sorted(merged, key=lambda kv: (_KIND_ORDER.get(kv[0], 9), kv[1])))
            was_fuzzy = any(kind in FUZZY_KINDS for kind, _ in known)
            if len(phrase) >= FUZZY_MIN_CHARS and not was_fuzzy and any(kind in FUZZY_KINDS for kind, _ in merged):
                self._index_deletions(phrase)
            self.max_tokens = min(max(self.max_tokens, phrase.count(" ") + 1), MAX_NGRAM)

    def _index_deletions(self, phrase: str) -> None:
        for variant in _one_deletions(phrase) | {phrase}:
            known = self.deletions.get(variant)
            if known is None:
                self.deletions[variant] = phrase
            elif isinstance(known, str):
                self.deletions[variant] = (known, phrase)
            else:
                self.deletions[variant] = (*known, phrase)

    def lookup(self, span: str) -> tuple[str, tuple[tuple[str, str], ...]] | None:
        """The phrase ``span`` names (exactly, else within one edit) and its meanings, or ``None``."""
        exact = self.meanings.get(span)
        if exact is not None:
            return span, exact
        if len(span) < FUZZY_MIN_CHARS - 1:
            return None
        candidates: set[str] = set()
        # span == phrase minus one character; then span == phrase plus one character (the phrase is its
        # own key) or one substitution/transposition away (a shared one-deletion variant).
        for key in (span, *_one_deletions(span)):
            found = self.deletions.get(key)
            if found is not None:
                candidates.update((found,) if isinstance(found, str) else found)
        best = sorted(
            (p for p in candidates if _within_one_edit(span, p)),
            key=lambda p: (-len(self.meanings[p]), p),
        )
        if not best:
            return None
        return best[0], self.meanings[best[0]]

    def understand(self, normalized_query: str) -> tuple[Slot, ...]:
        """Slots found in an already normalized query, left to right, longest match first."""
        tokens = normalized_query.split()
        slots: list[Slot] = []
        position = 0
        while position < len(tokens):
            longest = min(self.max_tokens, len(tokens) - position)
            for size in range(longest, 0, -1):
                span = " ".join(tokens[position:position + size])
                found = self.lookup(span)
                if found is None:
                    continue
                for kind, value in found[1]:
                    slots.append(Slot(kind=kind, value=value, matched=span))
                position += size
                break
            else:
                position += 1
        return tuple(slots)


def understand(normalized_query: str, gazetteer: Gazetteer | None = None) -> tuple[Slot, ...]:
    """Slots of ``normalized_query``; with no gazetteer only entity type words are recognized."""
    if gazetteer is None:
        tokens = normalized_query.split()
        return tuple(Slot(kind="type", value=TYPE_WORDS[t], matched=t) for t in tokens if t in TYPE_WORDS)
    return gazetteer.understand(normalized_query)


def build_query(
    text: str,
    user_id: str | None = None,
    session_id: str | None = None,
    timestamp: float = 0.0,
    gazetteer: Gazetteer | None = None,
) -> Query:
    """Normalize ``text``, recognize its slots and wrap everything in a ``Query``."""
    if not isinstance(text, str):
        raise BadRequest("text", f"expected a string, got {type(text).__name__}; send the query as text")
    normalized = normalize_query(text)
    return Query(
        text=text,
        normalized=normalized,
        user_id=user_id,
        session_id=session_id,
        timestamp=float(timestamp),
        slots=understand(normalized, gazetteer),
    )
