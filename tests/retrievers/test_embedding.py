"""The real all-MiniLM-L6-v2 embedder: shapes, normalization, cache, entity text."""

from __future__ import annotations

import numpy as np
from retriever_fixtures import MINI_CATALOG

from retrievers.embedding import Embedder, entity_text


def test_query_vector_shape_and_norm(embedder):
    vector = embedder.encode_query("sad songs for a rainy day")
    assert embedder.dim == 384
    assert vector.shape == (384,) and vector.dtype == np.float32
    assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-5


def test_query_cache_is_keyed_by_normalized_text(embedder):
    first = embedder.encode_query("Beyoncé  HALO!")
    assert embedder.encode_query("beyonce halo") is first
    assert not first.flags.writeable


def test_cache_is_bounded():
    small = Embedder(cache_size=2)
    for text in ["one", "two", "three", "four"]:
        small.encode_query(text)
    assert small.cache_info() == (2, 2)


def test_documents_match_queries_and_report_progress(embedder):
    seen: list[int] = []
    texts = [entity_text(entity) for entity in MINI_CATALOG]
    vectors = embedder.encode_documents(texts, batch_size=4, progress=seen.append)
    assert vectors.shape == (len(texts), 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert seen[-1] == len(texts)
    assert embedder.encode_documents([]).shape == (0, 384)


def test_entity_text_uses_every_descriptive_field():
    text = entity_text(MINI_CATALOG[0])
    for part in ("Shake It Off", "Taylor Swift", "1989", "pop", "happy", "haters"):
        assert part in text
