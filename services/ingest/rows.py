"""Ranker training rows: one engaged impression's logged candidates, the exact features they were scored
with, their graded labels (``Engagement.grade``; 0 for none) and the position each was shown at (0: not
on the page; rows written before positions were logged have none) and, when the page had a randomized part,
the upper position of its randomized pair (0: none). Ingest appends them as JSON lines and training reads
the newest back."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Sequence

import orjson


@dataclass(frozen=True, slots=True)
class TrainingRow:
    request_id: str
    time: float
    ranker: str
    features: tuple[tuple[float, ...], ...]
    labels: tuple[int, ...]
    positions: tuple[int, ...] = ()
    pair: int = 0

    def to_line(self) -> str:
        return row_line(self.request_id, self.time, self.ranker, [list(row) for row in self.features], list(self.labels),
                        list(self.positions), self.pair)

    @classmethod
    def from_line(cls, line: str) -> TrainingRow:
        record = json.loads(line)
        return cls(
            request_id=str(record["request_id"]),
            time=float(record["time"]),
            ranker=str(record.get("ranker", "")),
            features=tuple(tuple(float(value) for value in row) for row in record["features"]),
            labels=tuple(int(label) for label in record["labels"]),
            positions=tuple(int(position) for position in record.get("positions", ())),
            pair=int(record.get("pair", 0)),
        )


def row_line(request_id: str, time: float, ranker: str, features: Sequence[Sequence[float]], labels: Sequence[int],
             positions: Sequence[int] = (), pair: int = 0) -> str:
    """One row as its JSON line (``TrainingRow.from_line`` reads it back)."""
    record: dict[str, Any] = {"request_id": request_id, "time": time, "ranker": ranker, "features": features, "labels": labels}
    if positions:
        record["positions"] = positions
    if pair:
        record["pair"] = pair
    return orjson.dumps(record).decode("utf-8") + "\n"
