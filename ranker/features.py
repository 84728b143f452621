"""The ranker feature table: one row per candidate, a fixed width for a fixed list of strategies.

Columns, in order (``feature_names(strategies)`` spells them):

- per strategy ``s`` in the order given: ``s:found`` (0/1), ``s:score`` (the retriever's raw score, 0 if
  absent), ``s:inverse_rank`` (``1/rank``, 0 if absent)
- ``n_strategies_found``, ``popularity``
- ``type:<t>`` one-hot for ``track, artist, album, playlist, podcast, document``
- ``title_exact_match`` (normalized title == normalized query), ``title_token_overlap``,
  ``artist_token_overlap``, ``tags_token_overlap`` (fraction of query tokens found in the title, the
  artist, the genres + moods), ``query_token_count``
- query understanding, 0/1 each: ``slot:artist_match`` (a recognized artist slot names the candidate's
  artist, or the candidate is that artist), ``slot:title_match`` (a title slot names its title or album),
  ``slot:genre_match`` / ``slot:mood_match`` (it carries a recognized genre / mood), ``slot:type_match``
  (its type is the one a type word asked for)
- this query's history of the candidate, from the memory index: ``history:impressions`` and
  ``history:clicks`` (times shown and engaged with for this normalized query, decayed like the memory
  index), ``history:ctr`` (``clicks / (impressions + 1)``); all 0 for a candidate never shown for it.
  They carry the query's click evidence to the ranker whichever strategy found the candidate this time,
  and let a model tell an entity shown and ignored from one never shown.

Provenance from strategies not in the list is ignored, so the width never changes under a model.
A saved model records its strategies and feature names; loading checks them against this module.
"""

from __future__ import annotations

import functools
import re
from typing import Mapping, Sequence

import numpy as np

from contracts import Candidate, ConfigError, EntityFacts, Query

STRATEGY_FEATURES = ("found", "score", "inverse_rank")
ENTITY_TYPES = ("track", "artist", "album", "playlist", "podcast", "document")
SLOT_FEATURE_KINDS = ("artist", "title", "genre", "mood", "type")
SHARED_FEATURES = (
    "n_strategies_found",
    "popularity",
    *(f"type:{entity_type}" for entity_type in ENTITY_TYPES),
    "title_exact_match",
    "title_token_overlap",
    "artist_token_overlap",
    "tags_token_overlap",
    "query_token_count",
    *(f"slot:{kind}_match" for kind in SLOT_FEATURE_KINDS),
    "history:impressions",
    "history:clicks",
    "history:ctr",
)
DEFAULT_STRATEGIES = ("lexical", "dense", "memory", "explore")

_NON_WORD = re.compile(r"[^\w]+")


def check_strategies(strategies: Sequence[str]) -> tuple[str, ...]:
    names = tuple(strategies)
    if isinstance(strategies, str) or not names or len(set(names)) != len(names) or not all(isinstance(n, str) and n for n in names):
        raise ConfigError.about("strategies", f"the ranker needs a non-empty list of unique strategy names, got {strategies!r}")
    return names


def feature_names(strategies: Sequence[str]) -> tuple[str, ...]:
    """Column names for ``strategies`` (see the module docstring)."""
    names = check_strategies(strategies)
    return tuple(f"{s}:{f}" for s in names for f in STRATEGY_FEATURES) + SHARED_FEATURES


FEATURE_NAMES = feature_names(DEFAULT_STRATEGIES)


@functools.lru_cache(maxsize=262_144)
def _tokens(text: str) -> tuple[str, ...]:
    """Lower-cased word tokens; cached because the same entity fields are tokenized on every request."""
    return tuple(_NON_WORD.sub(" ", text.lower()).split())


def _overlap(query_tokens: Sequence[str], field_tokens: set[str]) -> float:
    if not query_tokens:
        return 0.0
    return sum(1 for token in query_tokens if token in field_tokens) / len(query_tokens)


