"""``ltrr stats``: what the learning loop has applied, each figure read from the state it describes
(ingest's counters in Redis, the memory index's raw totals, the published bandit's manifest, the row
store, the stream, the archive), never recounted from events. Reads only: no lease, safe while ingest runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from contracts.artifacts import ModelStore, read_manifest
from services.eventlog import archive_segments
from services.eventstream import ingest_lag_s, redis_client, stream_info
from services.ingest.jobs import redis_url_for_ingest
from services.ingest.stream_ingest import ROWS_KEY, STATS_KEY
from services.registry import Paths, reachable_redis_store
from services.settings import Settings


def collect_stats(settings: Settings) -> dict[str, Any]:
    url, source, fix = redis_url_for_ingest(settings)
    memory = reachable_redis_store(settings, url, source, fix)
    client = redis_client(url)
    counters = cast("dict[str, str]", client.hgetall(STATS_KEY))
    paths = Paths(settings.data_dir)
    models = ModelStore(paths.models)
    bandit_directory = models.current_directory("bandit")
    bandit_updates = 0
    if bandit_directory is not None and bandit_directory.is_dir():
        bandit_updates = int(read_manifest(bandit_directory, "bandit model", "ltrr ingest publishes it").get("n_updates", 0))
    segments = archive_segments(paths.archive)
    stream = stream_info(client)
    redis_memory = cast("dict[str, Any]", client.info("memory"))
    return {
        "impressions_applied": int(counters.get("impressions_applied", 0)),
        "feedback_applied": int(counters.get("feedback_applied", 0)),
        "feedback_late": int(counters.get("feedback_late", 0)),
        "orphan_feedback": int(counters.get("orphan_feedback", 0)),
        "malformed_events": int(counters.get("malformed", 0)),
        "pending_impressions": stream["pending"],
        "memory": memory.totals(),
        "bandit_updates": bandit_updates,
        "bandit_version": models.current("bandit"),
        "ranker_version": models.current("ranker"),
        "ranker_training_rows": int(counters.get("ranker_training_rows", 0)),
        "ranker_rows_kept": int(cast(int, client.llen(ROWS_KEY))),
        "stream": {**stream, "lag_s": round(ingest_lag_s(client), 3)},
        "model_versions_kept": {kind: _versions(paths.models / kind) for kind in ("bandit", "ranker")},
        "redis_used_memory_bytes": int(redis_memory.get("used_memory", 0)),
        "archive": {"segments": len(segments), "bytes": sum(path.stat().st_size for path in segments)},
    }


def _versions(directory: Path) -> int:
    if not directory.is_dir():
        return 0
    return sum(1 for path in directory.iterdir() if path.is_dir() and not path.name.startswith("."))
