"""FAISS dense retrieval specifics: semantics, flat vs HNSW, tombstones, persistence, artifact errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from retriever_fixtures import MINI_CATALOG, NEWCOMER

from contracts import ArtifactError, ConfigError
from retrievers import build_query
from retrievers.dense_faiss import FaissDenseRetriever
from retrievers.embedding import entity_text


@pytest.fixture(params=["flat", "hnsw"])
def dense(request, tmp_path, embedder):
    retriever = FaissDenseRetriever(embedder, tmp_path / "dense", kind=request.param)
    retriever.build(MINI_CATALOG)
    return retriever


def ranks(retriever, text):
    return {hit.entity_id: hit.rank for hit in retriever.search(build_query(text), len(MINI_CATALOG))}


def test_sad_rainy_day_finds_the_melancholic_rain_song(dense):
    rank_of = ranks(dense, "sad songs for a rainy day")
    assert rank_of["t-rain"] == 1
    for unrelated in ("t-party", "t-gym", "t-beach", "pc-tech"):
        assert rank_of["t-rain"] < rank_of[unrelated]


@pytest.mark.parametrize(
    ("text", "entity_id"),
    [
        ("music to lift weights to", "t-gym"),
        ("tropical summer vacation", "t-beach"),
        ("tech startup news", "pc-tech"),
        ("relaxing saxophone", "pl-chill"),
    ],
)
def test_paraphrases_find_their_entity(dense, text, entity_id):
    assert ranks(dense, text)[entity_id] == 1


def test_scores_are_cosine_similarities(dense, embedder):
    hits = dense.search(build_query("club dance music"), 3)
    document = embedder.encode_documents([entity_text(MINI_CATALOG[5])])[0]
    expected = float(np.dot(embedder.encode_query("club dance music"), document))
    assert hits[0].entity_id == "t-party"
    assert hits[0].score == pytest.approx(expected, abs=1e-5)
    assert all(-1.0 - 1e-6 <= hit.score <= 1.0 + 1e-6 for hit in hits)


def test_search_vector_matches_search(dense, embedder):
    vector = embedder.encode_query("heavy metal")
    assert dense.search_vector(vector, 4) == dense.search(build_query("heavy metal"), 4)
    with pytest.raises(ConfigError, match="dimension"):
        dense.search_vector(np.zeros(7, dtype=np.float32), 3)


def test_hnsw_delete_keeps_a_tombstone_and_over_fetches(tmp_path, embedder):
    retriever = FaissDenseRetriever(embedder, tmp_path / "h", kind="hnsw")
    retriever.build(MINI_CATALOG)
    retriever.delete(["t-rain", "t-halo"])
    retriever.upsert([NEWCOMER, NEWCOMER])
    retriever.upsert([NEWCOMER])  # replacing tombstones the old vector too
    hits = retriever.search(build_query("sad songs for a rainy day"), len(MINI_CATALOG) + 5)
    ids = [hit.entity_id for hit in hits]
    assert "t-rain" not in ids and "t-halo" not in ids
    assert ids.count(NEWCOMER.id) == 1
    assert len(ids) == len(retriever) == len(MINI_CATALOG) - 1
    assert retriever.health() == "ok"


def test_save_and_reopen_gives_the_same_results(dense, embedder):
    dense.upsert([NEWCOMER])
    dense.delete(["t-gym"])
    queries = ["sad songs for a rainy day", "quokka", "taylor swift", "loud"]
    before = {q: dense.search(build_query(q), 8) for q in queries}
    dense.save()
    manifest = json.loads((dense.index_dir / "manifest.json").read_text())
    assert manifest["model"] == "all-MiniLM-L6-v2"
    assert (manifest["dim"], manifest["kind"], manifest["count"]) == (384, dense.kind, len(MINI_CATALOG))

    reopened = FaissDenseRetriever.open(embedder, dense.index_dir)
    assert reopened.kind == dense.kind
    after = {q: reopened.search(build_query(q), 8) for q in queries}
    for q in queries:
        assert [h.entity_id for h in after[q]] == [h.entity_id for h in before[q]]
        assert [h.score for h in after[q]] == pytest.approx([h.score for h in before[q]], abs=1e-6)
    reopened.upsert([MINI_CATALOG[6]])  # a reopened index stays writable
    assert ranks(reopened, "music to lift weights to")["t-gym"] == 1


def test_open_missing_index_says_how_to_build_it(tmp_path, embedder):
    with pytest.raises(ArtifactError, match="ltrr index"):
        FaissDenseRetriever.open(embedder, tmp_path / "empty")


def test_open_with_mismatched_dimension(tmp_path, embedder):
    retriever = FaissDenseRetriever(embedder, tmp_path / "d")
    retriever.build(MINI_CATALOG[:3])
    retriever.save()
    manifest_path = tmp_path / "d" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["dim"] = 768
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="768"):
        FaissDenseRetriever.open(embedder, tmp_path / "d")


def test_empty_index_returns_nothing(tmp_path, embedder):
    retriever = FaissDenseRetriever(embedder, tmp_path / "e")
    assert retriever.search(build_query("anything"), 5) == []
    retriever.build([])
    assert retriever.search(build_query("anything"), 5) == []


@pytest.mark.parametrize(
    "kwargs", [{"kind": "ivf"}, {"kind": "hnsw", "hnsw_m": 1}, {"ef_search": 0}]
)
def test_bad_parameters_are_config_errors(tmp_path, embedder, kwargs):
    with pytest.raises(ConfigError):
        FaissDenseRetriever(embedder, tmp_path / "x", **kwargs)
