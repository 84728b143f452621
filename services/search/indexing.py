"""``ltrr index``: generate or load the catalog and build the lexical and dense indexes on disk."""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from typing import Callable, ContextManager, Sequence

from catalog.schema import Entity
from retrievers.dense_faiss import FaissDenseRetriever
from retrievers.embedding import Embedder
from retrievers.lexical_tantivy import TantivyLexicalRetriever
from services.registry import Paths, ensure_catalog, opensearch_url
from services.settings import Settings

logger = logging.getLogger(__name__)

# A progress factory: given a label and a total, returns a context manager yielding ``report(done)``.
ProgressFactory = Callable[[str, int], ContextManager[Callable[[int], None]]]


@dataclass(frozen=True, slots=True)
class IndexReport:
    entities: int
    lexical_dir: str
    dense_dir: str


def indexes_exist(settings: Settings) -> bool:
    """Whether the embedded indexes are built (an OpenSearch backend is checked when the service opens it)."""
    paths = Paths(settings.data_dir)
    if settings.backend == "opensearch":
        return settings.resolved_catalog_path.exists()
    return settings.resolved_catalog_path.exists() and (paths.lexical / "meta.json").exists() and (
        paths.dense / "manifest.json"
    ).exists()


def build_indexes(
    settings: Settings, progress: ProgressFactory, embedder: Embedder | None = None, entities: Sequence[Entity] | None = None
) -> IndexReport:
    paths = Paths(settings.data_dir)
    entities = list(entities) if entities is not None else ensure_catalog(settings)
    if settings.backend == "opensearch":
        return _build_opensearch(settings, progress, embedder, entities)
    for directory in (paths.lexical, paths.dense):
        if directory.exists():
            shutil.rmtree(directory)
    lexical = TantivyLexicalRetriever(paths.lexical)
    with progress("lexical index (tantivy)", len(entities)) as report:
        lexical.build(entities, progress=report)
    lexical.close()
    dense = FaissDenseRetriever(embedder or Embedder(), paths.dense, kind=settings.dense_index)
    with progress("dense index (all-MiniLM-L6-v2 + FAISS)", len(entities)) as report:
        dense.build(entities, progress=report)
    dense.save()
    logger.info("indexed %d entities under %s", len(entities), settings.data_dir)
    return IndexReport(len(entities), str(paths.lexical), str(paths.dense))


def _build_opensearch(
    settings: Settings, progress: ProgressFactory, embedder: Embedder | None, entities: list[Entity]
) -> IndexReport:
    from retrievers.dense_opensearch import OpenSearchDenseRetriever
    from retrievers.lexical_opensearch import OpenSearchLexicalRetriever

    url = opensearch_url(settings)
    lexical = OpenSearchLexicalRetriever(url)
    with progress("lexical index (OpenSearch)", len(entities)) as report:
        lexical.build(entities, progress=report)
    dense = OpenSearchDenseRetriever(url, embedder or Embedder())
    with progress("dense index (all-MiniLM-L6-v2 + OpenSearch k-NN)", len(entities)) as report:
        dense.build(entities, progress=report)
    return IndexReport(len(entities), f"{url} ltrr-entities", f"{url} ltrr-vectors")
