"""BEIR loader on the shared SciFact and NFCorpus collections (read in place, never copied)."""

from __future__ import annotations

from pathlib import Path

import pytest

from catalog import BeirCollection, CatalogError, load_beir, load_qrels, load_queries

DATASETS = Path("/work/shared/datasets")


def _folder(name: str) -> Path:
    folder = DATASETS / name
    if not (folder / "corpus.jsonl").is_file():
        pytest.skip(f"BEIR {name} not found at {folder}; the shared datasets folder is not mounted")
    return folder


@pytest.fixture(scope="module")
def scifact() -> BeirCollection:
    return load_beir(_folder("scifact"), split="test")


@pytest.fixture(scope="module")
def nfcorpus() -> BeirCollection:
    return load_beir(_folder("nfcorpus"), split="test")


def test_scifact_counts(scifact):
    assert scifact.name == "scifact"
    assert len(scifact.entities) == 5183
    assert len(scifact.queries) == 300
    assert sum(len(docs) for docs in scifact.qrels.values()) == 339
    assert set(scifact.queries) == set(scifact.qrels)


def test_nfcorpus_counts(nfcorpus):
    assert len(nfcorpus.entities) == 3633
    assert len(nfcorpus.queries) == 323
    assert sum(len(docs) for docs in nfcorpus.qrels.values()) == 12334
    grades = [grade for docs in nfcorpus.qrels.values() for grade in docs.values()]
    assert (grades.count(1), grades.count(2)) == (11758, 576)


def test_documents_are_entities(scifact):
    ids = {e.id for e in scifact.entities}
    assert len(ids) == len(scifact.entities)
    assert all(e.type == "document" and e.description for e in scifact.entities)
    judged = {doc_id for docs in scifact.qrels.values() for doc_id in docs}
    assert judged <= ids


def test_crlf_leaves_no_carriage_returns(scifact, nfcorpus):
    for collection in (scifact, nfcorpus):
        for query_id, docs in collection.qrels.items():
            assert "\r" not in query_id
            assert not any("\r" in doc_id for doc_id in docs)
        assert not any("\r" in query_id for query_id in collection.queries)


def test_other_splits_and_all_queries():
    folder = _folder("nfcorpus")
    train = load_qrels(folder, "train")
    assert len(train) == 2590 and sum(len(docs) for docs in train.values()) == 110575
    assert len(load_qrels(folder, "dev")) == 324
    assert len(load_queries(folder)) == 3237
    assert len(load_queries(_folder("scifact"))) == 1109


def test_unknown_split_names_the_available_ones():
    with pytest.raises(CatalogError, match="split: .*available splits: test, train"):
        load_qrels(_folder("scifact"), "dev")


def test_bad_qrels_grade_names_line_and_field(tmp_path):
    (tmp_path / "qrels").mkdir()
    (tmp_path / "qrels" / "test.tsv").write_bytes(b"query-id\tcorpus-id\tscore\r\nq1\td1\t1\r\nq1\td2\thigh\r\n")
    with pytest.raises(CatalogError, match=r"test\.tsv:3: score: expected an integer"):
        load_qrels(tmp_path, "test")


def test_small_collection_in_tmp(tmp_path):
    (tmp_path / "qrels").mkdir()
    (tmp_path / "corpus.jsonl").write_text(
        '{"_id": "d1", "title": "T1", "text": "one"}\n{"_id": "d2", "title": "", "text": "two"}\n')
    (tmp_path / "queries.jsonl").write_text('{"_id": "q1", "text": "first"}\n{"_id": "q2", "text": "second"}\n')
    (tmp_path / "qrels" / "test.tsv").write_bytes(b"query-id\tcorpus-id\tscore\r\nq1\td2\t2\r\n")
    collection = load_beir(tmp_path)
    assert collection.queries == {"q1": "first"}
    assert collection.qrels == {"q1": {"d2": 2}}
    assert [(e.id, e.title, e.description) for e in collection.entities] == [("d1", "T1", "one"), ("d2", "", "two")]


def test_qrels_query_missing_from_queries_is_reported(tmp_path):
    (tmp_path / "qrels").mkdir()
    (tmp_path / "corpus.jsonl").write_text('{"_id": "d1", "title": "T", "text": "x"}\n')
    (tmp_path / "queries.jsonl").write_text('{"_id": "q1", "text": "first"}\n')
    (tmp_path / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq9\td1\t1\n")
    with pytest.raises(CatalogError, match="queries: 1 query ids .*'q9'"):
        load_beir(tmp_path)
