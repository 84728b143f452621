"""BM25 over the catalog's text fields with tantivy (an on-disk index).

Fields are indexed from ``normalize_query``-normalized text with tantivy's ``en_stem`` analyzer. The query
is never handed to tantivy's query parser: it is normalized (which removes every syntax character),
analyzed with the same analyzer, and assembled as a boolean OR of boosted term queries per field
(tantivy's multi-field BM25, as its query parser would build it), plus

* fuzzy clauses (one edit, terms of at least ``FUZZY_MIN_CHARS`` characters) on title and artist at
  ``FUZZY_WEIGHT`` of the field boost, only for a term that field has never seen (a correctly spelled
  term gains nothing from its neighbours, and on document collections they cost nDCG), so "tayler swif"
  still finds Taylor Swift (fuzzy matches score a constant per clause in tantivy, so they rank below
  real BM25 matches of the same field);
* a title phrase clause for multi-word queries, so an exact title outranks scattered term matches.

Those clauses decide which documents match. Two kinds of constant-score clauses are added on top (they
never bring in a document the text did not match):

* query understanding: a recognized artist or title slot adds the field's boost to the entities whose
  whole normalized artist / title equals the slot's catalog spelling (so a misspelled artist the gazetteer corrected
  ranks that artist's entities first), genre and mood slots boost entities with that tag, a type word
  ("playlist") boosts entities of that type;
* an optional popularity prior (``popularity_prior`` > 0): ``PRIOR_STEPS`` range clauses on the
  popularity fast field at log-spaced thresholds from 0.001 to 1, each worth ``popularity_prior /
  PRIOR_STEPS``, so an entity gains about ``popularity_prior * (log10(popularity) + 3) / 3`` and the
  more popular of two equal-text entities ranks first.

One ``IndexWriter`` is opened lazily on the first write and kept; every write commits and reloads the
reader, so changes are searchable when ``upsert``/``delete`` return.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from catalog.schema import Entity
from contracts import ArtifactError, ConfigError, Hit, Query, Slot
from retrievers.text import normalize_query

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 2
MANIFEST = "manifest.json"
TEXT_FIELDS = ("title", "artist", "album", "genres", "moods", "description")
DEFAULT_BOOSTS: Mapping[str, float] = {
    "title": 3.0, "artist": 2.5, "album": 1.5, "genres": 1.2, "moods": 1.2, "description": 1.0,
}
# Collections of documents (abstracts, articles) weigh title and text equally, the multifield
# convention of Anserini's BEIR baselines; the catalog defaults above favour short entity names.
DOCUMENT_BOOSTS: Mapping[str, float] = {field: 1.0 for field in DEFAULT_BOOSTS}
FUZZY_FIELDS = ("title", "artist")
FUZZY_WEIGHT = 0.3
FUZZY_MIN_CHARS = 4
PHRASE_WEIGHT = 1.0
RAW_FIELDS = ("title", "artist")  # also indexed whole, as one term, in ``<field>_raw``
SLOT_WEIGHT = 1.0
TYPE_SLOT_BOOST = 0.5
_SLOT_TAG_FIELD = {"genre": "genres", "mood": "moods"}
PRIOR_STEPS = 8
PRIOR_THRESHOLDS = tuple(10 ** (-3 + 3 * step / PRIOR_STEPS) for step in range(1, PRIOR_STEPS + 1))
MAX_QUERY_TERMS = 32
_COMMIT_EVERY = 50_000


def _tantivy() -> Any:
    try:
        import tantivy
    except ImportError as error:
        raise ConfigError("lexical retrieval needs tantivy; `pip install tantivy`") from error
    return tantivy


def _schema() -> Any:
    tantivy = _tantivy()
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("id", stored=True, tokenizer_name="raw")
    builder.add_text_field("type", stored=True, tokenizer_name="raw")
    for field in TEXT_FIELDS:
        builder.add_text_field(field, stored=False, tokenizer_name="en_stem")
    for field in RAW_FIELDS:
        builder.add_text_field(f"{field}_raw", stored=False, tokenizer_name="raw")
    builder.add_float_field("popularity", stored=True, fast=True)
    return builder.build()


def _check_boosts(boosts: Mapping[str, float] | None) -> dict[str, float]:
    merged = dict(DEFAULT_BOOSTS)
    for field, boost in (boosts or {}).items():
        if field not in DEFAULT_BOOSTS:
            raise ConfigError(f"boosts: unknown field {field!r}; use one of {', '.join(TEXT_FIELDS)}")
        if not isinstance(boost, (int, float)) or boost < 0:
            raise ConfigError(f"boosts.{field}: expected a number >= 0, got {boost!r}")
        merged[field] = float(boost)
    return merged


def check_popularity_prior(popularity_prior: float) -> float:
    if isinstance(popularity_prior, bool) or not isinstance(popularity_prior, (int, float)) or popularity_prior < 0:
        raise ConfigError(f"popularity_prior: expected a number >= 0 (0 switches the prior off), got {popularity_prior!r}")
    return float(popularity_prior)


def boosts_for(entities: Sequence[Entity]) -> dict[str, float]:
    """Field boosts for a catalog: ``DOCUMENT_BOOSTS`` when every entity is a document, else ``DEFAULT_BOOSTS``."""
    if entities and all(entity.type == "document" for entity in entities):
        return dict(DOCUMENT_BOOSTS)
    return dict(DEFAULT_BOOSTS)


class TantivyLexicalRetriever:
    """``Retriever`` named ``"lexical"``: BM25 with field boosts over a tantivy index in ``index_dir``.

    The constructor opens the index in ``index_dir`` or creates an empty one; ``open`` insists that a
    built index is there.
    """

    name = "lexical"

    def __init__(self, index_dir: Path | str, boosts: Mapping[str, float] | None = None,
                 heap_size: int = 64_000_000, popularity_prior: float = 0.0) -> None:
        tantivy = _tantivy()
        self.popularity_prior = check_popularity_prior(popularity_prior)
        self.index_dir = Path(index_dir)
        self.boosts = _check_boosts(boosts)
        self._boosts_given = boosts is not None
        self.heap_size = heap_size
        try:
            self.index_dir.mkdir(parents=True, exist_ok=True)
            self._index = tantivy.Index(_schema(), path=str(self.index_dir), reuse=True)
        except (OSError, ValueError) as error:
            raise ArtifactError(
                f"index_dir: cannot open a lexical index at {self.index_dir} ({error}); "
                "delete the directory and run `ltrr index` to rebuild it"
            ) from error
        self._schema = self._index.schema
        self._analyzer = (
            tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
            .filter(tantivy.Filter.remove_long(40))
            .filter(tantivy.Filter.lowercase())
            .filter(tantivy.Filter.stemmer("english"))
            .build()
        )
        self._writer: Any = None
        self._lock = threading.Lock()
        self._index.reload()

    @classmethod
    def open(cls, index_dir: Path | str, boosts: Mapping[str, float] | None = None,
             popularity_prior: float = 0.0) -> TantivyLexicalRetriever:
        """Open an index written by ``build``; ``ArtifactError`` when it is missing or incompatible."""
        index_dir = Path(index_dir)
        manifest_path = index_dir / MANIFEST
        if not manifest_path.is_file() or not _tantivy().Index.exists(str(index_dir)):
            raise ArtifactError(f"index_dir: no lexical index at {index_dir}; run `ltrr index` to build it")
        try:
            manifest = json.loads(manifest_path.read_text())
        except (OSError, ValueError) as error:
            raise ArtifactError(f"index_dir: unreadable {manifest_path} ({error}); run `ltrr index` to rebuild") from error
        if manifest.get("schema_version") != SCHEMA_VERSION:
            raise ArtifactError(
                f"index_dir: lexical index at {index_dir} has schema_version {manifest.get('schema_version')!r}, "
                f"this code reads {SCHEMA_VERSION}; run `ltrr index` to rebuild it"
            )
        return cls(index_dir, boosts=boosts if boosts is not None else manifest.get("boosts"),
                   popularity_prior=popularity_prior)

    # ----------------------------------------------------------------- writing

    def _document(self, entity: Entity) -> Any:
        tantivy = _tantivy()
        title, artist = normalize_query(entity.title), normalize_query(entity.artist)
        return tantivy.Document(
            id=entity.id,
            type=entity.type,
            title=title,
            title_raw=title,
            artist=artist,
            artist_raw=artist,
            album=normalize_query(entity.album),
            genres=[normalize_query(g) for g in entity.genres] or [""],
            moods=[normalize_query(m) for m in entity.moods] or [""],
            description=normalize_query(entity.description),
            popularity=float(entity.popularity),
        )

    def _writer_locked(self) -> Any:
        if self._writer is None:
            try:
                self._writer = self._index.writer(heap_size=self.heap_size, num_threads=1)
            except ValueError as error:
                raise ArtifactError(
                    f"index_dir: cannot write the lexical index at {self.index_dir} ({error}); "
                    "another process holds its writer lock, stop it or write through it"
                ) from error
        return self._writer

    def _commit_locked(self) -> None:
        self._writer.commit()
        self._index.reload()
        self._write_manifest()

    def _write_manifest(self) -> None:
        manifest = {
            "kind": "tantivy",
            "schema_version": SCHEMA_VERSION,
            "fields": list(TEXT_FIELDS),
            "count": self._index.searcher().num_docs,
            "boosts": dict(self.boosts),
        }
        (self.index_dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")

    def build(self, entities: Sequence[Entity], progress: Callable[[int], None] | None = None) -> None:
        """Replace the whole index with ``entities`` (last one wins on duplicate ids)."""
        unique = {entity.id: entity for entity in entities}
        if not self._boosts_given:
            self.boosts = boosts_for(list(unique.values()))
        with self._lock:
            writer = self._writer_locked()
            writer.delete_all_documents()
            for done, entity in enumerate(unique.values(), start=1):
                writer.add_document(self._document(entity))
                if done % _COMMIT_EVERY == 0:
                    writer.commit()
                if progress is not None and (done % 1000 == 0 or done == len(unique)):
                    progress(done)
            self._commit_locked()
        logger.info("lexical index built at %s with %d entities", self.index_dir, len(unique))

    def upsert(self, entities: Sequence[Entity]) -> None:
        if not entities:
            return
        with self._lock:
            writer = self._writer_locked()
            for entity in {e.id: e for e in entities}.values():
                writer.delete_documents_by_term("id", entity.id)
                writer.add_document(self._document(entity))
            self._commit_locked()

    def delete(self, ids: Sequence[str]) -> None:
        if not ids:
            return
        with self._lock:
            writer = self._writer_locked()
            for entity_id in set(ids):
                writer.delete_documents_by_term("id", entity_id)
            self._commit_locked()

    def close(self) -> None:
        """Release the writer lock (waits for background merges)."""
        with self._lock:
            if self._writer is not None:
                self._writer.wait_merging_threads()
                self._writer = None

    # ----------------------------------------------------------------- reading

    def _terms(self, normalized: str) -> list[str]:
        return self._analyzer.analyze(normalized)[: MAX_QUERY_TERMS * 2]

    def _query(self, normalized: str, slots: Sequence[Slot], searcher: Any) -> Any:
        recall = self._recall_query(normalized, searcher)
        if recall is None:
            return None
        tantivy = _tantivy()
        score_only = self._slot_clauses(slots) + self._prior_clauses()
        if not score_only:
            return recall
        should = tantivy.Occur.Should
        return tantivy.Query.boolean_query([(tantivy.Occur.Must, recall), *((should, clause) for clause in score_only)])

    def _recall_query(self, normalized: str, searcher: Any) -> Any:
        tantivy = _tantivy()
        Q, should = tantivy.Query, tantivy.Occur.Should
        analyzed = self._terms(normalized)
        unique_terms = list(dict.fromkeys(analyzed))[:MAX_QUERY_TERMS]
        clauses = []
        for term in unique_terms:
            for field, boost in self.boosts.items():
                if boost > 0:
                    clauses.append((should, Q.boost_query(Q.term_query(self._schema, field, term), boost)))
            if len(term) < FUZZY_MIN_CHARS:
                continue
            for field in FUZZY_FIELDS:
                if self.boosts[field] > 0 and searcher.doc_freq(field, term) == 0:
                    fuzzy = Q.fuzzy_term_query(self._schema, field, term, distance=1, transposition_cost_one=True)
                    clauses.append((should, Q.boost_query(fuzzy, self.boosts[field] * FUZZY_WEIGHT)))
        if 2 <= len(analyzed) <= MAX_QUERY_TERMS and self.boosts["title"] > 0:
            phrase = Q.phrase_query(self._schema, "title", analyzed)
            clauses.append((should, Q.boost_query(phrase, self.boosts["title"] * PHRASE_WEIGHT)))
        return Q.boolean_query(clauses) if clauses else None

    def _slot_clauses(self, slots: Sequence[Slot]) -> list[Any]:
        tantivy = _tantivy()
        Q = tantivy.Query
        clauses = []
        for slot in slots:
            if slot.kind == "type":
                clauses.append(Q.const_score_query(Q.term_query(self._schema, "type", slot.value), TYPE_SLOT_BOOST))
                continue
            value = normalize_query(slot.value)
            if not value:
                continue
            if slot.kind in RAW_FIELDS and self.boosts[slot.kind] > 0:
                exact = Q.term_query(self._schema, f"{slot.kind}_raw", value)
                clauses.append(Q.const_score_query(exact, self.boosts[slot.kind] * SLOT_WEIGHT))
            elif slot.kind in _SLOT_TAG_FIELD and self.boosts[_SLOT_TAG_FIELD[slot.kind]] > 0:
                field = _SLOT_TAG_FIELD[slot.kind]
                words = [(tantivy.Occur.Must, Q.term_query(self._schema, field, term)) for term in dict.fromkeys(self._terms(value))]
                if words:
                    clauses.append(Q.const_score_query(Q.boolean_query(words), self.boosts[field] * SLOT_WEIGHT))
        return clauses

    def _prior_clauses(self) -> list[Any]:
        if self.popularity_prior <= 0:
            return []
        tantivy = _tantivy()
        Q, step = tantivy.Query, self.popularity_prior / PRIOR_STEPS
        return [
            Q.const_score_query(Q.range_query(self._schema, "popularity", tantivy.FieldType.Float, lower_bound=threshold), step)
            for threshold in PRIOR_THRESHOLDS
        ]

    def search(self, query: Query, k: int) -> list[Hit]:
        if k <= 0:
            return []
        searcher = self._index.searcher()
        tantivy_query = self._query(query.normalized or normalize_query(query.text), query.slots, searcher)
        if tantivy_query is None:
            return []
        result = searcher.search(tantivy_query, limit=k, count=False)
        hits = []
        for rank, (score, address) in enumerate(result.hits, start=1):
            entity_id = searcher.doc(address).get_first("id")
            hits.append(Hit(entity_id=entity_id, score=float(score), rank=rank))
        return hits

    def __len__(self) -> int:
        return self._index.searcher().num_docs

    def health(self) -> str:
        try:
            self._index.searcher().num_docs
        except Exception as error:  # noqa: BLE001 - health reports whatever is wrong
            return f"lexical index at {self.index_dir} unreadable: {error}"
        return "ok"