def build_features(
    query: Query,
    candidates: Sequence[Candidate],
    facts: Mapping[str, EntityFacts],
    strategies: Sequence[str],
) -> np.ndarray:
    """``(len(candidates), len(feature_names(strategies)))`` float64 matrix; rows follow ``candidates``.
    Candidates without facts get zeros for the entity columns."""
    names = check_strategies(strategies)
    width = len(names) * len(STRATEGY_FEATURES) + len(SHARED_FEATURES)
    matrix = np.zeros((len(candidates), width), dtype=np.float64)
    query_tokens = _tokens(query.normalized)
    query_phrase = " ".join(query_tokens)
    shared = len(names) * len(STRATEGY_FEATURES)
    type_offset = shared + 2
    text_offset = type_offset + len(ENTITY_TYPES)
    slot_offset = SHARED_FEATURES.index("slot:artist_match") + shared
    history_offset = SHARED_FEATURES.index("history:impressions") + shared
    slots = _slot_phrases(query)
    for row, candidate in enumerate(candidates):
        found = 0
        for position, strategy in enumerate(names):
            hit = candidate.provenance.get(strategy)
            if hit is None:
                continue
            found += 1
            column = position * len(STRATEGY_FEATURES)
            matrix[row, column] = 1.0
            matrix[row, column + 1] = float(hit.score)
            matrix[row, column + 2] = 1.0 / hit.rank if hit.rank >= 1 else 0.0
        matrix[row, shared] = found
        matrix[row, text_offset + 4] = len(query_tokens)
        matrix[row, history_offset] = candidate.impressions
        matrix[row, history_offset + 1] = candidate.clicks
        matrix[row, history_offset + 2] = candidate.clicks / (candidate.impressions + 1.0)
        entity = facts.get(candidate.entity_id)
        if entity is None:
            continue
        matrix[row, shared + 1] = float(entity.popularity)
        if entity.type in ENTITY_TYPES:
            matrix[row, type_offset + ENTITY_TYPES.index(entity.type)] = 1.0
        title_tokens = _tokens(entity.title)
        matrix[row, text_offset] = 1.0 if query_tokens and " ".join(title_tokens) == query_phrase else 0.0
        matrix[row, text_offset + 1] = _overlap(query_tokens, set(title_tokens))
        matrix[row, text_offset + 2] = _overlap(query_tokens, set(_tokens(entity.artist)))
        tag_tokens = {token for tag in entity.genres + entity.moods for token in _tokens(tag)}
        matrix[row, text_offset + 3] = _overlap(query_tokens, tag_tokens)
        if slots:
            _slot_matches(matrix[row, slot_offset:slot_offset + len(SLOT_FEATURE_KINDS)], entity, slots)
    return matrix


def _phrase(text: str) -> str:
    return " ".join(_tokens(text))


def _slot_phrases(query: Query) -> dict[str, set[str]]:
    """Recognized slot values by kind, as token phrases (type values are catalog type names)."""
    phrases: dict[str, set[str]] = {}
    for slot in query.slots:
        phrases.setdefault(slot.kind, set()).add(slot.value if slot.kind == "type" else _phrase(slot.value))
    return phrases


def _slot_matches(out: np.ndarray, entity: EntityFacts, slots: Mapping[str, set[str]]) -> None:
    artists = slots.get("artist", ())
    names = {_phrase(entity.artist)} | ({_phrase(entity.title)} if entity.type == "artist" else set())
    out[0] = 1.0 if artists and not names.isdisjoint(artists) else 0.0
    titles = slots.get("title", ())
    out[1] = 1.0 if titles and not {_phrase(entity.title), _phrase(entity.album)}.isdisjoint(titles) else 0.0
    genres = slots.get("genre", ())
    out[2] = 1.0 if genres and any(_phrase(genre) in genres for genre in entity.genres) else 0.0
    moods = slots.get("mood", ())
    out[3] = 1.0 if moods and any(_phrase(mood) in moods for mood in entity.moods) else 0.0
    out[4] = 1.0 if entity.type in slots.get("type", ()) else 0.0


def rrf_from_features(matrix: np.ndarray, strategies: Sequence[str], k: float = 60.0) -> np.ndarray:
    """Reciprocal-rank fusion recomputed from logged features: ``sum_s 1/(k + rank_s)`` where
    ``rank_s = round(1/inverse_rank)`` for the strategies that found the candidate (Cormack et al., SIGIR 2009)."""
    names = check_strategies(strategies)
    scores = np.zeros(matrix.shape[0], dtype=np.float64)
    for position in range(len(names)):
        inverse_rank = matrix[:, position * len(STRATEGY_FEATURES) + 2]
        found = inverse_rank > 0
        scores[found] += 1.0 / (k + np.rint(1.0 / inverse_rank[found]))
    return scores
