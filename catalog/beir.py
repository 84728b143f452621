"""Loader for BEIR-format test collections (Thakur et al., "BEIR", NeurIPS 2021 Datasets & Benchmarks).

Layout: ``corpus.jsonl`` (``_id``, ``title``, ``text``), ``queries.jsonl`` (``_id``, ``text``) and
``qrels/<split>.tsv`` (header ``query-id  corpus-id  score``; the official files use CRLF line endings).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from catalog.schema import CatalogError, Entity

QRELS_HEADER = ("query-id", "corpus-id", "score")


@dataclass(frozen=True, slots=True)
class BeirCollection:
    """One split of a BEIR collection.

    ``queries`` holds only the queries judged in the split's qrels (query id -> text);
    ``qrels`` maps query id -> {document id: relevance grade}.
    """

    name: str
    entities: list[Entity]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]


def _iter_jsonl(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield ("file:line", record) for every non-blank line of a JSONL file."""
    if not path.is_file():
        raise CatalogError(f"path: {str(path)!r} does not exist; a BEIR folder holds corpus.jsonl, "
                           "queries.jsonl and qrels/<split>.tsv")
    with path.open(encoding="utf-8") as lines:
        for line_number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            location = f"{path}:{line_number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise CatalogError(f"{location}: not valid JSON ({error.msg}); each line must be one object") from error
            if not isinstance(record, dict):
                raise CatalogError(f"{location}: expected a JSON object, got {type(record).__name__}")
            yield location, record


def _string_field(record: dict[str, Any], field: str, location: str, required: bool) -> str:
    value = record.get(field)
    if value is None and not required:
        return ""
    if not isinstance(value, (str, int)) or isinstance(value, bool) or (required and str(value).strip() == ""):
        raise CatalogError(f"{location}: {field}: expected a non-empty string, got {value!r}")
    return str(value)


def load_corpus(path: str | Path) -> list[Entity]:
    """``corpus.jsonl`` -> entities of type ``document`` (``_id`` -> id, ``title``, ``text`` -> description)."""
    entities: list[Entity] = []
    for location, record in _iter_jsonl(Path(path) / "corpus.jsonl"):
        entities.append(Entity(
            id=_string_field(record, "_id", location, required=True),
            type="document",
            title=_string_field(record, "title", location, required=False),
            description=_string_field(record, "text", location, required=False),
        ))
    return entities


def load_queries(path: str | Path) -> dict[str, str]:
    """All queries of every split in ``queries.jsonl``: query id -> text."""
    queries: dict[str, str] = {}
    for location, record in _iter_jsonl(Path(path) / "queries.jsonl"):
        queries[_string_field(record, "_id", location, required=True)] = _string_field(
            record, "text", location, required=True)
    return queries


def available_splits(path: str | Path) -> tuple[str, ...]:
    """Split names that have a ``qrels/<split>.tsv`` file, sorted."""
    qrels_dir = Path(path) / "qrels"
    return tuple(sorted(tsv.stem for tsv in qrels_dir.glob("*.tsv"))) if qrels_dir.is_dir() else ()


def load_qrels(path: str | Path, split: str = "test") -> dict[str, dict[str, int]]:
    """``qrels/<split>.tsv`` -> {query id: {document id: grade}}; CRLF endings and the header row are handled."""
    qrels_path = Path(path) / "qrels" / f"{split}.tsv"
    if not qrels_path.is_file():
        splits = ", ".join(available_splits(path)) or "none"
        raise CatalogError(f"split: no qrels file {str(qrels_path)!r}; available splits: {splits}")
    qrels: dict[str, dict[str, int]] = {}
    # Universal-newline text mode turns the official CRLF endings into "\n".
    with qrels_path.open(encoding="utf-8") as lines:
        for line_number, line in enumerate(lines, start=1):
            fields = tuple(field.strip() for field in line.rstrip("\r\n").split("\t"))
            if fields == ("",) or (line_number == 1 and fields == QRELS_HEADER):
                continue
            location = f"{qrels_path}:{line_number}"
            if len(fields) != 3:
                raise CatalogError(f"{location}: expected 3 tab-separated fields "
                                   f"({' '.join(QRELS_HEADER)}), got {len(fields)}")
            query_id, doc_id, grade = fields
            try:
                qrels.setdefault(query_id, {})[doc_id] = int(grade)
            except ValueError as error:
                raise CatalogError(f"{location}: score: expected an integer grade, got {grade!r}") from error
    return qrels


def load_beir(path: str | Path, split: str = "test") -> BeirCollection:
    """Load the corpus, the split's judged queries and its qrels from a BEIR folder.

    Raises ``CatalogError`` when a judged query id is missing from ``queries.jsonl``.
    """
    folder = Path(path)
    qrels = load_qrels(folder, split)
    all_queries = load_queries(folder)
    missing = [query_id for query_id in qrels if query_id not in all_queries]
    if missing:
        raise CatalogError(f"queries: {len(missing)} query ids of qrels/{split}.tsv are not in "
                           f"{folder / 'queries.jsonl'} (first: {missing[0]!r}); check that the files belong together")
    queries = {query_id: all_queries[query_id] for query_id in qrels}
    return BeirCollection(name=folder.name, entities=load_corpus(folder), queries=queries, qrels=qrels)
