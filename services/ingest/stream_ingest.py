"""Ingest from the Redis event stream with exactly-once effects.

A pass reads the consumer group's entries (after a restart, first the ones it had read but not
acknowledged), archives them, joins feedback to impressions, and commits every impression whose
attribution window (plus the allowed lateness) has closed, in four steps:

1. **counters**: the memory-index counts, the totals of ``ltrr stats`` and an applied-marker per impression,
   in one MULTI (all or nothing);
2. **bandit**: the policy learns the rounds it has not learned and is saved with the ids it learned
   (``ingest.json`` beside the model), then published;
3. **rows**: the ranker training rows, their count and the marker moved to "done", in one MULTI;
4. **acknowledgement** of the stream entries.

A crash between steps re-delivers the entries; the marker (1 = counted, 2 = done) and the saved policy's
list of learned ids say which effects are already in, so each applies once. Markers live in hashes by
impression time that expire after the dedupe horizon: a repeat within it counts once.
Feedback for an impression already finalized (it arrived later than the lateness allows) still counts
once: a click in the memory index and in ``feedback_applied``; the bandit's reward for that round is final.
Markers live in hashes each covering a quarter of the horizon of event time (``bucket_seconds``).
"""

from __future__ import annotations

import json
import logging
import math
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence, cast

import numpy as np
import orjson
import redis

from bandit.base import Policy
from bandit.reward import RewardConfig
from contracts import BadRequest, Context
from contracts.artifacts import ModelStore
from contracts.events import FeedbackEvent, ImpressionEvent, event_from_json
from memory_index.base import StrategyOutcome
from memory_index.redis_store import Record, RedisMemoryStore
from services.eventlog import stream_id_key as _key
from services.eventstream import FIELD, GROUP, STREAM
from services.ingest.archive import Archive
from services.ingest.failpoints import failpoint
from services.ingest.ingestor import IngestReport, LoggedRound, finalize, strategy_outcome
from services.ingest.lease import Lease
from services.ingest.rows import row_line

logger = logging.getLogger(__name__)

STATS_KEY = "ltrr:ingest:stats"
ROWS_KEY = "ltrr:ingest:rows"
MARKER_PREFIX = "ltrr:ingest:applied:"
LEARNED_FILE = "ingest.json"
ROWS_KEPT = 3000  # the newest training rows kept in Redis (training reads at most this many)
COUNTED, DONE = "1", "2"


@dataclass(slots=True)
class _Open:
    impression: ImpressionEvent
    feedback: list[FeedbackEvent] = field(default_factory=list)
    entry_ids: list[str] = field(default_factory=list)
    text: str = ""  # the impression as read: its candidates are typed by ``_row`` only when they become a row


def _kind(record: object) -> object:
    return record.get("kind") if isinstance(record, dict) else None


def _row(opened: _Open, logged: LoggedRound) -> str | None:
    """The ranker training row of an engaged impression, straight from the logged candidates (``None`` when
    it has none or they are not a table of numbers)."""
    try:
        record = orjson.loads(opened.text)
        candidates = record["candidates"]
        entity_ids = [str(candidate["entity_id"]) for candidate in candidates]
        features = [candidate["features"] for candidate in candidates]
        shown_at = {str(item["entity_id"]): int(item["position"]) for item in record.get("page", ())}
        width = np.asarray(features, dtype=np.float64).shape  # a ragged or non-numeric table raises here
    except (ValueError, KeyError, TypeError) as error:
        logger.warning("request %s: candidates or page not usable for training: %s", logged.request_id, error)
        return None
    if not entity_ids or len(width) != 2:
        return None
    labels = [logged.engaged.get(entity_id, 0) for entity_id in entity_ids]
    positions = [shown_at.get(entity_id, 0) for entity_id in entity_ids]
    pair = 0 if opened.impression.randomized is None else opened.impression.randomized.pair
    return row_line(logged.request_id, logged.time, opened.impression.model_versions.get("ranker", ""), features, labels, positions, pair)


def _sources(opened: _Open) -> dict[str, list[str]]:
    """The strategies that supplied each logged candidate of an impression (its provenance)."""
    try:
        return {str(candidate["entity_id"]): list(candidate.get("sources", {})) for candidate in orjson.loads(opened.text)["candidates"]}
    except (ValueError, KeyError, TypeError, AttributeError):
        return {}


@dataclass(slots=True)
class _Early:
    event: FeedbackEvent
    entry_id: str


