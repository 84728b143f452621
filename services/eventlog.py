"""The append-only event log: JSONL files under ``<data_dir>/events/``, one event per line.

Impressions and feedback share one file so a single byte offset orders them. Every event carries
``schema_version``; a reader refuses versions it does not know instead of guessing.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

SCHEMA_VERSION = 1
FEEDBACK_EVENTS = ("click", "favorite", "play")

logger = logging.getLogger(__name__)


def new_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True, slots=True)
class LogLine:
    """One line of the log: its parsed event (``None`` when malformed), why it was rejected, and where it ends."""

    event: dict[str, Any] | None
    error: str | None
    next_offset: int


def validate_event(event: object) -> str | None:
    """``None`` when ``event`` is a well-formed event, else what is wrong with it (naming the field)."""
    if not isinstance(event, dict):
        return "event: expected a JSON object"
    if event.get("schema_version") != SCHEMA_VERSION:
        return f"schema_version: expected {SCHEMA_VERSION}, got {event.get('schema_version')!r}"
    for name in ("event_id", "request_id"):
        if not isinstance(event.get(name), str) or not event[name]:
            return f"{name}: expected a non-empty string"
    if not isinstance(event.get("time"), (int, float)) or isinstance(event.get("time"), bool):
        return "time: expected a number"
    kind = event.get("kind")
    if kind == "impression":
        for name, expected in (("query", dict), ("plan", dict), ("candidates", list), ("page", list), ("context", dict)):
            if not isinstance(event.get(name), expected):
                return f"{name}: expected a JSON {expected.__name__}"
        probability = event.get("probability")
        if not isinstance(probability, (int, float)) or not 0.0 < probability <= 1.0:
            return f"probability: expected a number in (0, 1], got {probability!r}"
        return None
    if kind == "feedback":
        if event.get("event") not in FEEDBACK_EVENTS:
            return f"event: expected one of {', '.join(FEEDBACK_EVENTS)}, got {event.get('event')!r}"
        if not isinstance(event.get("entity_id"), str):
            return "entity_id: expected a string"
        return None
    return f"kind: expected 'impression' or 'feedback', got {kind!r}"


class EventLog:
    """Appends events and reads them back from a byte offset. Thread-safe within one process."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / "events.jsonl"
        self._lock = threading.Lock()
        self._file = open(self.path, "ab", buffering=0)

    def append(self, event: dict[str, Any]) -> None:
        event.setdefault("schema_version", SCHEMA_VERSION)
        event.setdefault("event_id", new_id())
        line = json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode("utf-8") + b"\n"
        with self._lock:
            # One write of the whole line: O_APPEND keeps lines from several writers whole.
            self._file.write(line)

    def close(self) -> None:
        with self._lock:
            self._file.close()

    def request_ids(self) -> set[str]:
        """Request ids of every logged impression (lets /feedback refuse unknown ids after a restart)."""
        return {
            line.event["request_id"]
            for line in read_log(self.path)
            if line.event is not None and line.event.get("kind") == "impression"
        }


def read_log(path: Path, offset: int = 0) -> Iterator[LogLine]:
    """Parse ``path`` from ``offset``; a malformed line yields ``LogLine(None, reason, ...)`` and reading goes on.
    A final line without its newline (a write in progress) is left for the next read."""
    if not os.path.exists(path):
        return
    with open(path, "rb") as handle:
        handle.seek(offset)
        position = offset
        for raw in handle:
            if not raw.endswith(b"\n"):
                break
            position += len(raw)
            try:
                event = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as error:
                yield LogLine(None, f"line is not valid JSON ({error.__class__.__name__})", position)
                continue
            problem = validate_event(event)
            yield LogLine(None if problem else event, problem, position)
