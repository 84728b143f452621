"""The ingestion job wired to a process: in the service (in-process store), in the simulator, or as
``ltrr ingest`` (a separate process that loads the serving models, learns and publishes new versions)."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

from bandit.base import Policy
from contracts import ConfigError, Context, Decision
from contracts.artifacts import ModelStore
from memory_index.base import MemoryStore
from ranker.base import Ranker
from services.ingest.ingestor import Ingestor, IngestReport
from services.redis_local import url_file
from services.registry import (
    Paths,
    make_policy,
    make_ranker,
    plans_from,
    reachable_redis_store,
    reward_config,
)
from services.settings import Settings

logger = logging.getLogger(__name__)


def retrain_ranker(
    settings: Settings, models: ModelStore, rows: Path, current: Callable[[], Ranker], install: Callable[[Ranker], None]
) -> str:
    """``training.retrain_ranker``, imported on first use: LightGBM training, ranx and numba stay out of a
    service process until it has a ranker to train (only the in-process ingest of a service without Redis does)."""
    from services.ingest.training import retrain_ranker as retrain

    return retrain(settings, models, rows, current, install)


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
    )
    return IngestJob(ingestor, models, serving.learn, save_models)


def open_ingest_job(settings: Settings) -> IngestJob:
    """``ltrr ingest``: Redis from LTRR_REDIS_URL or the URL the demo's local redis-server wrote."""
    paths = Paths(settings.data_dir)
    if settings.redis_url:
        memory = reachable_redis_store(settings, settings.redis_url, "LTRR_REDIS_URL", "start Redis there or fix the URL")
    elif url_file(settings.data_dir).exists():
        memory = reachable_redis_store(
            settings, url_file(settings.data_dir).read_text().strip(), f"the local redis-server URL in {url_file(settings.data_dir)}",
            "start `ltrr serve` (it starts that redis-server) or set LTRR_REDIS_URL",
        )
    else:
        raise ConfigError(
            "no Redis to ingest into: set LTRR_REDIS_URL, or start `ltrr serve` (it writes the local redis-server's "
            f"URL to {url_file(settings.data_dir)}); without Redis the service ingests in-process by itself"
        )
    models = ModelStore(paths.models)
    policy_holder = [make_policy(settings, plans_from(settings), models)]
    ranker_holder = [make_ranker(settings, models)]
    lock = threading.Lock()

    def with_policy(apply: Callable[[Policy], None]) -> None:
        with lock:
            apply(policy_holder[0])

    def learn(context: Context, decision: Decision, reward: float) -> None:
        policy_holder[0].learn(context, decision, reward)

    def set_ranker(ranker: Ranker) -> None:
        ranker_holder[0] = ranker

    ingestor = Ingestor(
        paths.events / "events.jsonl",
        paths.ingest,
        memory,
        reward_config(settings),
        learn,
        retrain=lambda rows: retrain_ranker(settings, models, rows, lambda: ranker_holder[0], set_ranker),
        min_new_rows=settings.ranker_min_new_impressions,
    )
    return IngestJob(ingestor, models, with_policy)