def bucket_seconds(dedupe_horizon_s: float) -> int:
    """Markers are kept in hashes each covering this much event time: a quarter of the horizon, between a
    minute and an hour, so they outlive the horizon by at most a quarter of it."""
    return int(min(3600.0, max(60.0, dedupe_horizon_s / 4)))


def marker_key(event_time: float, bucket_s: int = 3600) -> str:
    return f"{MARKER_PREFIX}{bucket_s}:{int(event_time // bucket_s)}"


_LateTarget = Any  # COUNTED, (bucket, query) of its impression, or None (no impression known: an orphan)


class StreamIngestor:
    """The single learner reading ``ltrr:events``. ``policy`` is the bandit being trained (loaded from the
    published version, whose ``ingest.json`` lists the ids it learned that may not be acknowledged yet);
    ``retrain`` starts a ranker retrain without waiting for it."""

    def __init__(
        self,
        client: redis.Redis,
        memory: RedisMemoryStore,
        models: ModelStore,
        policy: Policy,
        reward_config: RewardConfig,
        archive: Archive,
        lateness_s: float = 30.0,
        dedupe_horizon_s: float = 6 * 3600.0,
        rows_cap: int = ROWS_KEPT,
        min_new_rows: int = 200,
        retrain: Callable[[], str] | None = None,
        lease: Lease | None = None,
        clock: Callable[[], float] | None = None,
        consumer: str = "learner",
        batch: int = 1000,
        max_entries_per_pass: int = 5000,
        stream: str = STREAM,
        group: str = GROUP,
        strategy_history: bool = False,
    ) -> None:
        self.strategy_history = strategy_history
        self.client = client
        self.memory = memory
        self.models = models
        self.policy = policy
        self.reward_config = reward_config
        self.archive = archive
        self.lateness_s = lateness_s
        self.dedupe_horizon_s = dedupe_horizon_s
        self._bucket_s = bucket_seconds(dedupe_horizon_s)
        self.rows_cap = rows_cap
        self.min_new_rows = min_new_rows
        self.retrain = retrain
        self.lease = lease
        self.clock = clock
        self.consumer = consumer
        self.batch = batch
        self.max_entries_per_pass = max_entries_per_pass
        self.stream = stream
        self.group = group
        self._open: dict[str, _Open] = {}
        self._early: dict[str, list[_Early]] = {}
        self._replayed_pending = False
        self._trimmed_learned = False
        learned = self._learned_record()
        self._learned: set[str] = set(learned.get("learned", []))
        self.watermark = float(learned.get("watermark", 0.0))
        try:
            self.client.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except redis.ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise

    def _learned_record(self) -> dict[str, Any]:
        directory = self.models.current_directory("bandit")
        path = None if directory is None else directory / LEARNED_FILE
        if path is None or not path.is_file():
            return {}
        return json.loads(path.read_text())

    # -- reading ------------------------------------------------------------------------------------

    def _read(self, start: str, count: int) -> list[tuple[str, str | None]]:
        answer: Any = self.client.xreadgroup(self.group, self.consumer, {self.stream: start}, count=count)
        if not answer:
            return []
        return [(entry_id, (fields or {}).get(FIELD)) for entry_id, fields in answer[0][1]]

    def _entries(self, end: str | None) -> tuple[list[tuple[str, str | None]], bool]:
        """Up to ``max_entries_per_pass`` new entries (after a restart, first every pending one), and whether
        the stream was exhausted (or ``end`` reached)."""
        entries: list[tuple[str, str | None]] = []
        if not self._replayed_pending:
            # Read but never acknowledged before a restart: these come first, in stream order.
            start = "0"
            while True:
                pending = self._read(start, self.batch)
                if not pending:
                    break
                entries += pending
                start = pending[-1][0]
            self._replayed_pending = True
        while len(entries) < self.max_entries_per_pass:
            fresh = self._read(">", min(self.batch, self.max_entries_per_pass - len(entries)))
            entries += fresh
            if not fresh or (end is not None and _key(fresh[-1][0]) >= _key(end)):
                return entries, True
        return entries, False

    def _last_id(self) -> str:
        return str(self.client.xinfo_stream(self.stream)["last-generated-id"])

    # -- one pass -----------------------------------------------------------------------------------

    def run(self, flush: bool = False) -> IngestReport:
        """One pass over at most ``max_entries_per_pass`` entries; with ``flush``, passes until the stream's
        end as of now, then every open window is closed."""
        report = IngestReport()
        end = self._last_id() if flush else None
        while True:
            self._check_lease()
            entries, exhausted = self._entries(end)
            self._pass(entries, report, close_all=flush and exhausted, caught_up=exhausted)
            if not flush or exhausted:
                break
        self.archive.prune()
        return report

    def _pass(self, entries: list[tuple[str, str | None]], report: IngestReport, close_all: bool, caught_up: bool) -> None:
        self.archive.write((entry_id, text) for entry_id, text in entries if text is not None)
        done_ids: list[str] = []
        malformed_ids: list[str] = []
        late: list[tuple[FeedbackEvent, str]] = []
        for entry_id, text in entries:
            report.lines += 1
            self._take(entry_id, text, report, done_ids, malformed_ids, late)
        if not self._trimmed_learned:
            # The first pass read every pending entry: ids the saved policy learned that are not among them
            # were acknowledged before the restart, and are never delivered again.
            self._learned &= set(self._open)
            self._trimmed_learned = True
        # Quiet traffic still closes windows by the clock; behind a backlog only event time does, or an
        # impression could close before its feedback, still unread further down the stream, is reached.
        now = max(self.watermark, self.clock()) if self.clock is not None and caught_up else self.watermark
        horizon = self.reward_config.window_seconds + self.lateness_s
        closing = [opened for opened in self._open.values() if close_all or opened.impression.time + horizon <= now]
        closing.sort(key=lambda opened: opened.impression.time)
        for request_id, waiting in list(self._early.items()):
            if close_all or all(early.event.time + horizon <= now for early in waiting):
                del self._early[request_id]
                late += [(early.event, early.entry_id) for early in waiting]
        if closing or late or done_ids:
            self._commit(closing, late, done_ids, malformed_ids, report)

    def _take(
        self, entry_id: str, text: str | None, report: IngestReport, done_ids: list[str], malformed_ids: list[str],
        late: list[tuple[FeedbackEvent, str]],
    ) -> None:
        if text is None:  # trimmed before it was acknowledged: nothing left to apply
            done_ids.append(entry_id)
            return
        try:
            record = orjson.loads(text)
            # Candidates are typed only for the impressions that become ranker rows (see _row).
            event = ImpressionEvent.from_json(record, with_candidates=False) if _kind(record) == "impression" else event_from_json(record)
        except (ValueError, BadRequest) as error:  # orjson.JSONDecodeError is a ValueError
            report.malformed += 1
            if len(report.errors) < 20:
                report.errors.append(f"entry {entry_id}: {error}")
            done_ids.append(entry_id)
            malformed_ids.append(entry_id)
            return
        self.watermark = max(self.watermark, event.time)
        if isinstance(event, ImpressionEvent):
            report.impressions += 1
            opened = self._open.get(event.request_id)
            if opened is not None:
                report.duplicates += 1
                opened.entry_ids.append(entry_id)
                return
            opened = _Open(event, entry_ids=[entry_id], text=text)
            for early in self._early.pop(event.request_id, []):
                opened.entry_ids.append(early.entry_id)
                if all(known.event_id != early.event.event_id for known in opened.feedback):
                    opened.feedback.append(early.event)
            self._open[event.request_id] = opened
            return
        report.feedback += 1
        opened = self._open.get(event.request_id)
        if opened is None:
            self._early.setdefault(event.request_id, []).append(_Early(event, entry_id))
            return
        opened.entry_ids.append(entry_id)
        if any(known.event_id == event.event_id for known in opened.feedback):
            report.duplicates += 1
            return
        opened.feedback.append(event)

    # -- the commit ---------------------------------------------------------------------------------

    def _markers(
        self, closing: Sequence[_Open], late: Sequence[tuple[FeedbackEvent, str]], once: Sequence[str]
    ) -> tuple[list[str | None], list[_LateTarget], set[str]]:
        """In one round trip: each closing impression's marker; for each late feedback whether it was counted
        already, else its impression's bucket and query (``None``: no impression known, an orphan); and which
        of the ``once`` entries (malformed, orphans) were counted already."""
        reading = self.client.pipeline(transaction=False)
        for opened in closing:
            reading.hget(self._bucket(opened.impression.time), opened.impression.request_id)
        steps = int(math.ceil(self.dedupe_horizon_s / self._bucket_s)) + 1
        spans = []
        for event, _ in late:
            # Its impression came before it, within the horizon: every bucket back to there.
            buckets = [self._bucket(event.time - self._bucket_s * step) for step in range(steps + 1)]
            spans.append(buckets)
            for bucket in buckets:
                reading.hmget(bucket, [event.request_id, f"f:{event.event_id}", f"q:{event.request_id}"])
        for entry_id in once:
            reading.hget(self._entry_bucket(entry_id), f"x:{entry_id}")
        answers = reading.execute()
        impression_markers = [None if value is None else str(value) for value in answers[: len(closing)]]
        targets: list[_LateTarget] = []
        position = len(closing)
        for buckets in spans:
            found: _LateTarget = None
            counted = False
            for bucket, (state, feedback_state, query) in zip(buckets, answers[position: position + len(buckets)], strict=True):
                counted = counted or feedback_state is not None
                if state is not None and query is not None and found is None:
                    found = (bucket, str(query))
            position += len(buckets)
            targets.append(COUNTED if counted else found)
        counted_once = {entry_id for entry_id, value in zip(once, answers[position:], strict=True) if value is not None}
        return impression_markers, targets, counted_once

    def _bucket(self, event_time: float) -> str:
        return marker_key(event_time, self._bucket_s)

    def _entry_bucket(self, entry_id: str) -> str:
        """The marker bucket of a stream entry counted once on its own (malformed, orphan): by its id's time."""
        return self._bucket(_key(entry_id)[0] / 1000.0)

    def _check_lease(self) -> None:
        if self.lease is not None:
            self.lease.check()

    def _commit(
        self, closing: list[_Open], late: list[tuple[FeedbackEvent, str]], done_ids: list[str], malformed_ids: list[str],
        report: IngestReport,
    ) -> None:
        self._check_lease()
        rounds: list[tuple[_Open, LoggedRound]] = []
        for opened in closing:
            try:
                rounds.append((opened, finalize(opened.impression, opened.feedback, self.reward_config)))
            except BadRequest as error:
                report.malformed += 1
                report.errors.append(f"request {opened.impression.request_id}: {error}")
                done_ids += opened.entry_ids
                malformed_ids.append(opened.entry_ids[0])
                del self._open[opened.impression.request_id]
        unique: dict[str, tuple[FeedbackEvent, str]] = {}
        for event, entry_id in late:
            if event.event_id in unique:
                done_ids.append(entry_id)  # the same feedback twice in this batch
            else:
                unique[event.event_id] = (event, entry_id)
        late = list(unique.values())
        late_entries = [entry_id for _, entry_id in late]
        markers, late_targets, counted_once = self._markers([opened for opened, _ in rounds], late, malformed_ids + late_entries)
        ttl = int(self.dedupe_horizon_s) + self._bucket_s

        # 1. counters: memory index, totals and the applied-marker, all or nothing.
        counting = self.client.pipeline(transaction=True)
        records: list[Record] = []
        outcomes: list[StrategyOutcome] = []
        markers_by_bucket: dict[str, dict[str, str]] = {}
        totals = {"impressions_applied": 0, "feedback_applied": 0, "feedback_late": 0, "orphan_feedback": 0, "malformed": 0}
        for (opened, logged), marker in zip(rounds, markers, strict=True):
            if marker is not None:
                continue
            impression = opened.impression
            shown = [item.entity_id for item in impression.page]
            records.append((impression.query.normalized, shown, list(logged.engaged), logged.time, ()))
            markers_by_bucket.setdefault(self._bucket(impression.time), {}).update(
                {impression.request_id: COUNTED, f"q:{impression.request_id}": impression.query.normalized}
            )
            totals["impressions_applied"] += 1
            totals["feedback_applied"] += len(opened.feedback)
            if self.strategy_history:
                outcomes.append(strategy_outcome(impression, logged, _sources(opened) if logged.engaged else {}))
        for (event, entry_id), target in zip(late, late_targets, strict=True):
            if target == COUNTED or entry_id in counted_once:
                continue  # counted before a crash or in an earlier pass: acknowledged now, counted once
            if target is None:
                report.orphan_feedback += 1
                totals["orphan_feedback"] += 1
                markers_by_bucket.setdefault(self._entry_bucket(entry_id), {})[f"x:{entry_id}"] = COUNTED
                continue
            bucket, query = target
            records.append((query, (), (), event.time, (event.entity_id,)))
            markers_by_bucket.setdefault(bucket, {})[f"f:{event.event_id}"] = COUNTED
            totals["feedback_applied"] += 1
            totals["feedback_late"] += 1
        for entry_id in malformed_ids:
            if entry_id not in counted_once:
                totals["malformed"] += 1
                markers_by_bucket.setdefault(self._entry_bucket(entry_id), {})[f"x:{entry_id}"] = COUNTED
        self.memory.queue_records(counting, records)
        self.memory.queue_strategy_outcomes(counting, outcomes)  # with the markers: counted once
        for bucket, fields in markers_by_bucket.items():
            counting.hset(bucket, mapping=cast(Any, fields))
            counting.expire(bucket, ttl)
        for name, value in totals.items():
            if value:
                counting.hincrby(STATS_KEY, name, value)
        if len(counting):
            counting.execute()
        failpoint("after_counters")

        # 2. bandit: learn what it has not learned (a crash after its save leaves those ids in ingest.json).
        learned_now = []
        for (opened, logged), marker in zip(rounds, markers, strict=True):
            request_id = opened.impression.request_id
            if marker == DONE or request_id in self._learned:
                continue
            self.policy.learn(Context(logged.context), logged.decision, logged.reward)
            learned_now.append(request_id)
            report.finalized += 1
            report.reward_sum += logged.reward
        finished = {opened.impression.request_id for opened, _ in rounds}
        if learned_now:
            self._learned |= set(learned_now)
            # The event-time watermark (never the clock): a replayed backlog must close windows by event time.
            record = {"learned": sorted(self._learned), "watermark": self.watermark, "stream_position": self.archive.position}

            def write(directory: Path) -> None:
                self.policy.save(directory)
                (directory / LEARNED_FILE).write_text(json.dumps(record))

            self._check_lease()
            report.policy = self.models.save("bandit", write)
        failpoint("after_bandit")

        # 3. ranker rows and the marker moved to done, all or nothing.
        writing = self.client.pipeline(transaction=True)
        rows = 0
        done_by_bucket: dict[str, dict[str, str]] = {}
        for (opened, logged), marker in zip(rounds, markers, strict=True):
            if marker == DONE:
                continue
            row = _row(opened, logged) if logged.engaged else None
            if row is not None:
                writing.lpush(ROWS_KEY, row)
                rows += 1
            done_by_bucket.setdefault(self._bucket(opened.impression.time), {})[opened.impression.request_id] = DONE
        for bucket, fields in done_by_bucket.items():
            writing.hset(bucket, mapping=cast(Any, fields))
            writing.expire(bucket, ttl)  # the horizon counts from when a round is done
        if rows:
            writing.ltrim(ROWS_KEY, 0, self.rows_cap - 1)
            writing.hincrby(STATS_KEY, "ranker_training_rows", rows)
            writing.hincrby(STATS_KEY, "rows_since_retrain", rows)
        if len(writing):
            self._check_lease()
            writing.execute()
        report.training_rows += rows
        failpoint("after_rows")

        failpoint("before_ack")
        # 4. acknowledge: these entries are archived and every effect of theirs is in.
        entry_ids = done_ids + [entry_id for opened, _ in rounds for entry_id in opened.entry_ids] + late_entries
        if entry_ids:
            self._check_lease()
            self.client.xack(self.stream, self.group, *entry_ids)
        for request_id in finished:
            self._open.pop(request_id, None)
        self._learned -= finished
        if self.retrain is not None:  # also without new rows: a crash may have come between their commit and this check
            since = int(self.client.hget(STATS_KEY, "rows_since_retrain") or 0)
            if since >= self.min_new_rows:
                report.ranker = self.retrain()


class RetrainWorker:
    """Ranker retraining in a child process (niced, LightGBM on one thread), so ingestion never waits for it.
    At most one runs at a time; ``wait`` blocks until the running one ends (``ltrr ingest --flush``)."""

    def __init__(self, data_dir: Path, redis_url: str, client: redis.Redis) -> None:
        self.data_dir = data_dir
        self.redis_url = redis_url
        self.client = client
        self._process: subprocess.Popen[bytes] | None = None

    def __call__(self) -> str:
        if self._process is not None and self._process.poll() is None:
            return "retrain already running"
        self.client.hset(STATS_KEY, "rows_since_retrain", 0)
        environment = {**os.environ, "LTRR_DATA_DIR": str(self.data_dir), "LTRR_REDIS_URL": self.redis_url}
        self._process = subprocess.Popen(
            [sys.executable, "-m", "services.ingest.retrain"], env=environment, preexec_fn=lambda: os.nice(10),
        )
        return f"retraining in process {self._process.pid}"

    def wait(self, timeout_s: float | None = None) -> int | None:
        if self._process is None:
            return None
        try:
            return self._process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return None
