"""The ingestion job: the single writer of learned state.

It reads the event log from where it stopped, joins feedback to impressions, and once an impression's
attribution window has closed *in event time* (the newest event time seen is past ``time + window``) it
  * updates the Q2E memory index (shown entities, engaged entities),
  * gives the bandit the plan's reward,
  * writes a ranker training row (the logged features, graded labels) when anything was engaged,
and retrains the ranker when enough new rows exist. Malformed lines are counted and skipped.
Idempotent on ``event_id``: replaying the same lines changes nothing.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

from bandit.context import history_scopes
from bandit.reward import RewardConfig, reward
from contracts import BadRequest, Context, Decision
from contracts.events import Event, FeedbackEvent, ImpressionEvent
from memory_index.base import MemoryStore, StrategyOutcome
from services.eventlog import LogLine, read_log
from services.ingest.rows import TrainingRow

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LoggedRound:
    """One finalized impression: what replay and the bandit need."""

    request_id: str
    time: float
    context: dict[str, float]
    decision: Decision
    reward: float
    engaged: dict[str, int]


@dataclass(slots=True)
class IngestReport:
    lines: int = 0
    malformed: int = 0
    duplicates: int = 0
    impressions: int = 0
    feedback: int = 0
    orphan_feedback: int = 0
    finalized: int = 0
    reward_sum: float = 0.0
    training_rows: int = 0
    ranker: str = "not retrained"
    policy: str = "unchanged"
    errors: list[str] = field(default_factory=list)

    @property
    def mean_reward(self) -> float:
        return self.reward_sum / self.finalized if self.finalized else 0.0


def finalize(impression: ImpressionEvent, feedback: Sequence[FeedbackEvent], config: RewardConfig) -> LoggedRound:
    """The reward and graded engagements (``Engagement.grade``) of one impression from the feedback that came in time."""
    start = impression.time
    in_time = [event for event in feedback if event.time - start <= config.window_seconds]
    engaged: dict[str, int] = {}
    for event in in_time:
        engaged[event.entity_id] = max(engaged.get(event.entity_id, 0), event.event.grade)
    decision = impression.decision()
    # A strategy that was skipped (out of time, failed) drew nothing: the plan is charged for what ran,
    # and for what the fallback strategy added to its page.
    drawn = decision.plan.total - sum(decision.plan.quota(name) for name in impression.skipped) + len(impression.fallback)
    value = reward(((event.event, event.time - start) for event in in_time), drawn, config)
    return LoggedRound(impression.request_id, start, dict(impression.context), decision, value, engaged)


def strategy_outcome(impression: ImpressionEvent, logged: LoggedRound, sources_by_entity: Mapping[str, Iterable[str]]) -> StrategyOutcome:
    """What this impression says about its strategies, under the query's and its kind's scopes: those that
    drew (skipped ones did not) and those that supplied an engaged entity (from the candidates' provenance,
    ``sources_by_entity``)."""
    drawn = tuple(strategy for strategy, quota in logged.decision.plan.quotas if quota > 0 and strategy not in impression.skipped)
    supplied = {strategy for entity_id in logged.engaged for strategy in sources_by_entity.get(entity_id, ())}
    scopes = tuple(history_scopes(impression.query.normalized, Context(logged.context)).values())
    return StrategyOutcome(scopes, drawn, tuple(strategy for strategy in drawn if strategy in supplied))


def new_events(
    lines: Iterable[LogLine], seen: set[str], report: IngestReport, state: dict[str, Any] | None = None
) -> Iterator[Event]:
    """Well-formed events not seen before, in log order; counts lines, malformed lines and duplicates in
    ``report``, adds yielded ids to ``seen`` and keeps ``state["offset"]`` at the end of the last line read."""
    for line in lines:
        if state is not None:
            state["offset"] = line.next_offset
        report.lines += 1
        if line.event is None:
            report.malformed += 1
            if len(report.errors) < 20:
                report.errors.append(f"byte {line.next_offset}: {line.error}")
            continue
        if line.event.event_id in seen:
            report.duplicates += 1
            continue
        seen.add(line.event.event_id)
        yield line.event


def join_rounds(paths: Path | Sequence[Path], config: RewardConfig) -> tuple[list[LoggedRound], IngestReport]:
    """Every impression in the event files with its reward (replay reads logs this way; nothing is recomputed)."""
    report = IngestReport()
    impressions: dict[str, ImpressionEvent] = {}
    feedback: dict[str, list[FeedbackEvent]] = {}
    files = [paths] if isinstance(paths, Path) else list(paths)
    lines = (line for path in files for line in read_log(path))
    for event in new_events(lines, set(), report):
        if isinstance(event, ImpressionEvent):
            impressions[event.request_id] = event
        else:
            feedback.setdefault(event.request_id, []).append(event)
    rounds = []
    for impression in impressions.values():
        try:
            rounds.append(finalize(impression, feedback.get(impression.request_id, []), config))
        except BadRequest as error:
            report.malformed += 1
            report.errors.append(f"request {impression.request_id}: {error}")
    rounds.sort(key=lambda logged: logged.time)
    return rounds, report


@dataclass(slots=True)
class _Pending:
    """An impression whose attribution window is open, with the feedback that has reached it."""

    impression: ImpressionEvent
    feedback: list[FeedbackEvent]

    def to_json(self) -> dict[str, Any]:
        return {**self.impression.to_json(), "feedback": [event.to_json() for event in self.feedback]}

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> _Pending:
        record = dict(record)
        feedback = [FeedbackEvent.from_json(event) for event in record.pop("feedback", [])]
        return cls(ImpressionEvent.from_json(record), feedback)


class Ingestor:
    """Incremental ingestion with its state (log offset, open impressions, seen event ids) in ``state_dir``.

    ``learn`` applies a bandit update (the service passes its locked in-process policy, the CLI a policy
    loaded from disk); ``retrain`` is called with the rows file when enough new rows exist and returns a
    short description of what happened to the ranker.
    """

    def __init__(
        self,
        log_path: Path,
        state_dir: Path,
        memory: MemoryStore,
        reward_config: RewardConfig,
        learn: Callable[[Context, Decision, float], None],
        retrain: Callable[[Path], str] | None = None,
        min_new_rows: int = 200,
        strategy_history: bool = False,
    ) -> None:
        self.strategy_history = strategy_history
        self.log_path = Path(log_path)
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.rows_path = self.state_dir / "ranker_rows.jsonl"
        self.memory = memory
        self.reward_config = reward_config
        self.learn = learn
        self.retrain = retrain
        self.min_new_rows = min_new_rows
        self._state = self._load_state()

    def _state_path(self) -> Path:
        return self.state_dir / "state.json"

    def _load_state(self) -> dict[str, Any]:
        path = self._state_path()
        if path.exists():
            state = json.loads(path.read_text())
        else:
            state = {"offset": 0, "watermark": 0.0, "pending": {}, "feedback": {}, "seen": [], "new_rows": 0, "finalized": []}
        self._pending = {rid: _Pending.from_json(record) for rid, record in state["pending"].items()}
        self._early_feedback = {
            rid: [FeedbackEvent.from_json(event) for event in events] for rid, events in state["feedback"].items()
        }
        return state

    def _save_state(self) -> None:
        self._state["pending"] = {rid: pending.to_json() for rid, pending in self._pending.items()}
        self._state["feedback"] = {
            rid: [event.to_json() for event in events] for rid, events in self._early_feedback.items()
        }
        staging = self._state_path().with_suffix(".tmp")
        staging.write_text(json.dumps(self._state))
        os.replace(staging, self._state_path())

    def run(self, flush: bool = False) -> IngestReport:
        """Ingest new lines; with ``flush`` also close every open impression's window now."""
        report = IngestReport()
        state = self._state
        seen = set(state["seen"])
        finalized_ids = set(state["finalized"])
        pending = self._pending
        early_feedback = self._early_feedback
        for event in new_events(read_log(self.log_path, state["offset"]), seen, report, state):
            state["watermark"] = max(state["watermark"], event.time)
            if isinstance(event, ImpressionEvent):
                report.impressions += 1
                pending[event.request_id] = _Pending(event, early_feedback.pop(event.request_id, []))
            else:
                report.feedback += 1
                if event.request_id in pending:
                    pending[event.request_id].feedback.append(event)
                elif event.request_id in finalized_ids:
                    report.orphan_feedback += 1
                else:
                    early_feedback.setdefault(event.request_id, []).append(event)
        closing = [
            request_id
            for request_id, open_impression in pending.items()
            if flush or open_impression.impression.time + self.reward_config.window_seconds <= state["watermark"]
        ]
        with open(self.rows_path, "a", encoding="utf-8") as rows:
            for request_id in sorted(closing, key=lambda rid: pending[rid].impression.time):
                closed = pending.pop(request_id)
                finalized_ids.add(request_id)
                try:
                    logged = finalize(closed.impression, closed.feedback, self.reward_config)
                except BadRequest as error:
                    report.malformed += 1
                    report.errors.append(f"request {request_id}: {error}")
                    continue
                self._apply(closed.impression, logged, rows, report)
        state["seen"] = sorted(seen)
        state["finalized"] = sorted(finalized_ids)
        if self.retrain is not None and state["new_rows"] >= self.min_new_rows:
            report.ranker = self.retrain(self.rows_path)
            state["new_rows"] = 0
        self._save_state()
        return report

    def _apply(self, impression: ImpressionEvent, logged: LoggedRound, rows: Any, report: IngestReport) -> None:
        shown = [item.entity_id for item in impression.page]
        self.memory.record(impression.query.normalized, shown, logged.engaged.keys(), logged.time)
        if self.strategy_history:
            sources = {candidate.entity_id: candidate.sources.keys() for candidate in impression.candidates}
            self.memory.record_strategies([strategy_outcome(impression, logged, sources)])
        self.learn(Context(logged.context), logged.decision, logged.reward)
        report.finalized += 1
        report.reward_sum += logged.reward
        if logged.engaged and impression.candidates:
            shown_at = {item.entity_id: item.position for item in impression.page}
            row = TrainingRow(
                request_id=logged.request_id,
                time=logged.time,
                ranker=impression.model_versions.get("ranker", ""),
                features=tuple(candidate.features for candidate in impression.candidates),
                labels=tuple(logged.engaged.get(candidate.entity_id, 0) for candidate in impression.candidates),
                positions=tuple(shown_at.get(candidate.entity_id, 0) for candidate in impression.candidates),
                pair=0 if impression.randomized is None else impression.randomized.pair,
            )
            rows.write(row.to_line())
            report.training_rows += 1
            self._state["new_rows"] += 1
