"""JSONL catalogs: one ``Entity`` JSON object per line (see ``catalog.schema``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

from catalog.schema import CatalogError, Entity


def parse_entity_line(line: str, location: str) -> Entity:
    """Parse one JSONL line; ``location`` ("file:line") prefixes any ``CatalogError``."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise CatalogError(f"{location}: not valid JSON ({error.msg} at column {error.colno}); "
                           "each line must be one JSON object") from error
    try:
        return Entity.from_json(record)
    except CatalogError as error:
        raise CatalogError(f"{location}: {error}") from error


def read_entities(path: str | Path) -> list[Entity]:
    """Read a JSONL catalog; blank lines are skipped.

    Raises ``CatalogError`` whose message starts with ``<path>:<line number>:`` and names the bad field.
    """
    catalog_path = Path(path)
    if not catalog_path.is_file():
        raise CatalogError(f"path: catalog file {str(catalog_path)!r} does not exist; pass the path of a .jsonl file")
    entities: list[Entity] = []
    with catalog_path.open("rb") as lines:
        for line_number, raw in enumerate(lines, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise CatalogError(f"{catalog_path}:{line_number}: not UTF-8 (byte {error.start}); save the catalog as UTF-8") from None
            if line.strip():
                entities.append(parse_entity_line(line, f"{catalog_path}:{line_number}"))
    return entities


def write_entities(path: str | Path, entities: Iterable[Entity]) -> int:
    """Write entities as UTF-8 JSONL (parent folders are created); returns the number written."""
    catalog_path = Path(path)
    catalog_path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with catalog_path.open("w", encoding="utf-8", newline="\n") as out:
        for entity in entities:
            out.write(json.dumps(entity.to_json(), ensure_ascii=False))
            out.write("\n")
            count += 1
    return count
