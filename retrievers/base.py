"""The retriever protocol: every candidate generator implements these verbs."""

from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable

from catalog.schema import Entity
from contracts import Hit, Query


@runtime_checkable
class Retriever(Protocol):
    name: str

    def search(self, query: Query, k: int) -> list[Hit]:
        """Top ``k`` hits, best first, ranks 1..n. ``k <= 0`` returns ``[]``."""
        ...

    def upsert(self, entities: Sequence[Entity]) -> None:
        """Add or replace entities; searchable when this returns."""
        ...

    def delete(self, ids: Sequence[str]) -> None:
        """Remove entities; unknown ids are ignored."""
        ...

    def health(self) -> str:
        """``"ok"`` or a short description of what is wrong."""
        ...


@runtime_checkable
class SharedIndex(Protocol):
    """A retriever whose index is stored outside the process (a directory on disk, a search server): one
    process writes it, and every other process that opened it sees the write after ``refresh``."""

    def refresh(self) -> None:
        """See what other processes wrote since this process opened the index or last refreshed it."""
        ...
