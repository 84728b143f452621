"""``ltrr events export``: the event log as clean JSON lines for anyone who audits or replays it.

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


def export_events(log: Path, out: Path) -> ExportReport:
    """Write ``log``'s events to ``out`` (replaced atomically when done); ``out`` may not be ``log``."""
    if out.exists() and out.resolve() == log.resolve():
        raise ConfigError(f"--out: {out} is the event log itself; write the export somewhere else")
    seen: set[str] = set()
    counts = {"impressions": 0, "feedback": 0, "duplicates": 0, "malformed": 0}
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.with_name(f".{out.name}.partial")
    try:
        _write(log, staging, seen, counts)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise
    os.replace(staging, out)
    return ExportReport(out=str(out), **counts)


def _write(log: Path, staging: Path, seen: set[str], counts: dict[str, int]) -> None:
    with open(staging, "w", encoding="utf-8") as handle:
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
