"""Retriever types by configuration name. A new strategy is one module plus one line here.

Importing this module imports the backend modules but not their libraries: tantivy, FAISS and
sentence-transformers load when a retriever (or the ``Embedder``) is constructed.
"""

from __future__ import annotations

from retrievers.dense_faiss import FaissDenseRetriever
from retrievers.explore import ExploreRetriever
from retrievers.lexical_tantivy import TantivyLexicalRetriever
from retrievers.memory import MemoryRetriever

RETRIEVER_TYPES: dict[str, type] = {
    TantivyLexicalRetriever.name: TantivyLexicalRetriever,
    FaissDenseRetriever.name: FaissDenseRetriever,
    MemoryRetriever.name: MemoryRetriever,
    ExploreRetriever.name: ExploreRetriever,
}
