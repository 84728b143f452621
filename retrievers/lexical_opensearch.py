"""BM25 over the catalog's text fields in OpenSearch: the scale-out twin of ``lexical_tantivy``.

Same fields, same boosts (``DEFAULT_BOOSTS``), same query understanding, same popularity prior, same
normalization. Differences, each because one request cannot ask for document frequencies first (and
OpenSearch prunes with block-max WAND, so common terms cost it little): fuzzy clauses go on every long
enough term (tantivy fuzzes only terms the index has never seen), common terms stay in the query
(tantivy leaves out terms in more than a quarter of the documents), and a phrase clause on the title
takes the place of tantivy's exact-whole-title term. Text is
indexed as ``normalize_query`` output and analyzed with ``ltrr_en`` (standard tokenizer, drop tokens of
40+ characters, lowercase, Snowball English (``porter2``) stemmer), the chain of tantivy's ``en_stem``.
``title`` and ``artist`` carry a ``.raw`` keyword subfield holding the whole normalized string.

The query never reaches a query parser (no ``query_string``): the normalized text contains only letters,
digits and spaces, and goes into ``match`` clauses. ``query_body`` builds::

    bool
      must:   bool.should (the recall set, what tantivy matches)
                match   <field>        unique query terms, operator OR, boost = boosts[field]
                match   title|artist   one per term of >= FUZZY_MIN_CHARS characters: fuzziness 1,
                                       prefix_length 1, transpositions; boost = boosts[field] * FUZZY_WEIGHT
                match_phrase title     2..MAX_QUERY_TERMS words; boost = boosts["title"] * PHRASE_WEIGHT
      should: query understanding (adds score to documents already matched, never adds documents)
                artist slot -> term  artist.raw = normalized slot value, boost = boosts["artist"] * SLOT_WEIGHT
                title slot  -> term  title.raw  = normalized slot value, boost = boosts["title"] * SLOT_WEIGHT
                genre slot  -> match genres (all words of the slot value), boost = boosts["genres"] * SLOT_WEIGHT
                mood slot   -> match moods (all words of the slot value),  boost = boosts["moods"] * SLOT_WEIGHT
                type slot   -> term  type = catalog type,                boost = TYPE_SLOT_BOOST
              popularity prior (popularity_prior > 0): range popularity >= t for each t in
                PRIOR_THRESHOLDS, boost = popularity_prior / PRIOR_STEPS

Scores are OpenSearch's BM25 sums, so they are not comparable with tantivy's numbers, only the ranking
logic is the same. Writes refresh before returning (``refresh="wait_for"``), so ``upsert``/``delete``
are searchable when they return.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from catalog.schema import Entity
from contracts import Hit, Query, Slot
from retrievers.lexical_tantivy import (
    FUZZY_FIELDS,
    FUZZY_MIN_CHARS,
    FUZZY_WEIGHT,
    MAX_QUERY_TERMS,
    PHRASE_WEIGHT,
    PRIOR_STEPS,
    PRIOR_THRESHOLDS,
    SLOT_WEIGHT,
    TEXT_FIELDS,
    TYPE_SLOT_BOOST,
    check_popularity_prior,
)
from retrievers.lexical_tantivy import _check_boosts as check_boosts
from retrievers.opensearch import OpenSearchIndex, client_for
from retrievers.text import normalize_query

logger = logging.getLogger(__name__)

ANALYZER = "ltrr_en"
MAX_TOKEN_CHARS = 39  # tantivy's remove_long(40) drops tokens of 40+ bytes
RAW_FIELDS = ("title", "artist")
_SLOT_TEXT_FIELD = {"genre": "genres", "mood": "moods"}
_SLOT_RAW_FIELD = {"artist": "artist", "title": "title"}


def index_mapping(shards: int = 1, replicas: int = 0) -> dict[str, Any]:
    """The index body: the ``ltrr_en`` analyzer and the entity fields."""
    text = {"type": "text", "analyzer": ANALYZER}
    properties: dict[str, Any] = {"id": {"type": "keyword"}, "type": {"type": "keyword"}}
    for field in TEXT_FIELDS:
        properties[field] = dict(text)
        if field in RAW_FIELDS:
            properties[field]["fields"] = {"raw": {"type": "keyword", "ignore_above": 512}}
    properties["popularity"] = {"type": "float"}
    return {
        "settings": {
            "index": {"number_of_shards": shards, "number_of_replicas": replicas},
            "analysis": {
                "filter": {
                    "ltrr_length": {"type": "length", "min": 1, "max": MAX_TOKEN_CHARS},
                    "ltrr_stemmer": {"type": "stemmer", "language": "porter2"},
                },
                "analyzer": {
                    ANALYZER: {
                        "type": "custom",
                        "tokenizer": "standard",
                        "filter": ["ltrr_length", "lowercase", "ltrr_stemmer"],
                    }
                },
            },
        },
        "mappings": {"dynamic": "strict", "properties": properties},
    }


def entity_document(entity: Entity) -> dict[str, Any]:
    """The ``_source`` of one entity: normalized text, as ``lexical_tantivy`` indexes it."""
    return {
        "id": entity.id,
        "type": entity.type,
        "title": normalize_query(entity.title),
        "artist": normalize_query(entity.artist),
        "album": normalize_query(entity.album),
        "genres": [normalize_query(genre) for genre in entity.genres],
        "moods": [normalize_query(mood) for mood in entity.moods],
        "description": normalize_query(entity.description),
        "popularity": float(entity.popularity),
    }


def _constant(filter_clause: dict[str, Any], boost: float) -> dict[str, Any]:
    return {"constant_score": {"filter": filter_clause, "boost": boost}}


def slot_clauses(slots: Sequence[Slot], boosts: Mapping[str, float]) -> list[dict[str, Any]]:
    """Score-only clauses for recognized slots (see the module docstring); unknown kinds are skipped."""
    clauses: list[dict[str, Any]] = []
    for slot in slots:
        if slot.kind == "type":
            clauses.append(_constant({"term": {"type": slot.value}}, TYPE_SLOT_BOOST))
            continue
        value = normalize_query(slot.value)
        if not value:
            continue
        if slot.kind in _SLOT_RAW_FIELD:
            field = _SLOT_RAW_FIELD[slot.kind]
            if boosts[field] > 0:
                clauses.append(_constant({"term": {f"{field}.raw": value}}, boosts[field] * SLOT_WEIGHT))
        elif slot.kind in _SLOT_TEXT_FIELD:
            field = _SLOT_TEXT_FIELD[slot.kind]
            if boosts[field] > 0:
                clauses.append(_constant({"match": {field: {"query": value, "operator": "and"}}}, boosts[field] * SLOT_WEIGHT))
    return clauses


def prior_clauses(popularity_prior: float) -> list[dict[str, Any]]:
    """Score-only range clauses of the popularity prior (none when ``popularity_prior`` is 0)."""
    if popularity_prior <= 0:
        return []
    step = popularity_prior / PRIOR_STEPS
    return [_constant({"range": {"popularity": {"gte": threshold}}}, step) for threshold in PRIOR_THRESHOLDS]


def lexical_clauses(normalized: str, boosts: Mapping[str, float]) -> list[dict[str, Any]]:
    """The recall clauses of ``normalized`` text (empty for text with no terms)."""
    words = normalized.split()[: MAX_QUERY_TERMS * 2]
    unique = list(dict.fromkeys(words))[:MAX_QUERY_TERMS]
    if not unique:
        return []
    terms = " ".join(unique)
    clauses: list[dict[str, Any]] = [
        {"match": {field: {"query": terms, "operator": "or", "boost": boost}}}
        for field, boost in boosts.items() if boost > 0
    ]
    for term in unique:
        if FUZZY_MIN_CHARS <= len(term) <= MAX_TOKEN_CHARS:
            for field in FUZZY_FIELDS:
                if boosts[field] > 0:
                    clauses.append({"match": {field: {
                        "query": term, "fuzziness": 1, "prefix_length": 1, "fuzzy_transpositions": True,
                        "max_expansions": 50, "boost": boosts[field] * FUZZY_WEIGHT,
                    }}})
    if 2 <= len(words) <= MAX_QUERY_TERMS and boosts["title"] > 0:
        clauses.append({"match_phrase": {"title": {"query": " ".join(words),
                                                   "boost": boosts["title"] * PHRASE_WEIGHT}}})
    return clauses


class OpenSearchLexicalRetriever:
    """``Retriever`` named ``"lexical"``: BM25 with field boosts over an OpenSearch index.

    ``client_or_url`` is an ``opensearchpy.OpenSearch`` client or a URL (``connect`` pings it). The index
    is created by ``build`` (or on the first ``upsert``) from ``mapping()``.
    """

    name = "lexical"

    def __init__(self, client_or_url: Any, index: str = "ltrr-entities",
                 boosts: Mapping[str, float] | None = None, timeout: float = 10.0,
                 shards: int = 1, replicas: int = 0, popularity_prior: float = 0.0) -> None:
        self.boosts = check_boosts(boosts)
        self.popularity_prior = check_popularity_prior(popularity_prior)
        self.shards = shards
        self.replicas = replicas
        self._index = OpenSearchIndex(client_for(client_or_url, timeout), index)
        self.index = self._index.index

    def mapping(self) -> dict[str, Any]:
        return index_mapping(self.shards, self.replicas)

    def query_body(self, query: Query, k: int) -> dict[str, Any]:
        """The search body for ``query`` (``match_none`` when its text has no terms)."""
        normalized = query.normalized or normalize_query(query.text)
        clauses = lexical_clauses(normalized, self.boosts)
        if not clauses:
            return {"size": 0, "query": {"match_none": {}}}
        boolean: dict[str, Any] = {"must": [{"bool": {"should": clauses, "minimum_should_match": 1}}]}
        understood = slot_clauses(query.slots, self.boosts) + prior_clauses(self.popularity_prior)
        if understood:
            boolean["should"] = understood
        return {"size": max(int(k), 0), "_source": False, "track_total_hits": False, "query": {"bool": boolean}}

    # ----------------------------------------------------------------- writing

    def _index_actions(self, entities: Sequence[Entity]) -> Iterator[dict[str, Any]]:
        for entity in entities:
            yield {"_op_type": "index", "_index": self.index, "_id": entity.id, "_source": entity_document(entity)}

    def build(self, entities: Sequence[Entity], progress: Callable[[int], None] | None = None) -> None:
        """Replace the whole index with ``entities`` (last one wins on duplicate ids)."""
        unique = list({entity.id: entity for entity in entities}.values())
        self._index.recreate(self.mapping())
        chunk = 1000
        for start in range(0, len(unique), chunk):
            self._index.bulk(self._index_actions(unique[start:start + chunk]))
            if progress is not None:
                progress(min(start + chunk, len(unique)))
        self._index.refresh()
        logger.info("lexical OpenSearch index %s built with %d entities", self.index, len(unique))

    def upsert(self, entities: Sequence[Entity]) -> None:
        if not entities:
            return
        self._index.ensure(self.mapping())
        unique = list({entity.id: entity for entity in entities}.values())
        self._index.bulk(self._index_actions(unique), refresh="wait_for")

    def delete(self, ids: Sequence[str]) -> None:
        self._index.delete_ids(ids)

    def refresh(self) -> None:
        """Nothing to do: every process searches the same server, and writes wait for its refresh."""

    def drop(self) -> None:
        """Delete the whole index."""
        self._index.drop()

    # ----------------------------------------------------------------- reading

    def search(self, query: Query, k: int) -> list[Hit]:
        if k <= 0:
            return []
        body = self.query_body(query, k)
        if "match_none" in body["query"]:
            return []
        return self._index.hits(body)

    def __len__(self) -> int:
        return self._index.count()

    def health(self) -> str:
        return self._index.health()
