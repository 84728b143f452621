"""The event archive: what ingest read from the stream, as rotated JSONL segments that replay, export and
training read. ``<archive>/events-<UTC date>-<n>.jsonl``, one event's JSON a line; a new segment starts
past ``segment_bytes`` or on a new UTC day; segments older than the retention are deleted (they hold
query text). ``POSITION`` names the last stream entry written, so an entry re-delivered after a crash is
not archived twice; it is written only after the segment is fsynced.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable, Iterable

from services.eventlog import archive_segments, stream_id_key

POSITION_FILE = "POSITION"


class Archive:
    def __init__(
        self,
        directory: Path,
        segment_bytes: int = 64 << 20,
        retention_s: float = 30 * 86400.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.segment_bytes = segment_bytes
        self.retention_s = retention_s
        self.clock = clock
        position = self.directory / POSITION_FILE
        self.position = position.read_text().strip() if position.exists() else "0-0"

    def segments(self) -> list[Path]:
        return archive_segments(self.directory)

    def write(self, entries: Iterable[tuple[str, str]]) -> int:
        """Append the entries (stream id, event JSON) after ``position``; returns how many were new."""
        fresh = [(entry_id, text) for entry_id, text in entries if stream_id_key(entry_id) > stream_id_key(self.position)]
        if not fresh:
            return 0
        payload = "".join(text.replace("\n", " ") + "\n" for _, text in fresh).encode("utf-8")
        segment = self._segment(len(payload))
        with open(segment, "ab") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        self.position = fresh[-1][0]
        staging = self.directory / f"{POSITION_FILE}.tmp"
        staging.write_text(self.position + "\n")
        os.replace(staging, self.directory / POSITION_FILE)
        return len(fresh)

    def _segment(self, incoming: int) -> Path:
        day = time.strftime("%Y%m%d", time.gmtime(self.clock()))
        today = [path for path in self.segments() if path.name.startswith(f"events-{day}-")]
        if today and today[-1].stat().st_size + incoming <= self.segment_bytes:
            return today[-1]
        number = int(today[-1].stem.rsplit("-", 1)[1]) + 1 if today else 1
        return self.directory / f"events-{day}-{number:05d}.jsonl"

    def prune(self) -> list[Path]:
        """Delete segments last written longer ago than the retention (never the newest); returns them."""
        segments = self.segments()
        cutoff = self.clock() - self.retention_s
        removed = [path for path in segments[:-1] if path.stat().st_mtime < cutoff]
        for path in removed:
            path.unlink(missing_ok=True)
        return removed

