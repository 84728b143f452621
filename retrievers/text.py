"""Query normalization: the one function every stage uses to turn user text into a lookup key.

The lexical index, the gazetteer and the memory index keys all go through ``normalize_query`` so that
"Beyoncé — HALO!" and "beyonce halo" meet at the same string.
"""

from __future__ import annotations

import unicodedata

# Apostrophes join the word they split ("don't" -> "dont") instead of breaking it into "don t".
_JOINERS = frozenset("'\u2019\u02bc\u2018`\u00b4")


def strip_accents(text: str) -> str:
    """Drop combining marks after canonical decomposition: ``"Beyoncé" -> "Beyonce"``."""
    decomposed = unicodedata.normalize("NFD", text)
    kept = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return unicodedata.normalize("NFC", kept)


def normalize_query(text: str) -> str:
    """NFKC, casefold, strip accents, punctuation and symbols to spaces, collapse whitespace.

    Letters and digits of every script are kept; everything else (punctuation, symbols, emoji,
    control characters) becomes a separator. Apostrophes are removed without a separator.
    """
    folded = strip_accents(unicodedata.normalize("NFKC", text).casefold())
    chars: list[str] = []
    for ch in folded:
        if ch in _JOINERS:
            continue
        category = unicodedata.category(ch)
        chars.append(ch if category[0] in ("L", "N") else " ")
    return " ".join("".join(chars).split())
