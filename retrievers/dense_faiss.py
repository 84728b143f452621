"""Dense retrieval: inner product over unit vectors (cosine) with FAISS, saved in a plain directory.

``kind="flat"``: exact search, ``IndexIDMap2(IndexFlatIP)``; upsert and delete edit the index in place.
``kind="hnsw"``: approximate search, ``IndexIDMap2(IndexHNSWFlat)`` (Malkov & Yashunin 2018). HNSW
cannot remove vectors, so a deleted or replaced vector's int64 id goes into a tombstone set; searches
over-fetch ``k + len(tombstones)`` and drop tombstoned ids. Rebuild (``build``) to reclaim them.

The directory holds ``index.faiss``, ``ids.json`` (``{"ids": {int64: entity_id}, "tombstones": [...],
"next_id": n}``) and ``manifest.json`` (model, dim, kind, count, hnsw parameters). Changes live in
memory until ``save()``.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from catalog.schema import Entity
from contracts import ArtifactError, ConfigError, Hit, Query
from retrievers.embedding import TextEncoder, entity_text, query_vector

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
KINDS = ("flat", "hnsw")


def _fsync_file(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _faiss() -> Any:
    try:
        import faiss
    except ImportError as error:
        raise ConfigError("dense retrieval needs FAISS; `pip install faiss-cpu`") from error
    return faiss


class FaissDenseRetriever:
    """``Retriever`` named ``"dense"``: the query's embedding against entity embeddings."""

    name = "dense"

    def __init__(self, embedder: TextEncoder, index_dir: Path | str, kind: str = "flat",
                 hnsw_m: int = 32, ef_search: int = 128, ef_construction: int = 200) -> None:
        if kind not in KINDS:
            raise ConfigError(f"kind: expected one of {', '.join(KINDS)}, got {kind!r}")
        if hnsw_m < 2 or ef_search < 1 or ef_construction < 1:
            raise ConfigError(
                f"hnsw_m/ef_search/ef_construction: expected >= 2/1/1, got {hnsw_m}/{ef_search}/{ef_construction}"
            )
        self.embedder = embedder
        self.index_dir = Path(index_dir)
        self.kind = kind
        self.hnsw_m = hnsw_m
        self.ef_search = ef_search
        self.ef_construction = ef_construction
        self.dim = int(embedder.dim)
        self._lock = threading.RLock()
        self._index = self._empty_index()
        self._entity_by_int: dict[int, str] = {}
        self._int_by_entity: dict[str, int] = {}
        self._tombstones: set[int] = set()
        self._next_id = 0

    def _empty_index(self) -> Any:
        faiss = _faiss()
        if self.kind == "flat":
            inner = faiss.IndexFlatIP(self.dim)
        else:
            inner = faiss.IndexHNSWFlat(self.dim, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efConstruction = self.ef_construction
            inner.hnsw.efSearch = self.ef_search
        return faiss.IndexIDMap2(inner)

    # ----------------------------------------------------------------- writing

    def build(self, entities: Sequence[Entity], progress: Callable[[int], None] | None = None,
              batch_size: int = 64) -> None:
        """Replace the index with ``entities`` (last one wins on duplicate ids); ``progress(done)`` while encoding."""
        unique = list({entity.id: entity for entity in entities}.values())
        vectors = self.embedder.encode_documents([entity_text(e) for e in unique], batch_size, progress)
        with self._lock:
            self._index = self._empty_index()
            self._entity_by_int.clear()
            self._int_by_entity.clear()
            self._tombstones.clear()
            self._next_id = 0
            self._add_locked(unique, vectors)
        logger.info("dense %s index built with %d entities", self.kind, len(unique))

    def _add_locked(self, entities: Sequence[Entity], vectors: np.ndarray) -> None:
        if not entities:
            return
        int_ids = np.arange(self._next_id, self._next_id + len(entities), dtype=np.int64)
        self._next_id += len(entities)
        self._index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), int_ids)
        for int_id, entity in zip(int_ids.tolist(), entities, strict=True):
            self._entity_by_int[int_id] = entity.id
            self._int_by_entity[entity.id] = int_id

    def _remove_locked(self, entity_ids: Sequence[str]) -> None:
        int_ids = [self._int_by_entity.pop(e) for e in set(entity_ids) if e in self._int_by_entity]
        if not int_ids:
            return
        for int_id in int_ids:
            del self._entity_by_int[int_id]
        if self.kind == "flat":
            self._index.remove_ids(np.asarray(int_ids, dtype=np.int64))
        else:
            self._tombstones.update(int_ids)

    def upsert(self, entities: Sequence[Entity]) -> None:
        if not entities:
            return
        unique = list({entity.id: entity for entity in entities}.values())
        vectors = self.embedder.encode_documents([entity_text(e) for e in unique])
        with self._lock:
            self._remove_locked([e.id for e in unique])
            self._add_locked(unique, vectors)

    def delete(self, ids: Sequence[str]) -> None:
        with self._lock:
            self._remove_locked(ids)

    # ----------------------------------------------------------------- reading

    def search(self, query: Query, k: int) -> list[Hit]:
        vector = query_vector(self.embedder, query) if k > 0 else None
        return [] if vector is None else self.search_vector(vector, k)

    def search_vector(self, vector: np.ndarray, k: int) -> list[Hit]:
        """Top ``k`` entities by inner product with ``vector`` (shape ``(dim,)``, unit length expected)."""
        if k <= 0:
            return []
        vector = np.asarray(vector, dtype=np.float32).reshape(1, -1)
        if vector.shape[1] != self.dim:
            raise ConfigError(f"vector: expected dimension {self.dim}, got {vector.shape[1]}")
        with self._lock:
            live = len(self._entity_by_int)
            if live == 0:
                return []
            fetch = min(k + len(self._tombstones), self._index.ntotal)
            scores, int_ids = self._index.search(vector, fetch)
            entity_by_int = self._entity_by_int
            hits: list[Hit] = []
            for score, int_id in zip(scores[0].tolist(), int_ids[0].tolist(), strict=True):
                entity_id = entity_by_int.get(int_id)
                if entity_id is None:  # -1 padding or a tombstone
                    continue
                hits.append(Hit(entity_id=entity_id, score=float(score), rank=len(hits) + 1))
                if len(hits) == k:
                    break
        return hits

    def __len__(self) -> int:
        return len(self._entity_by_int)

    def health(self) -> str:
        with self._lock:
            if self._index.ntotal - len(self._tombstones) != len(self._entity_by_int):
                return f"dense index inconsistent: {self._index.ntotal} vectors for {len(self._entity_by_int)} ids"
        return "ok"

    # ----------------------------------------------------------------- persistence

    def save(self) -> None:
        """Write the index (``index-<token>.faiss``), ``manifest.json`` and ``ids.json`` to ``index_dir``.
        ``ids.json`` names its index file and is replaced last, fsynced: a reader (another worker starting)
        or a crash at any point sees one whole save, the previous or this one."""
        faiss = _faiss()
        self.index_dir.mkdir(parents=True, exist_ok=True)
        index_file = f"index-{uuid.uuid4().hex[:12]}.faiss"
        with self._lock:
            faiss.write_index(self._index, str(self.index_dir / index_file))
            ids = {
                "index_file": index_file,
                "ids": {str(i): e for i, e in self._entity_by_int.items()},
                "tombstones": sorted(self._tombstones),
                "next_id": self._next_id,
            }
            manifest = {
                "format_version": FORMAT_VERSION,
                "model": getattr(self.embedder, "model_name", "unknown"),
                "dim": self.dim,
                "kind": self.kind,
                "count": len(self._entity_by_int),
                "hnsw_m": self.hnsw_m,
                "ef_construction": self.ef_construction,
            }
        _fsync_file(self.index_dir / index_file)
        for name, content in (("manifest.json", json.dumps(manifest, indent=2) + "\n"), ("ids.json", json.dumps(ids))):
            staged = self.index_dir / f".{name}.tmp"
            staged.write_text(content)
            _fsync_file(staged)
            os.replace(staged, self.index_dir / name)
        _fsync_file(self.index_dir)
        for stale in [*self.index_dir.glob("index-*.faiss"), self.index_dir / "index.faiss"]:
            if stale.name != index_file and stale.exists():
                stale.unlink()
        logger.info("dense index saved to %s (%d entities)", self.index_dir, manifest["count"])

    @classmethod
    def open(cls, embedder: TextEncoder, index_dir: Path | str, ef_search: int = 128) -> FaissDenseRetriever:
        """Load what ``save`` wrote; ``ArtifactError`` when missing or built for another model/dimension."""
        index_dir = Path(index_dir)
        paths = [index_dir / name for name in ("manifest.json", "ids.json")]
        missing = [p.name for p in paths if not p.is_file()]
        if missing:
            raise ArtifactError(
                f"index_dir: no dense index at {index_dir} (missing {', '.join(missing)}); run `ltrr index` to build it"
            )
        try:
            manifest = json.loads(paths[0].read_text())
            ids = json.loads(paths[1].read_text())
        except (OSError, ValueError) as error:
            raise ArtifactError(f"index_dir: unreadable dense index at {index_dir} ({error}); run `ltrr index`") from error
        paths.append(index_dir / str(ids.get("index_file", "index.faiss")))  # older saves wrote index.faiss
        if not paths[2].is_file():
            raise ArtifactError(f"index_dir: no dense index at {index_dir} (missing {paths[2].name}); run `ltrr index` to build it")
        if manifest.get("format_version") != FORMAT_VERSION or manifest.get("kind") not in KINDS:
            raise ArtifactError(
                f"index_dir: dense index at {index_dir} has format {manifest.get('format_version')!r}/"
                f"kind {manifest.get('kind')!r}; this code reads format {FORMAT_VERSION}; run `ltrr index` to rebuild"
            )
        if manifest.get("dim") != embedder.dim:
            raise ArtifactError(
                f"index_dir: dense index at {index_dir} holds {manifest.get('dim')}-dimensional vectors "
                f"(model {manifest.get('model')!r}) but the embedder makes {embedder.dim}; "
                "run `ltrr index` with the configured model"
            )
        model = getattr(embedder, "model_name", None)
        if model and manifest.get("model") not in (model, "unknown"):
            logger.warning("dense index at %s was built with %s, embedder is %s", index_dir, manifest.get("model"), model)
        retriever = cls(embedder, index_dir, kind=manifest["kind"], hnsw_m=int(manifest.get("hnsw_m", 32)),
                        ef_search=ef_search, ef_construction=int(manifest.get("ef_construction", 200)))
        try:
            index = _faiss().read_index(str(paths[2]))
        except RuntimeError as error:
            raise ArtifactError(f"index_dir: corrupt {paths[2]} ({error}); run `ltrr index` to rebuild") from error
        if index.d != embedder.dim:
            raise ArtifactError(f"index_dir: {paths[2]} has dimension {index.d}, expected {embedder.dim}; run `ltrr index`")
        if retriever.kind == "hnsw":
            _faiss().downcast_index(index.index).hnsw.efSearch = ef_search
        retriever._index = index
        retriever._entity_by_int = {int(i): e for i, e in ids["ids"].items()}
        retriever._int_by_entity = {e: i for i, e in retriever._entity_by_int.items()}
        retriever._tombstones = set(int(i) for i in ids.get("tombstones", ()))
        retriever._next_id = int(ids.get("next_id", max(retriever._entity_by_int, default=-1) + 1))
        return retriever
