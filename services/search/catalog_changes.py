"""Entity writes after indexing (``POST /entities``, ``DELETE /entities/{id}``), kept in an append-only
``<data_dir>/catalog_changes.jsonl`` so that a restarted service sees the same catalog the indexes hold."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Iterable, Sequence

from catalog.schema import Entity
from contracts import EntityFacts
from memory_index.base import MemoryStore
from memory_index.cold_start import cold_start as predict_pairs
from retrievers.text import normalize_query


def entity_facts(entity: Entity) -> EntityFacts:
    """The entity attributes the ranker and cold start read (stages that may not import ``catalog``)."""
    return EntityFacts(
        entity_id=entity.id,
        type=entity.type,
        title=entity.title,
        artist=entity.artist,
        album=entity.album,
        genres=entity.genres,
        moods=entity.moods,
        popularity=entity.popularity,
    )


def cold_start(memory: MemoryStore, entities: Iterable[Entity]) -> int:
    """``memory_index.cold_start`` for catalog entities, with the retrievers' query normalization."""
    return predict_pairs(memory, (entity_facts(e) for e in entities), normalize_query)


class CatalogChanges:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def record_upsert(self, entities: Sequence[Entity]) -> None:
        self._append({"op": "upsert", "entity": entity.to_json()} for entity in entities)

    def record_delete(self, ids: Sequence[str]) -> None:
        self._append({"op": "delete", "id": entity_id} for entity_id in ids)

    def _append(self, records: Iterable[dict]) -> None:
        lines = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
        with self._lock, open(self.path, "a", encoding="utf-8") as handle:
            handle.write(lines)

    def apply(self, entities: list[Entity]) -> list[Entity]:
        """``entities`` with every recorded change applied, in order."""
        if not self.path.exists():
            return entities
        by_id = {entity.id: entity for entity in entities}
        with open(self.path, encoding="utf-8") as handle:
            for line in handle:
                record = json.loads(line)
                if record["op"] == "upsert":
                    entity = Entity.from_json(record["entity"])
                    by_id[entity.id] = entity
                else:
                    by_id.pop(record["id"], None)
        return list(by_id.values())
