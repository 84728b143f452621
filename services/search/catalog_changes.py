"""Entity writes after indexing (``POST /entities``, ``DELETE /entities/{id}``), kept in an append-only
journal, ``<data_dir>/catalog_changes.jsonl``, so that a restarted service sees the same catalog the
indexes hold, finishes a write a crash interrupted, and every worker process on the data directory
follows the writes any of them took."""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from catalog.schema import Entity
from contracts import BackendUnavailable, EntityFacts
from memory_index.base import MemoryStore
from memory_index.cold_start import cold_start as predict_pairs
from retrievers.text import normalize_query

logger = logging.getLogger(__name__)


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


def _flock(descriptor: int, timeout_s: float | None, path: Path) -> None:
    if timeout_s is None:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        return
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                logger.error("the catalog lock %s has been held by another process for over %.0f s", path, timeout_s)
                raise BackendUnavailable(
                    f"the catalog is being written by another process for over {timeout_s:.0f} s; retry the write"
                ) from None
            time.sleep(0.05)


class CatalogChanges:
    """A write-ahead journal of entity writes: each write is appended and fsynced *before* any index
    changes, and marked applied (``<journal>.applied`` holds the count of applied lines) once every index
    has it. A crash in between leaves the journal ahead of the indexes; ``unapplied`` returns those writes
    so the next start re-applies them (upserts and deletes by id are idempotent): every index ends as
    after the write, never half way. A torn last line (a crash while appending) was never acknowledged and
    is cut off.

    Several processes (``ltrr serve --workers``) share one journal: ``locked()`` (a ``flock`` on
    ``<journal>.lock`` and a thread lock) makes one of them the writer at a time; every read and write
    below except ``size`` is made under it."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.applied_path = self.path.with_name(self.path.name + ".applied")
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self._lock = threading.RLock()
        self._depth = 0
        self._lock_file: int | None = None
        with self.locked():
            if not self.applied_path.exists():
                self._write_applied(self._count_lines())  # a journal from before the marker existed: its writes are in

    @contextlib.contextmanager
    def locked(self, timeout_s: float | None = None) -> Iterator[None]:
        """Exclusive use of the journal and the indexes it describes, across processes (re-entrant). A torn
        last line (a writer killed mid-append) is cut off first. ``BackendUnavailable`` when another
        process holds it for longer than ``timeout_s`` (``None``: wait)."""
        with self._lock:
            if self._depth == 0:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._lock_file = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
                try:
                    _flock(self._lock_file, timeout_s, self.lock_path)
                except BaseException:
                    os.close(self._lock_file)
                    self._lock_file = None
                    raise
                self._cut_torn_tail()
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0 and self._lock_file is not None:
                    os.close(self._lock_file)  # closing releases the flock
                    self._lock_file = None

    def size(self) -> int:
        """The journal's size in bytes: a cheap, lock-free sign that another process wrote."""
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def record_upsert(self, entities: Sequence[Entity]) -> None:
        self._append({"op": "upsert", "entity": entity.to_json()} for entity in entities)

    def record_delete(self, ids: Sequence[str]) -> None:
        self._append({"op": "delete", "id": entity_id} for entity_id in ids)

    def mark_applied(self) -> int:
        """Every recorded write has reached every index; returns how many writes the journal holds."""
        with self.locked():
            lines = self._count_lines()
            self._write_applied(lines)
            return lines

    def applied(self) -> int:
        """How many of the journal's writes every index has."""
        return self._read_applied()

    def records(self) -> list[dict]:
        """Every recorded write, in order."""
        with self.locked():
            return list(self._records())

    def unapplied(self) -> list[dict]:
        """The writes recorded but not yet marked applied, in order."""
        with self.locked():
            return self.records()[self._read_applied():]

    def _append(self, records: Iterable[dict]) -> None:
        lines = [json.dumps(record, ensure_ascii=False) + "\n" for record in records]
        with self.locked(), open(self.path, "a", encoding="utf-8") as handle:
            handle.write("".join(lines))
            handle.flush()
            os.fsync(handle.fileno())

    def _records(self) -> Iterator[dict]:
        if not self.path.exists():
            return
        with open(self.path, encoding="utf-8") as handle:
            for line in handle:
                if line.endswith("\n"):  # an unterminated last line is a write still (or never) being appended
                    yield json.loads(line)

    def apply(self, entities: list[Entity]) -> list[Entity]:
        """``entities`` with every recorded change applied, in order."""
        by_id = {entity.id: entity for entity in entities}
        for record in self.records():
            if record["op"] == "upsert":
                entity = Entity.from_json(record["entity"])
                by_id[entity.id] = entity
            else:
                by_id.pop(record["id"], None)
        return list(by_id.values())

    def _count_lines(self) -> int:
        return sum(1 for _ in self._records())

    def _read_applied(self) -> int:
        try:
            return int(self.applied_path.read_text().strip() or 0)
        except (OSError, ValueError):
            return 0

    def _write_applied(self, count: int) -> None:
        staging = self.applied_path.with_suffix(".tmp")
        with open(staging, "w") as handle:
            handle.write(f"{count}\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(staging, self.applied_path)

    def _cut_torn_tail(self) -> None:
        if not self.path.exists() or self.path.stat().st_size == 0:
            return
        content = self.path.read_bytes()
        if content.endswith(b"\n"):
            return
        with open(self.path, "r+b") as handle:
            handle.truncate(content.rfind(b"\n") + 1)
            handle.flush()
            os.fsync(handle.fileno())
