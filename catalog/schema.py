"""The entity schema: one JSON object per line in a catalog file."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping

ENTITY_TYPES = ("track", "artist", "album", "playlist", "podcast", "document")


class CatalogError(ValueError):
    """A catalog record is malformed; the message names the field and the line."""


@dataclass(frozen=True, slots=True)
class Entity:
    id: str
    type: str
    title: str
    artist: str = ""
    album: str = ""
    genres: tuple[str, ...] = ()
    moods: tuple[str, ...] = ()
    description: str = ""
    popularity: float = 0.0
    release_date: str = ""

    def to_json(self) -> dict[str, Any]:
        record = asdict(self)
        record["genres"] = list(self.genres)
        record["moods"] = list(self.moods)
        return record

    @classmethod
    def from_json(cls, record: Mapping[str, Any]) -> Entity:
        """Validate one record; raises ``CatalogError`` naming the offending field."""
        if not isinstance(record, Mapping):
            raise CatalogError(f"entity: expected a JSON object, got {type(record).__name__}")
        entity_id = record.get("id")
        if not isinstance(entity_id, str) or not entity_id.strip():
            raise CatalogError(f"id: expected a non-empty string, got {entity_id!r}")
        entity_type = record.get("type")
        if entity_type not in ENTITY_TYPES:
            raise CatalogError(f"type: expected one of {', '.join(ENTITY_TYPES)}, got {entity_type!r} (id={entity_id})")
        title = record.get("title", "")
        if not isinstance(title, str):
            raise CatalogError(f"title: expected a string, got {type(title).__name__} (id={entity_id})")
        for name in ("artist", "album", "description", "release_date"):
            value = record.get(name, "")
            if value is not None and not isinstance(value, str):
                raise CatalogError(f"{name}: expected a string, got {type(value).__name__} (id={entity_id})")
        for name in ("genres", "moods"):
            value = record.get(name, [])
            if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
                raise CatalogError(f"{name}: expected a list of strings (id={entity_id})")
        popularity = record.get("popularity", 0.0)
        if isinstance(popularity, bool) or not isinstance(popularity, (int, float)):
            raise CatalogError(f"popularity: expected a number, got {popularity!r} (id={entity_id})")
        return cls(
            id=entity_id,
            type=entity_type,
            title=title,
            artist=record.get("artist") or "",
            album=record.get("album") or "",
            genres=tuple(record.get("genres") or ()),
            moods=tuple(record.get("moods") or ()),
            description=record.get("description") or "",
            popularity=float(popularity),
            release_date=record.get("release_date") or "",
        )
