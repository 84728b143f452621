"""Simulated traffic for ``ltrr simulate``: query intents of several kinds and a noisy position-based user.

The query generators here are deliberately independent of ``memory_index.cold_start`` (which predicts
query->entity pairs from metadata): topic queries combine a genre with a mood word (half the time a
synonym the catalog never contains), misspellings are random edits, and head queries repeat one phrase per theme and want the
popular tracks about it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from catalog.demo_vocab import THEMES
from catalog.schema import Entity
from contracts import ConfigError
from contracts.events import Engagement

# Words a listener uses for a mood; none of them is a catalog mood word.
MOOD_SYNONYMS: dict[str, tuple[str, ...]] = {
    "happy": ("cheerful", "feel good", "joyful"),
    "melancholic": ("sad", "heartbroken", "gloomy"),
    "energetic": ("pumped up", "high energy", "hype"),
    "calm": ("relaxing", "soothing", "mellow"),
    "romantic": ("love", "date night", "sensual"),
    "dark": ("brooding", "sinister", "moody"),
    "uplifting": ("inspiring", "motivational", "hopeful"),
    "dreamy": ("ethereal", "hazy", "floating"),
    "aggressive": ("angry", "furious", "rage"),
    "nostalgic": ("throwback", "bittersweet memories", "old times"),
    "peaceful": ("serene", "tranquil", "quiet"),
    "playful": ("fun", "silly", "lighthearted"),
    "intense": ("powerful", "heavy", "fierce"),
    "chill": ("laid back", "easygoing", "unwind"),
    "groovy": ("funky", "danceable", "bouncy"),
}
TOPIC_TEMPLATES = ("{mood} {genre} songs", "{mood} {genre} music", "some {mood} {genre}", "{genre} tracks that feel {mood}")
KIND_SHARES = {"exact": 0.25, "artist_title": 0.15, "misspelled": 0.15, "topic": 0.25, "head": 0.20}
HEAD_TARGETS = 30
HEAD_TEMPLATES = ("songs about {theme}", "{theme} playlist", "music for {theme}", "{theme} songs")


@dataclass(frozen=True, slots=True)
class Intent:
    kind: str
    text: str
    targets: frozenset[str]
    user_id: str
    session_id: str


@dataclass(frozen=True, slots=True)
class SimulatedFeedback:
    entity_id: str
    event: Engagement
    position: int
    delay_s: float


def misspell(word: str, rng: np.random.Generator) -> str:
    """One random edit (drop, swap, double or replace a letter) away from ``word``, never the first letter."""
    if len(word) < 4:
        return word
    position = int(rng.integers(1, len(word) - 1))
    operation = int(rng.integers(4))
    if operation == 0:
        return word[:position] + word[position + 1 :]
    if operation == 1:
        return word[:position] + word[position + 1] + word[position] + word[position + 2 :]
    if operation == 2:
        return word[:position] + word[position] + word[position:]
    letter = "abcdefghijklmnopqrstuvwxyz"[int(rng.integers(26))]
    return word[:position] + letter + word[position + 1 :]


class QueryStream:
    """Draws intents from a catalog; the same seed gives the same stream."""

    def __init__(self, entities: Sequence[Entity], seed: int, users: int = 500) -> None:
        self.rng = np.random.default_rng([seed, 11])
        self.users = users
        self.named = [e for e in entities if e.type in ("track", "artist", "album", "playlist") and len(e.title) >= 3]
        popularity = np.array([e.popularity for e in self.named], dtype=float) + 0.01
        self.named_weights = popularity / popularity.sum()
        self.tracks = [e for e in entities if e.type == "track" and e.artist]
        track_popularity = np.array([e.popularity for e in self.tracks], dtype=float) + 0.01
        self.track_weights = track_popularity / track_popularity.sum()
        self.by_mood_genre: dict[tuple[str, str], list[str]] = defaultdict(list)
        for track in self.tracks:
            for genre in track.genres:
                for mood in track.moods:
                    self.by_mood_genre[(mood, genre)].append(track.id)
        self.topics = sorted(key for key, ids in self.by_mood_genre.items() if len(ids) >= 5 and key[0] in MOOD_SYNONYMS)
        # Head queries: one fixed phrase per theme, asked again and again; the listener wants the most
        # popular tracks about that theme, which no index ranks first (hundreds of tracks share a theme).
        self.head: list[tuple[str, frozenset[str]]] = []
        for number, theme in enumerate(THEMES):
            about = [track for track in self.tracks if f"about {theme}" in track.description]
            if len(about) >= HEAD_TARGETS:
                popular = sorted(about, key=lambda e: (-e.popularity, e.id))[:HEAD_TARGETS]
                text = HEAD_TEMPLATES[number % len(HEAD_TEMPLATES)].format(theme=theme)
                self.head.append((text, frozenset(e.id for e in popular)))
        head_ranks = np.arange(1, len(self.head) + 1, dtype=float)
        self.head_weights = (1.0 / head_ranks) / (1.0 / head_ranks).sum()
        # A small catalog may lack a kind (no theme with HEAD_TARGETS tracks, no mood x genre with 5): its share
        # goes to the others. With every kind present the draws are those of the full mix.
        possible = {"exact": self.named, "misspelled": self.named, "artist_title": self.tracks, "topic": self.topics, "head": self.head}
        self.kinds = tuple(kind for kind in KIND_SHARES if possible[kind])
        if not self.kinds:
            raise ConfigError("demo_size: the catalog is too small to simulate queries (no named entities); use --demo-size 1000 or more")
        shares = np.array([KIND_SHARES[k] for k in self.kinds])
        self.kind_weights = shares if len(self.kinds) == len(KIND_SHARES) else shares / shares.sum()

    def draw(self, index: int) -> Intent:
        rng = self.rng
        kind = self.kinds[int(rng.choice(len(self.kinds), p=self.kind_weights))]
        user = int(rng.integers(self.users))
        user_id, session_id = f"user-{user}", f"user-{user}-s{index // 50}"
        if kind in ("exact", "misspelled"):
            entity = self.named[int(rng.choice(len(self.named), p=self.named_weights))]
            text = entity.title.lower()
            if kind == "misspelled":
                words = text.split()
                longest = max(range(len(words)), key=lambda i: len(words[i]))
                words[longest] = misspell(words[longest], rng)
                text = " ".join(words)
            return Intent(kind, text, frozenset({entity.id}), user_id, session_id)
        if kind == "artist_title":
            track = self.tracks[int(rng.choice(len(self.tracks), p=self.track_weights))]
            text = f"{track.title} {track.artist}" if rng.random() < 0.5 else f"{track.artist} {track.title}"
            return Intent(kind, text.lower(), frozenset({track.id}), user_id, session_id)
        if kind == "topic":
            mood, genre = self.topics[int(rng.integers(len(self.topics)))]
            # Half the listeners use the catalog's own mood word, half a synonym the catalog never contains.
            mood_words = (mood,) if rng.random() < 0.5 else MOOD_SYNONYMS[mood]
            template = TOPIC_TEMPLATES[int(rng.integers(len(TOPIC_TEMPLATES)))]
            text = template.format(mood=mood_words[int(rng.integers(len(mood_words)))], genre=genre)
            return Intent(kind, text, frozenset(self.by_mood_genre[(mood, genre)]), user_id, session_id)
        text, targets = self.head[int(rng.choice(len(self.head), p=self.head_weights))]
        return Intent("head", text, targets, user_id, session_id)


def simulate_user(
    page: Sequence[str], targets: frozenset[str], rng: np.random.Generator
) -> list[SimulatedFeedback]:
    """Position-based model: position ``i`` (1-based) is examined with probability ``0.95 / i**0.6``;
    an examined target is clicked with probability 0.85 (then played 0.6, favorited 0.15), an examined
    non-target with probability 0.02 (noise, never played)."""
    engagements: list[SimulatedFeedback] = []
    for position, entity_id in enumerate(page, 1):
        examined = rng.random() < 0.95 / position**0.6
        relevant = entity_id in targets
        if not examined or rng.random() >= (0.85 if relevant else 0.02):
            continue
        engagements.append(SimulatedFeedback(entity_id, Engagement.CLICK, position, 2.0 + position))
        if relevant and rng.random() < 0.6:
            engagements.append(SimulatedFeedback(entity_id, Engagement.PLAY, position, 30.0))
        if relevant and rng.random() < 0.15:
            engagements.append(SimulatedFeedback(entity_id, Engagement.FAVORITE, position, 45.0))
    return engagements
