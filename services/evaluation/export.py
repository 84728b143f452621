"""``ltrr events export``: the logged events (the ingest archive's segments, then the service's own log) as clean JSON lines for anyone who audits or replays it.

Complete lines only (a line still being written is left out), one event per ``event_id`` (the first),
malformed lines skipped and counted; ``time`` in epoch seconds. Impressions carry ``policy_version`` at
the top level beside ``plan_name``, ``probability``, ``distribution`` and ``draw``. Reads without a lock,
so it works while the service appends and ``ltrr ingest --follow`` runs.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence, TextIO

from contracts import ConfigError
from contracts.events import ImpressionEvent
from services.eventlog import read_log


@dataclass(frozen=True, slots=True)
class ExportReport:
    impressions: int
    feedback: int
    duplicates: int
    malformed: int
    out: str


def export_events(logs: Sequence[Path], out: Path) -> ExportReport:
    """Write the events of ``logs`` (in order) to ``out`` (replaced atomically when done); ``out`` may not be one of them."""
    if out.exists() and any(out.resolve() == log.resolve() for log in logs):
        raise ConfigError(f"--out: {out} is one of the event files read; write the export somewhere else")
    seen: set[str] = set()
    counts = {"impressions": 0, "feedback": 0, "duplicates": 0, "malformed": 0}
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.with_name(f".{out.name}.partial")
    try:
        with open(staging, "w", encoding="utf-8") as handle:
            for log in logs:
                _write(log, handle, seen, counts)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise
    os.replace(staging, out)
    return ExportReport(out=str(out), **counts)


def _write(log: Path, handle: TextIO, seen: set[str], counts: dict[str, int]) -> None:
    for line in read_log(log):
        if line.event is None:
            counts["malformed"] += 1
            continue
        if line.event.event_id in seen:
            counts["duplicates"] += 1
            continue
        seen.add(line.event.event_id)
        record = line.event.to_json()
        if isinstance(line.event, ImpressionEvent):
            record["policy_version"] = line.event.policy_version
            counts["impressions"] += 1
        else:
            counts["feedback"] += 1
        handle.write(json.dumps(record, separators=(",", ":"), ensure_ascii=False) + "\n")
