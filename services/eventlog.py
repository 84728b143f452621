"""The append-only event log of a service without Redis: JSONL files under ``<data_dir>/events/``, one
event per line (with Redis, events go to the Redis stream and ingest archives them under ``events/archive/``).

Impressions and feedback share one file so a single byte offset orders them. Lines are the JSON of
``contracts.events``; every event carries ``schema_version`` and a reader refuses versions it does not
know instead of guessing.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Protocol

from contracts import BackendUnavailable, BadRequest, ConfigError
from contracts.events import Event, event_from_json

logger = logging.getLogger(__name__)


class EventSink(Protocol):
    """Where the service writes its events: this file log (no Redis) or the Redis stream (``services.eventstream``)."""

    def append(self, event: Event) -> None: ...

    def close(self) -> None: ...


def new_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True, slots=True)
class LogLine:
    """One line of the log: its typed event (``None`` when malformed), why it was rejected, and where it ends."""

    event: Event | None
    error: str | None
    next_offset: int


class EventLog:
    """Appends events and reads them back from a byte offset. Thread-safe within one process."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / "events.jsonl"
        self._lock = threading.Lock()
        self._file = open(self.path, "ab", buffering=0)
        self._end_torn_line()

    def _end_torn_line(self) -> None:
        """A writer killed mid-line left the file without its final newline: end that line, so the next
        event starts a line of its own (readers skip the torn one as malformed) instead of being glued to it."""
        with open(self.path, "rb") as reader:
            reader.seek(0, os.SEEK_END)
            if reader.tell() == 0:
                return
            reader.seek(-1, os.SEEK_END)
            if reader.read(1) != b"\n":
                logger.warning("event log %s ended in a torn line (a writer was killed mid-write); closing it", self.path)
                self._file.write(b"\n")

    def append(self, event: Event) -> None:
        line = json.dumps(event.to_json(), separators=(",", ":"), ensure_ascii=False).encode("utf-8") + b"\n"
        with self._lock:
            # One write of the whole line: O_APPEND keeps lines from several writers whole. A short write
            # (a full disk) is finished, or cut off again and refused (503: the search is not answered),
            # never left torn for the next event to glue onto.
            start = os.fstat(self._file.fileno()).st_size
            try:
                written = self._file.write(line) or 0
                while written < len(line):
                    more = self._file.write(line[written:])
                    if not more:
                        raise OSError(errno.ENOSPC, "could not write a whole line")
                    written += more
            except OSError as error:
                with contextlib.suppress(OSError):
                    os.ftruncate(self._file.fileno(), start)
                logger.error("cannot write the event log %s (%s); free disk space there", self.path, error.strerror or error)
                raise BackendUnavailable(
                    f"cannot write the event log ({error.strerror or error}); free disk space (the service log names the file)"
                ) from error

    def close(self) -> None:
        with self._lock:
            self._file.close()


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
                record = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as error:
                yield LogLine(None, f"line is not valid JSON ({error.__class__.__name__})", position)
                continue
            try:
                yield LogLine(event_from_json(record), None, position)
            except BadRequest as error:
                yield LogLine(None, str(error), position)


def stream_id_key(entry_id: str) -> tuple[int, int]:
    """A Redis stream id (``<ms>-<seq>``) as a sortable pair."""
    milliseconds, _, sequence = entry_id.partition("-")
    return int(milliseconds), int(sequence or 0)


def next_stream_id(entry_id: str) -> str:
    """The smallest stream id after ``entry_id`` (where an exclusive range starts)."""
    milliseconds, sequence = stream_id_key(entry_id)
    return f"{milliseconds}-{sequence + 1}"


def event_files(data_dir: Path) -> list[Path]:
    """Every file of logged events under ``data_dir``: the ingest archive's segments (with Redis), oldest
    first, then the service's own log (without Redis). Readers take each ``event_id`` once."""
    events = Path(data_dir) / "events"
    log = events / "events.jsonl"
    return archive_segments(events / "archive") + ([log] if log.is_file() else [])


def event_sources(data_dir: Path, log: Path | None) -> list[Path]:
    """``[log]`` when given (``ConfigError`` if it is missing), else ``event_files(data_dir)`` (``ConfigError``
    if there are none): what replay and export read."""
    if log is not None:
        if not Path(log).is_file():
            raise ConfigError(f"--log: {log} does not exist; pass an event file, or leave --log out to read the archive")
        return [Path(log)]
    sources = event_files(data_dir)
    if not sources:
        raise ConfigError(
            f"--log / --data-dir: no events under {Path(data_dir) / 'events'} (no archive segments, no events.jsonl); "
            "serve some traffic (with Redis, `ltrr ingest` archives the stream) or pass --log"
        )
    return sources


def archive_segments(directory: Path) -> list[Path]:
    """The segments of an archive directory, oldest first (their names sort by date, then number)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return sorted(path for path in directory.glob("events-*.jsonl") if path.is_file())
