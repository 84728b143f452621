"""OpenSearch retrievers without a cluster: index mappings, query bodies, URL and connection errors.

The retrievers get a real ``opensearchpy.OpenSearch`` client aimed at a closed port; building a client
does not connect and nothing here sends a request, except the connection tests, which expect failure.
The live behaviour is in the shared contract suite (``test_retriever_contract.py``).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest
from retriever_fixtures import MINI_CATALOG

from contracts import BackendUnavailable, ConfigError, Query, Slot
from retrievers import Gazetteer, Retriever, build_query
from retrievers.dense_opensearch import OpenSearchDenseRetriever
from retrievers.lexical_opensearch import OpenSearchLexicalRetriever, entity_document
from retrievers.lexical_tantivy import (
    DEFAULT_BOOSTS,
    PRIOR_STEPS,
    PRIOR_THRESHOLDS,
    TEXT_FIELDS,
)
from retrievers.opensearch import connect

opensearchpy = pytest.importorskip("opensearchpy", reason="opensearch-py is not installed; `pip install opensearch-py`")

CLOSED_PORT_URL = "http://127.0.0.1:1"
HOSTILE = [
    'AND OR ( " : ^ ~ [ ] \\ *', "title:(halo AND", '"unclosed phrase', "halo^99 ~2 -beyonce +", "[a TO z}",
    "/regex.*/", "\\", "*", "🎵🔥💃", "x" * 500, "love " * 100, "\x00\x07\t\n", "", "   ", "ñ" * 500,
    "{\"query\": {\"match_all\": {}}}", "_all:* OR id:*", "halo\" OR \"1\"=\"1",
]


@pytest.fixture(scope="module")
def client():
    return opensearchpy.OpenSearch(hosts=[CLOSED_PORT_URL])


@pytest.fixture
def lexical(client):
    return OpenSearchLexicalRetriever(client, index="ltrr-test-entities")


@pytest.fixture
def dense(client, embedder):
    return OpenSearchDenseRetriever(client, embedder, index="ltrr-test-vectors")


def clauses_of(body):
    return body["query"]["bool"]["must"][0]["bool"]["should"]


def field_matches(body):
    """``{field: boost}`` of the plain (non-fuzzy) match clauses."""
    found = {}
    for clause in clauses_of(body):
        if "match" in clause:
            (field, spec), = clause["match"].items()
            if "fuzziness" not in spec:
                found[field] = spec["boost"]
    return found


def fuzzy_matches(body):
    """``{(field, term): boost}`` of the fuzzy match clauses."""
    found = {}
    for clause in clauses_of(body):
        (field, spec), = clause.get("match", {"": {}}).items()
        if "fuzziness" in spec:
            assert (spec["fuzziness"], spec["prefix_length"]) == (1, 1)
            found[(field, spec["query"])] = spec["boost"]
    return found


def phrases(body):
    return [clause["match_phrase"]["title"] for clause in clauses_of(body) if "match_phrase" in clause]


# ----------------------------------------------------------------- lexical mapping


def test_lexical_mapping_has_the_tantivy_fields_and_analyzer(lexical):
    mapping = lexical.mapping()
    properties = mapping["mappings"]["properties"]
    assert set(properties) == {"id", "type", *TEXT_FIELDS, "popularity"}
    assert properties["id"] == {"type": "keyword"} and properties["type"] == {"type": "keyword"}
    assert properties["popularity"] == {"type": "float"}
    for field in TEXT_FIELDS:
        assert properties[field]["type"] == "text" and properties[field]["analyzer"] == "ltrr_en"
    assert {f for f in TEXT_FIELDS if "fields" in properties[f]} == {"title", "artist"}
    assert properties["title"]["fields"]["raw"]["type"] == "keyword"
    assert properties["artist"]["fields"]["raw"]["type"] == "keyword"
    analysis = mapping["settings"]["analysis"]
    chain = analysis["analyzer"]["ltrr_en"]
    assert chain["tokenizer"] == "standard"
    assert [analysis["filter"].get(name, {"type": name})["type"] for name in chain["filter"]] == [
        "length", "lowercase", "stemmer"]
    assert analysis["filter"]["ltrr_stemmer"]["language"] in ("english", "porter2")
    assert analysis["filter"]["ltrr_length"]["max"] == 39  # tantivy remove_long(40)
    json.dumps(mapping)


def test_documents_hold_normalized_text():
    halo = next(e for e in MINI_CATALOG if e.id == "t-halo")
    document = entity_document(halo)
    assert document["artist"] == "beyonce" and document["album"] == "i am sasha fierce"
    assert document["genres"] == ["r b", "pop"] and document["popularity"] == 0.9


# ----------------------------------------------------------------- lexical query bodies


def test_field_boosts_are_tantivys_default_boosts(lexical):
    body = lexical.query_body(build_query("halo"), 10)
    assert body["size"] == 10
    assert field_matches(body) == dict(DEFAULT_BOOSTS)


def test_custom_boosts_are_used_and_zero_drops_the_field(client):
    retriever = OpenSearchLexicalRetriever(client, index="ltrr-x", boosts={"title": 5.0, "description": 0})
    boosts = field_matches(retriever.query_body(build_query("halo"), 5))
    assert boosts["title"] == 5.0 and "description" not in boosts and boosts["artist"] == DEFAULT_BOOSTS["artist"]


@pytest.mark.parametrize("boosts", [{"lyrics": 1.0}, {"title": -1}, {"title": "high"}])
def test_bad_boosts_raise_config_error(client, boosts):
    with pytest.raises(ConfigError, match="boosts"):
        OpenSearchLexicalRetriever(client, boosts=boosts)


def test_fuzzy_clauses_only_for_terms_of_four_or_more_characters(lexical):
    body = lexical.query_body(build_query("ab cat swif tayler " + "x" * 45), 10)
    assert fuzzy_matches(body) == {
        ("title", "swif"): 3.0 * 0.3, ("artist", "swif"): 2.5 * 0.3,
        ("title", "tayler"): 3.0 * 0.3, ("artist", "tayler"): 2.5 * 0.3,
    }


def test_phrase_clause_only_for_multi_word_queries(lexical):
    assert phrases(lexical.query_body(build_query("Halo"), 5)) == []
    assert phrases(lexical.query_body(build_query("Shake It Off!"), 5)) == [{"query": "shake it off", "boost": 3.0}]


def test_no_slots_means_no_understanding_clauses(lexical):
    body = lexical.query_body(Query(text="taylor swift", normalized="taylor swift"), 5)
    assert "should" not in body["query"]["bool"]


def test_slot_clauses_follow_the_recognized_slots(lexical):
    gazetteer = Gazetteer.from_entities(MINI_CATALOG)
    query = build_query("Taylor Swift indie folk wistful songs", gazetteer=gazetteer)
    assert {slot.kind for slot in query.slots} == {"artist", "genre", "mood", "type"}
    should = lexical.query_body(query, 5)["query"]["bool"]["should"]
    assert constant({"term": {"artist.raw": "taylor swift"}}, 2.5) in should
    assert constant({"match": {"genres": {"query": "indie folk", "operator": "and"}}}, 1.2) in should
    assert constant({"match": {"moods": {"query": "wistful", "operator": "and"}}}, 1.2) in should
    assert constant({"term": {"type": "track"}}, 0.5) in should


def test_title_slot_is_an_exact_term_on_title_raw(lexical):
    query = Query(text="Halo", normalized="halo", slots=(Slot(kind="title", value="Halo", matched="halo"),))
    should = lexical.query_body(query, 5)["query"]["bool"]["should"]
    assert should == [constant({"term": {"title.raw": "halo"}}, 3.0)]


def constant(filter_clause, boost):
    return {"constant_score": {"filter": filter_clause, "boost": boost}}


def test_popularity_prior_is_off_by_default_and_adds_log_spaced_range_clauses(client):
    query = Query(text="halo", normalized="halo")
    assert "should" not in OpenSearchLexicalRetriever(client).query_body(query, 5)["query"]["bool"]
    should = OpenSearchLexicalRetriever(client, popularity_prior=2.0).query_body(query, 5)["query"]["bool"]["should"]
    assert should == [constant({"range": {"popularity": {"gte": t}}}, 2.0 / PRIOR_STEPS) for t in PRIOR_THRESHOLDS]
    assert PRIOR_THRESHOLDS[0] > 0.001 and PRIOR_THRESHOLDS[-1] == pytest.approx(1.0)
    with pytest.raises(ConfigError, match="popularity_prior"):
        OpenSearchLexicalRetriever(client, popularity_prior=-0.5)


@pytest.mark.parametrize("text", HOSTILE, ids=lambda t: repr(t[:20]))
def test_hostile_queries_make_plain_json_bodies(lexical, text):
    body = lexical.query_body(build_query(text), 10)
    encoded = json.dumps(body, ensure_ascii=False)
    assert json.loads(encoded) == body
    assert "query_string" not in encoded and "match_all" not in encoded and "regexp" not in encoded
    if "match_none" in body["query"]:
        assert body["size"] == 0 and lexical.search(build_query(text), 10) == []
        return
    texts = [spec["query"] for clause in clauses_of(body) for spec in next(iter(clause.values())).values()]
    assert texts and all(re.fullmatch(r"[^\W_]+( [^\W_]+)*", t) for t in texts), texts
    assert len(clauses_of(body)) <= len(TEXT_FIELDS) + 2 * 32 + 1


def test_blank_query_needs_no_cluster(lexical):
    assert lexical.query_body(build_query("  ?! "), 5) == {"size": 0, "query": {"match_none": {}}}
    assert lexical.search(build_query("?!"), 5) == []
    assert lexical.search(build_query("halo"), 0) == []


# ----------------------------------------------------------------- dense


def test_dense_mapping_is_an_hnsw_knn_vector_of_the_embedder_dimension(dense, embedder):
    mapping = dense.mapping()
    assert mapping["settings"]["index"]["knn"] is True
    assert mapping["settings"]["index"]["knn.algo_param.ef_search"] == 128
    field = mapping["mappings"]["properties"]["vector"]
    assert field["type"] == "knn_vector" and field["dimension"] == embedder.dim == 384
    method = field["method"]
    assert method["name"] == "hnsw" and method["space_type"] in ("innerproduct", "cosinesimil")
    assert method["engine"] in ("lucene", "faiss")
    assert method["parameters"] == {"m": 32, "ef_construction": 200}
    json.dumps(mapping)


def test_knn_body_carries_k_and_the_query_vector(dense, embedder):
    vector = embedder.encode_query("sad piano ballad")
    body = dense.query_body(vector, 7)
    knn = body["query"]["knn"]["vector"]
    assert body["size"] == 7 and knn["k"] == 7 and len(knn["vector"]) == 384
    assert np.allclose(knn["vector"], vector) and all(type(x) is float for x in knn["vector"])
    assert json.loads(json.dumps(body)) == body


def test_knn_body_rejects_a_vector_of_the_wrong_dimension(dense):
    with pytest.raises(ConfigError, match="vector: expected dimension 384, got 3"):
        dense.query_body(np.ones(3, dtype=np.float32), 5)


def test_dense_rejects_bad_hnsw_parameters(client, embedder):
    with pytest.raises(ConfigError, match="hnsw_m"):
        OpenSearchDenseRetriever(client, embedder, hnsw_m=1)


# ----------------------------------------------------------------- protocol, connection, configuration


def test_both_satisfy_the_retriever_protocol(lexical, dense):
    assert isinstance(lexical, Retriever) and lexical.name == "lexical"
    assert isinstance(dense, Retriever) and dense.name == "dense"


@pytest.mark.parametrize("url", ["localhost:9200", "ftp://localhost:9200", "http://", "", "http://host:99999"])
def test_malformed_url_is_a_config_error(url):
    with pytest.raises(ConfigError, match="^url: expected a URL like http://localhost:9200"):
        connect(url)


def test_unreachable_cluster_is_backend_unavailable():
    with pytest.raises(BackendUnavailable) as raised:
        connect(CLOSED_PORT_URL, timeout=2)
    message = str(raised.value)
    assert message.startswith(f"cannot reach OpenSearch at {CLOSED_PORT_URL} (")
    assert message.endswith("or fix its URL")


def test_constructing_from_an_unreachable_url_raises(embedder):
    with pytest.raises(BackendUnavailable):
        OpenSearchLexicalRetriever(CLOSED_PORT_URL, timeout=2)
    with pytest.raises(BackendUnavailable):
        OpenSearchDenseRetriever(CLOSED_PORT_URL, embedder, timeout=2)


def test_health_reports_an_unreachable_cluster(client):
    status = OpenSearchLexicalRetriever(client, index="ltrr-health").health()
    assert status != "ok" and "ltrr-health" in status


@pytest.mark.parametrize("index", ["Upper", "_hidden", "a b", "a/b", "a*", ""])
def test_bad_index_name_is_a_config_error(client, index):
    with pytest.raises(ConfigError, match="index: "):
        OpenSearchLexicalRetriever(client, index=index)


def test_wrong_client_type_is_a_config_error():
    with pytest.raises(ConfigError, match="client_or_url"):
        OpenSearchLexicalRetriever(42)


def test_importing_the_modules_does_not_import_opensearchpy():
    code = ("import sys, retrievers.lexical_opensearch, retrievers.dense_opensearch; "
            "assert 'opensearchpy' not in sys.modules, 'imported at module import'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=str(__import__("pathlib").Path(__file__).parents[2]))
