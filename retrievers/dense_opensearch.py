"""Dense retrieval with OpenSearch k-NN: the scale-out twin of ``dense_faiss``.

Each entity is one document ``{"id", "type", "vector"}`` whose ``vector`` is the ``Embedder``'s unit
embedding of ``entity_text(entity)``. The ``knn_vector`` field uses HNSW (Malkov & Yashunin 2018) from
the faiss engine with ``space_type: innerproduct`` (cosine, since vectors are unit length),
``m = 32``, ``ef_construction = 200`` and ``index.knn.algo_param.ef_search = ef_search``: the same graph
parameters as ``FaissDenseRetriever(kind="hnsw")``. OpenSearch turns an inner product ``s`` into a
score ``1 + s`` for ``s >= 0`` and ``1 / (1 - s)`` otherwise, which keeps the order.

Deleted and replaced vectors are hidden by Lucene's live-docs filter, so no tombstones are needed.
Writes refresh before returning, so ``upsert``/``delete`` are searchable when they return.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from catalog.schema import Entity
from contracts import ConfigError, Hit, Query
from retrievers.embedding import TextEncoder, entity_text, query_vector
from retrievers.opensearch import OpenSearchIndex, client_for

logger = logging.getLogger(__name__)

VECTOR_FIELD = "vector"
SPACE_TYPE = "innerproduct"
ENGINE = "faiss"
ENCODE_CHUNK = 1024


class OpenSearchDenseRetriever:
    """``Retriever`` named ``"dense"``: the query's embedding against entity embeddings in OpenSearch."""

    name = "dense"

    def __init__(self, client_or_url: Any, embedder: TextEncoder, index: str = "ltrr-vectors",
                 ef_search: int = 128, hnsw_m: int = 32, ef_construction: int = 200,
                 timeout: float = 10.0, shards: int = 1, replicas: int = 0) -> None:
        if hnsw_m < 2 or ef_search < 1 or ef_construction < 1:
            raise ConfigError(
                f"hnsw_m/ef_search/ef_construction: expected >= 2/1/1, got {hnsw_m}/{ef_search}/{ef_construction}"
            )
        self.embedder = embedder
        self.dim = int(embedder.dim)
        self.ef_search = ef_search
        self.hnsw_m = hnsw_m
        self.ef_construction = ef_construction
        self.shards = shards
        self.replicas = replicas
        self._index = OpenSearchIndex(client_for(client_or_url, timeout), index)
        self.index = self._index.index

    def mapping(self) -> dict[str, Any]:
        """The index body: k-NN enabled, ``id``/``type`` keywords and the HNSW ``knn_vector`` field."""
        return {
            "settings": {
                "index": {
                    "knn": True,
                    "knn.algo_param.ef_search": self.ef_search,
                    "number_of_shards": self.shards,
                    "number_of_replicas": self.replicas,
                }
            },
            "mappings": {
                "dynamic": "strict",
                "properties": {
                    "id": {"type": "keyword"},
                    "type": {"type": "keyword"},
                    VECTOR_FIELD: {
                        "type": "knn_vector",
                        "dimension": self.dim,
                        "method": {
                            "name": "hnsw",
                            "space_type": SPACE_TYPE,
                            "engine": ENGINE,
                            "parameters": {"m": self.hnsw_m, "ef_construction": self.ef_construction},
                        },
                    },
                },
            },
        }

    def _vector(self, vector: np.ndarray) -> list[float]:
        array = np.asarray(vector, dtype=np.float32).reshape(-1)
        if array.shape[0] != self.dim:
            raise ConfigError(f"vector: expected dimension {self.dim}, got {array.shape[0]}")
        if not np.all(np.isfinite(array)):
            raise ConfigError("vector: contains NaN or infinity; check the embedder")
        return [float(value) for value in array]

    def query_body(self, vector: np.ndarray, k: int) -> dict[str, Any]:
        """A ``knn`` query for the ``k`` nearest documents to ``vector`` (shape ``(dim,)``)."""
        k = max(int(k), 0)
        return {
            "size": k,
            "_source": False,
            "track_total_hits": False,
            "query": {"knn": {VECTOR_FIELD: {"vector": self._vector(vector), "k": max(k, 1)}}},
        }

    # ----------------------------------------------------------------- writing

    def _write(self, entities: Sequence[Entity], refresh: bool | str,
               progress: Callable[[int], None] | None = None) -> None:
        for start in range(0, len(entities), ENCODE_CHUNK):
            chunk = entities[start:start + ENCODE_CHUNK]
            vectors = self.embedder.encode_documents([entity_text(entity) for entity in chunk])
            self._index.bulk(self._actions(chunk, vectors), refresh=refresh)
            if progress is not None:
                progress(start + len(chunk))

    def _actions(self, entities: Sequence[Entity], vectors: np.ndarray) -> Iterator[dict[str, Any]]:
        for entity, vector in zip(entities, vectors, strict=True):
            source = {"id": entity.id, "type": entity.type, VECTOR_FIELD: self._vector(vector)}
            yield {"_op_type": "index", "_index": self.index, "_id": entity.id, "_source": source}

    def build(self, entities: Sequence[Entity], progress: Callable[[int], None] | None = None) -> None:
        """Replace the index with ``entities`` (last one wins on duplicate ids); ``progress(done)`` per chunk."""
        unique = list({entity.id: entity for entity in entities}.values())
        self._index.recreate(self.mapping())
        self._write(unique, refresh=False, progress=progress)
        self._index.refresh()
        logger.info("dense OpenSearch index %s built with %d entities", self.index, len(unique))

    def upsert(self, entities: Sequence[Entity]) -> None:
        if not entities:
            return
        self._index.ensure(self.mapping())
        self._write(list({entity.id: entity for entity in entities}.values()), refresh="wait_for")

    def delete(self, ids: Sequence[str]) -> None:
        self._index.delete_ids(ids)

    def refresh(self) -> None:
        """Nothing to do: every process searches the same server, and writes wait for its refresh."""

    def drop(self) -> None:
        """Delete the whole index."""
        self._index.drop()

    # ----------------------------------------------------------------- reading

    def search(self, query: Query, k: int) -> list[Hit]:
        vector = query_vector(self.embedder, query) if k > 0 else None
        return [] if vector is None else self.search_vector(vector, k)

    def search_vector(self, vector: np.ndarray, k: int) -> list[Hit]:
        """Top ``k`` entities by inner product with ``vector`` (unit length expected)."""
        if k <= 0:
            return []
        return self._index.hits(self.query_body(vector, k))

    def __len__(self) -> int:
        return self._index.count()

    def health(self) -> str:
        return self._index.health()
