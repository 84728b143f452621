"""The ingestion job wired to a process: in the service (in-process store), in the simulator, or as
``ltrr ingest`` (a separate process that loads the serving models, learns and publishes new versions)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

import redis

from bandit.base import Policy
from contracts import ConfigError, Context, Decision
from contracts.artifacts import ModelStore
from memory_index.base import MemoryStore
from ranker.base import Ranker
from services.eventstream import ingest_lag_s, redis_client
from services.ingest.archive import Archive
from services.ingest.ingestor import Ingestor, IngestReport
from services.ingest.lease import Lease
from services.ingest.stream_ingest import ROWS_KEPT, RetrainWorker, StreamIngestor
from services.redis_local import url_file
from services.registry import (
    Paths,
    make_policy,
    plans_from,
    reachable_redis_store,
    reward_config,
)
from services.settings import Settings

logger = logging.getLogger(__name__)


def retrain_ranker(
    settings: Settings, models: ModelStore, rows: Path, current: Callable[[], Ranker], install: Callable[[Ranker], None]
) -> str:
    """``training.retrain_ranker`` on a rows file, imported on first use: LightGBM training stays out of a
    service process until it has a ranker to train (only the in-process ingest of a service without Redis does)."""
    from services.ingest.training import retrain_ranker as retrain
    from services.ingest.training import rows_from_file

    return retrain(settings, models, rows_from_file(rows), current, install)


@dataclass
class IngestJob:
    """Runs the ``Ingestor`` and publishes what it learned.

    ``with_policy(fn)`` runs ``fn`` on the policy being trained (under the serving lock when in-process).
    The ingestor's ``retrain`` callback publishes and installs accepted rankers.
    """

    ingestor: Ingestor
    models: ModelStore
    with_policy: Callable[[Callable[[Policy], None]], None]
    save_models: bool = True

    def run(self, flush: bool = False) -> IngestReport:
        report = self.ingestor.run(flush=flush)
        if report.finalized and self.save_models:
            versions: list[str] = []
            self.with_policy(lambda policy: versions.append(self.models.save("bandit", policy.save)))
            report.policy = versions[0]
        return report


class ServingPipeline(Protocol):
    """What in-process ingestion feeds in the process that serves (the search pipeline, structurally):
    its memory store, its ranker (read and replaced), and ``learn(fn)``, which runs ``fn`` on its policy
    under the lock ``choose`` takes."""

    memory: MemoryStore
    ranker: Ranker

    def learn(self, apply: Callable[[Policy], None]) -> None: ...


def ingest_job(settings: Settings, serving: ServingPipeline, save_models: bool = True) -> IngestJob:
    """In-process ingestion feeding the serving process's parts directly (a service without Redis, the simulator)."""
    paths = Paths(settings.data_dir)
    models = ModelStore(paths.models)

    def install(ranker: Ranker) -> None:
        serving.ranker = ranker

    def learn(context: Context, decision: Decision, reward: float) -> None:
        serving.learn(lambda policy: policy.learn(context, decision, reward))

    ingestor = Ingestor(
        paths.events / "events.jsonl",
        paths.ingest,
        serving.memory,
        reward_config(settings),
        learn,
        retrain=lambda rows: retrain_ranker(settings, models, rows, lambda: serving.ranker, install),
        min_new_rows=settings.ranker_min_new_impressions,
        strategy_history=settings.bandit_history_features,
    )
    return IngestJob(ingestor, models, serving.learn, save_models)


@dataclass
class StreamIngestJob:
    """``ltrr ingest`` with Redis: the stream ingestor under the learner's lease, retraining in a child process."""

    ingestor: StreamIngestor
    lease: Lease
    retrainer: RetrainWorker

    def run(self, flush: bool = False) -> IngestReport:
        report = self.ingestor.run(flush=flush)
        if flush and self.retrainer.wait() not in (None, 0):
            report.errors.append("the ranker retrain exited with an error (see its log lines above)")
        return report

    def lag_s(self) -> float:
        """Age of the oldest event not yet read (0 when caught up; NaN when Redis does not answer)."""
        try:
            return ingest_lag_s(self.ingestor.client)
        except redis.RedisError:
            return float("nan")

    def close(self) -> None:
        self.lease.release()


def redis_url_for_ingest(settings: Settings) -> tuple[str, str, str]:
    """The URL ingest uses, where it came from and how to fix it: LTRR_REDIS_URL, else the demo's local redis-server."""
    if settings.redis_url:
        return settings.redis_url, "LTRR_REDIS_URL", "start Redis there or fix the URL"
    if url_file(settings.data_dir).exists():
        return (
            url_file(settings.data_dir).read_text().strip(), f"the local redis-server URL in {url_file(settings.data_dir)}",
            "start `ltrr serve` (it starts that redis-server) or set LTRR_REDIS_URL",
        )
    raise ConfigError(
        "no Redis to ingest into: set LTRR_REDIS_URL, or start `ltrr serve` (it writes the local redis-server's "
        f"URL to {url_file(settings.data_dir)}); without Redis the service ingests in-process by itself"
    )


def open_ingest_job(settings: Settings, on_wait: Callable[[str, float], None] | None = None) -> StreamIngestJob:
    """``ltrr ingest``: the stream of the Redis at LTRR_REDIS_URL (or the demo's local one), once this
    process holds the learner's lease (``LeaseHeld`` while another ingester is alive)."""
    url, source, fix = redis_url_for_ingest(settings)
    memory = reachable_redis_store(settings, url, source, fix)
    client = redis_client(url, timeout_s=10.0)
    lease = Lease(client)
    lease.acquire(on_wait)
    try:
        paths = Paths(settings.data_dir)
        models = ModelStore(paths.models)
        retrainer = RetrainWorker(settings.data_dir, url, client)
        ingestor = StreamIngestor(
            client,
            memory,
            models,
            make_policy(settings, plans_from(settings), models),
            reward_config(settings),
            Archive(paths.archive, int(settings.archive_segment_mb * (1 << 20)), settings.archive_retention_days * 86400.0),
            lateness_s=settings.ingest_lateness_s,
            dedupe_horizon_s=settings.dedupe_horizon_s,
            rows_cap=ROWS_KEPT,
            min_new_rows=settings.ranker_min_new_impressions,
            retrain=retrainer,
            lease=lease,
            clock=time.time,
            strategy_history=settings.bandit_history_features,
        )
    except BaseException:
        lease.release()
        raise
    return StreamIngestJob(ingestor, lease, retrainer)
