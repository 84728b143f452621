"""BM25 over the catalog's text fields with tantivy (an on-disk index).

Fields are indexed from ``normalize_query``-normalized text with tantivy's ``en_stem`` analyzer. The query
is never handed to tantivy's query parser: it is normalized (which removes every syntax character),
analyzed with the same analyzer, and assembled as one boolean OR of boosted term queries:

* each query term in each field that holds it, at the field's boost (tantivy's multi-field BM25, as its
  query parser would build it), except common ones: a (term, field) found in more than
  ``COMMON_TERM_SHARE`` of the documents and more than ``COMMON_TERM_MIN_DOCS`` of them ("the", "song"
  in descriptions) is left out when the query has a rarer term. Such a term's idf is below ln 4, and its
  long posting list was most of the search time;
* the whole query as one term on ``title_raw``, adding ``PHRASE_WEIGHT`` times the title boost to an
  entity whose whole title is the query, so an exact title outranks scattered term matches;
* query understanding: a recognized artist or title slot is a term on ``artist_raw`` / ``title_raw`` (the
  whole normalized field as one term) whose boost is the field's boost divided by the term's BM25 idf,
  so every entity whose whole artist / title equals the slot's catalog spelling gains exactly the
  field's boost (a misspelled artist the gazetteer corrected ranks that artist's entities first); a type
  word ("playlist") adds ``TYPE_SLOT_BOOST`` to entities of that type the same way, unless the type is
  common by the same rule (it would say little and touch most of the index); a genre or mood slot
  is a term on ``genres_raw`` / ``moods_raw`` (one term per tag) worth about the tag field's boost (BM25's
  length normalization gives a little more to an entity with fewer tags than average, a little less to
  one with more);
* fuzzy clauses (one edit, terms of at least ``FUZZY_MIN_CHARS`` characters) on title and artist at
  ``FUZZY_WEIGHT`` of the field boost, only for a term no field of the index has seen, a typo candidate
  (a correctly spelled term gains nothing from its neighbours, on document collections they cost nDCG,
  and they are slow), so "tayler swif" still finds Taylor Swift (fuzzy matches score a constant per
  clause in tantivy, so they rank below real BM25 matches of the same field).

These are all OR clauses, so a slot term also matches entities the text did not (every one of them
equals part of the query, except a rare type's entities, which then follow the text matches).

Every matching document is scored (the Python binding's ``search`` collects through a ``MultiCollector``,
and k = 10 measures as slow as k = 100, so tantivy's block-max WAND pruning does not apply), so search time follows the posting lists the clauses touch: term
queries on rare terms and one-term raw fields are cheap, a phrase query (positions) or a fuzzy query (an
automaton over the term dictionary) is not. At 100,000 entities a plain query takes under 1 ms
(``benchmarks/bench_latency.py``).

An optional popularity prior (``popularity_prior`` > 0) adds ``PRIOR_STEPS`` constant-score range clauses
on the popularity fast field at log-spaced thresholds from 0.001 to 1, each worth ``popularity_prior /
PRIOR_STEPS``, so an entity gains about ``popularity_prior * (log10(popularity) + 3) / 3`` and the more
popular of two equal-text entities ranks first. The prior only adds to documents the text matched (the
text OR is then a required clause).

One ``IndexWriter`` is opened lazily on the first write and kept; every write commits and reloads the
reader, so changes are searchable when ``upsert``/``delete`` return.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import threading
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

from catalog.schema import Entity
from contracts import ArtifactError, ConfigError, Hit, Query, Slot
from retrievers.text import normalize_query

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 3
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
RAW_FIELDS = ("title", "artist", "genres", "moods")  # also indexed whole, one term per value, in ``<field>_raw``
SLOT_WEIGHT = 1.0
TYPE_SLOT_BOOST = 0.5
_SLOT_TAG_FIELD = {"genre": "genres", "mood": "moods"}
PRIOR_STEPS = 8
PRIOR_THRESHOLDS = tuple(10 ** (-3 + 3 * step / PRIOR_STEPS) for step in range(1, PRIOR_STEPS + 1))
MAX_QUERY_TERMS = 32
COMMON_TERM_SHARE = 0.25
COMMON_TERM_MIN_DOCS = 1000  # shorter posting lists cost microseconds; on small collections every term counts
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


def _common_above(searcher: Any) -> float:
    """The document frequency above which a term is common (see the module docstring)."""
    return max(COMMON_TERM_SHARE * searcher.num_docs, COMMON_TERM_MIN_DOCS)


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
                 heap_size: int = 64_000_000, popularity_prior: float = 0.0, hold_writer: bool = True) -> None:
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
        self.hold_writer = hold_writer  # False: the writer lock is released after each write (several writing processes)
        self._lock = threading.Lock()
        self._index.reload()

    @classmethod
    def open(cls, index_dir: Path | str, boosts: Mapping[str, float] | None = None,
             popularity_prior: float = 0.0, hold_writer: bool = True) -> TantivyLexicalRetriever:
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
                   popularity_prior=popularity_prior, hold_writer=hold_writer)

    # ----------------------------------------------------------------- writing

    def _document(self, entity: Entity) -> Any:
        tantivy = _tantivy()
        title, artist = normalize_query(entity.title), normalize_query(entity.artist)
        genres = [normalize_query(g) for g in entity.genres] or [""]
        moods = [normalize_query(m) for m in entity.moods] or [""]
        return tantivy.Document(
            id=entity.id,
            type=entity.type,
            title=title,
            title_raw=title,
            artist=artist,
            artist_raw=artist,
            album=normalize_query(entity.album),
            genres=genres,
            genres_raw=genres,
            moods=moods,
            moods_raw=moods,
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

    @contextlib.contextmanager
    def _writing(self) -> Iterator[Any]:
        """The writer, committed when the block ends; rolled back if it raises. Without ``hold_writer`` the
        writer lock is given back either way."""
        with self._lock:
            try:
                yield self._writer_locked()
                self._commit_locked()
            except BaseException:
                if self._writer is not None:
                    self._writer.rollback()
                raise
            finally:
                self._release_locked()

    def _release_locked(self) -> None:
        """Without ``hold_writer``, give the writer lock back after every write, also a failed one: another
        process writes next."""
        if not self.hold_writer and self._writer is not None:
            writer, self._writer = self._writer, None
            writer.wait_merging_threads()

    def refresh(self) -> None:
        """Search the index as last committed, also by another process."""
        self._index.reload()

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
        with self._writing() as writer:
            for entity in {e.id: e for e in entities}.values():
                writer.delete_documents_by_term("id", entity.id)
                writer.add_document(self._document(entity))

    def delete(self, ids: Sequence[str]) -> None:
        if not ids:
            return
        with self._writing() as writer:
            for entity_id in set(ids):
                writer.delete_documents_by_term("id", entity_id)

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
        tantivy = _tantivy()
        clauses = self._text_clauses(normalized, searcher)
        if not clauses:
            return None
        clauses += self._slot_clauses(slots, searcher)
        should = tantivy.Occur.Should
        text = tantivy.Query.boolean_query([(should, clause) for clause in clauses])
        prior = self._prior_clauses()
        if not prior:
            return text
        return tantivy.Query.boolean_query([(tantivy.Occur.Must, text), *((should, clause) for clause in prior)])

    def _text_clauses(self, normalized: str, searcher: Any) -> list[Any]:
        Q = _tantivy().Query
        analyzed = self._terms(normalized)
        unique_terms = list(dict.fromkeys(analyzed))[:MAX_QUERY_TERMS]
        common_above = _common_above(searcher)
        found = [(term, field, searcher.doc_freq(field, term)) for term in unique_terms for field, boost in self.boosts.items() if boost > 0]
        found = [(term, field, doc_freq) for term, field, doc_freq in found if doc_freq > 0]
        rare = [(term, field) for term, field, doc_freq in found if doc_freq <= common_above]
        kept = rare or [(term, field) for term, field, _ in found]
        clauses = [Q.boost_query(Q.term_query(self._schema, field, term), self.boosts[field]) for term, field in kept]
        seen = {term for term, _, _ in found}
        for term in unique_terms:
            if len(term) < FUZZY_MIN_CHARS or term in seen:
                continue
            for field in FUZZY_FIELDS:
                if self.boosts[field] > 0:
                    fuzzy = Q.fuzzy_term_query(self._schema, field, term, distance=1, transposition_cost_one=True)
                    clauses.append(Q.boost_query(fuzzy, self.boosts[field] * FUZZY_WEIGHT))
        if clauses:
            exact_title = self._exactly(searcher, "title_raw", normalized, self.boosts["title"] * PHRASE_WEIGHT)
            if exact_title is not None:
                clauses.append(exact_title)
        return clauses

    def _exactly(self, searcher: Any, field: str, value: str, worth: float) -> Any | None:
        """A term query on a one-term-per-document field that adds ``worth`` to each match: BM25 gives such
        a term ``idf`` (term frequency 1 in a one-term field), so the boost is ``worth / idf``."""
        doc_freq = searcher.doc_freq(field, value)
        if doc_freq == 0 or worth <= 0:
            return None
        idf = math.log(1.0 + (searcher.num_docs - doc_freq + 0.5) / (doc_freq + 0.5))
        Q = _tantivy().Query
        return Q.boost_query(Q.term_query(self._schema, field, value), worth / idf)

    def _slot_clauses(self, slots: Sequence[Slot], searcher: Any) -> list[Any]:
        clauses = []
        for slot in slots:
            if slot.kind == "type":
                if searcher.doc_freq("type", slot.value) <= _common_above(searcher):
                    clauses.append(self._exactly(searcher, "type", slot.value, TYPE_SLOT_BOOST))
                continue
            field = _SLOT_TAG_FIELD.get(slot.kind, slot.kind)
            value = normalize_query(slot.value)
            if value and field in RAW_FIELDS:
                clauses.append(self._exactly(searcher, f"{field}_raw", value, self.boosts[field] * SLOT_WEIGHT))
        return [clause for clause in clauses if clause is not None]

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
            len(self)  # a probe: reading the document count raises when the index is unreadable
        except Exception as error:  # noqa: BLE001 - health reports whatever is wrong
            return f"lexical index at {self.index_dir} unreadable: {error}"
        return "ok"
