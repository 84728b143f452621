"""Candidate generators behind one ``Retriever`` protocol, and query understanding.

Light names are imported eagerly; backend classes load on first attribute access so that
``import retrievers`` never pulls in tantivy, FAISS, torch or sentence-transformers.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from retrievers.base import Retriever
from retrievers.text import normalize_query, strip_accents
from retrievers.understanding import Gazetteer, build_query, understand

_LAZY = {
    "Embedder": "retrievers.embedding",
    "entity_text": "retrievers.embedding",
    "FaissDenseRetriever": "retrievers.dense_faiss",
    "TantivyLexicalRetriever": "retrievers.lexical_tantivy",
    "MemoryRetriever": "retrievers.memory",
}

__all__ = [
    "Gazetteer",
    "Retriever",
    "build_query",
    "normalize_query",
    "strip_accents",
    "understand",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'retrievers' has no attribute {name!r}")
    return getattr(import_module(module), name)
