"""Everything the search service opens, built through the registry, and what ``/healthz`` reports of it."""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import redis

from contracts import BackendUnavailable, LtrrError
from contracts.artifacts import ModelStore
from memory_index.base import MemoryStore
from memory_index.redis_store import RedisMemoryStore
from retrievers.dense_faiss import FaissDenseRetriever
from retrievers.embedding import Embedder, TextEncoder
from retrievers.understanding import Gazetteer
from services.eventlog import EventLog, EventSink
from services.eventstream import RedisEventStream, eviction_warning, redis_client
from services.randomness import process_randomness
from services.redis_local import LocalRedis
from services.registry import (
    Paths,
    fallback_strategies,
    load_catalog,
    make_policy,
    make_ranker,
    open_memory,
    open_retrievers,
    plans_from,
    redis_store,
    reward_config,
)
from services.search.catalog_changes import CatalogChanges, cold_start, entity_facts
from services.search.ledger import LocalLedger, RedisLedger, RequestLedger
from services.search.metrics import Metrics, TimedEncoder
from services.search.pipeline import Pipeline
from services.search.resilience import Breaker, FallbackLedger, GuardedMemory, SpooledSink
from services.settings import Settings
from services.user_ids import DeferredUserIdHasher, UserIdHasher, load_or_create_salt

logger = logging.getLogger(__name__)


@dataclass
class Stack:
    """Everything a process opened, so it can be closed in one place."""

    settings: Settings
    pipeline: Pipeline
    memory_description: str
    models: ModelStore
    metrics: Metrics
    local_redis: LocalRedis | None = None
    threads: list[threading.Thread] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    on_close: list[Callable[[], None]] = field(default_factory=list)  # run first, while Redis still runs

    def close(self) -> None:
        for close_first in self.on_close:
            close_first()
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=5)
        self.pipeline.close()
        if isinstance(self.pipeline.ledger, FallbackLedger):
            self.pipeline.ledger.close()
        self.pipeline.event_log.close()
        if self.local_redis is not None:
            self.local_redis.stop()


def open_stack(
    settings: Settings,
    embedder: Embedder | None = None,
    memory: MemoryStore | None = None,
    clock: Callable[[], float] | None = None,
    metrics: Metrics | None = None,
) -> Stack:
    """Open indexes, the memory store, models and the event log, and compose the pipeline."""
    paths = Paths(settings.data_dir)
    changes = CatalogChanges(paths.catalog_changes)
    plans = plans_from(settings)
    reward_config(settings)  # checked before anything starts: the in-process ingest and `ltrr ingest` use it
    local_redis = None
    if memory is None:
        local_redis = LocalRedis(settings.data_dir) if settings.start_local_redis else None
        start = local_redis.start if local_redis is not None and local_redis.available else None
        memory, description = open_memory(settings, start, serve_unreachable=True)
    else:
        description = f"{memory.backend} store supplied by the caller"
    randomness = process_randomness(settings, "serve")
    event_log: EventSink | None = None
    try:
        models = ModelStore(paths.models)
        salt_redis = memory.url if isinstance(memory, RedisMemoryStore) else None
        breaker = Breaker("Redis")
        event_log = open_event_sink(settings, memory, paths, breaker)
        ledger = open_ledger(settings, memory, breaker)
        shared_memory, memory = memory, request_path_memory(settings, memory, breaker)
        metrics = metrics or Metrics()
        encoder: TextEncoder | None = embedder
        if settings.backend == "embedded" and {"dense", "explore"} & set(settings.strategies):
            encoder = TimedEncoder(embedder or Embedder(threads=settings.encoder_threads), metrics)
        # The catalog, the indexes as saved and the journal are read as one state: other processes write them.
        with changes.locked():
            entities = changes.apply(load_catalog(settings))
            retrievers = open_retrievers(settings, memory, encoder, seed=randomness.library_seed)
            dense = retrievers.get("dense")
            pipeline = Pipeline(
                retrievers=retrievers,
                policy=make_policy(settings, plans, models, seed=randomness.library_seed),
                plans=plans,
                ranker=make_ranker(settings, models),
                memory=memory,
                gazetteer=Gazetteer.from_entities(entities),
                facts={entity.id: entity_facts(entity) for entity in entities},
                event_log=event_log,
                strategies=tuple(settings.strategies),
                retriever_timeout_s=settings.retriever_timeout_ms / 1000.0,
                ledger=ledger,
                attribution_window_s=settings.attribution_window_s,
                catalog_changes=changes,
                persist=dense.save if isinstance(dense, FaissDenseRetriever) else None,
                clock=time.time if clock is None else clock,
                hash_user=user_id_hasher(settings, salt_redis),
                rng=randomness.generator,
                fallback_strategies=fallback_strategies(settings),
                max_concurrent=concurrent_searches(settings),
                observer=metrics,
                degraded=lambda: ("memory_index", "event_stream") if breaker.down else (),
                randomize_pages=settings.randomize_pages,
                strategy_history=settings.bandit_history_features,
            )
            try:
                finished = pipeline.finish_interrupted_writes()
                if finished:
                    logger.warning("finished %d entity writes a crash had interrupted (from %s)", finished, changes.path)
            except (LtrrError, OSError) as error:  # serve what the indexes hold; the catalog follower retries
                logger.error("entity writes journaled in %s could not be applied at start (%s); serving the indexes as they are", changes.path, error)
        try:
            cold_start(shared_memory, entities)
        except BackendUnavailable:
            logger.error("the memory index's cold start is skipped (Redis does not answer); it runs at the next start")
    except BaseException:
        if event_log is not None:
            event_log.close()
        if local_redis is not None:
            local_redis.stop()
        raise
    return Stack(settings, pipeline, description, models, metrics, local_redis)


def user_id_hasher(settings: Settings, redis_url: str | None) -> Callable[[str | None, str], str | None]:
    def load() -> bytes:  # on the request path once Redis is down: the short timeout
        return load_or_create_salt(settings.data_dir, settings.user_id_salt, redis_url, timeout_s=settings.redis_timeout_ms / 1000.0)

    try:
        return UserIdHasher(load_or_create_salt(settings.data_dir, settings.user_id_salt, redis_url))
    except BackendUnavailable:
        logger.error("the user-id salt is in Redis, which does not answer, and no copy is kept here: user and session "
                     "ids are left out of events until Redis answers")
        return DeferredUserIdHasher(load)


def concurrent_searches(settings: Settings) -> int:
    """LTRR_MAX_CONCURRENT_SEARCHES, or one search per core this process may use (each search's retrievers
    run in parallel)."""
    return settings.max_concurrent_searches or len(os.sched_getaffinity(0)) or 1


def request_path_memory(settings: Settings, memory: MemoryStore, breaker: Breaker) -> MemoryStore:
    """For Redis: a client with the short request-path timeout, behind the breaker."""
    if not isinstance(memory, RedisMemoryStore):
        return memory
    return GuardedMemory(redis_store(settings, memory.url, timeout_s=settings.redis_timeout_ms / 1000.0, connect=False), breaker)


def open_event_sink(settings: Settings, memory: MemoryStore, paths: Paths, breaker: Breaker | None = None) -> EventSink:
    """The Redis stream ingest reads (with a local spool for outages) when the memory index is in Redis,
    else the service's own log file."""
    if isinstance(memory, RedisMemoryStore):
        stream = RedisEventStream(memory.url, timeout_s=settings.redis_timeout_ms / 1000.0)
        try:
            warning = eviction_warning(redis_client(memory.url))
        except redis.RedisError:
            warning = None
        if warning:
            logger.warning(warning)
        max_bytes = int(settings.spool_max_mb * (1 << 20))
        return SpooledSink(stream, paths.spool(settings.worker_id), breaker or Breaker("Redis"), max_bytes)
    return EventLog(paths.events)


def open_ledger(settings: Settings, memory: MemoryStore, breaker: Breaker | None = None) -> RequestLedger:
    """In the memory index's Redis when there is one (shared by workers, kept across restarts, with this
    process's memory beside it for outages), else here."""
    local = LocalLedger(settings.attribution_window_s)
    if isinstance(memory, RedisMemoryStore):
        shared = RedisLedger(memory.url, settings.attribution_window_s, timeout_s=settings.redis_timeout_ms / 1000.0)
        return FallbackLedger(shared, local, breaker or Breaker("Redis"))
    return local


def health(stack: Stack) -> dict[str, Any]:
    """Each dependency's state; ``degraded`` when the service answers without one (Redis down, a retriever
    failing) or holds events Redis has not taken yet. No URL or password in it."""
    pipeline = stack.pipeline
    backends: dict[str, Any] = {name: retriever.health() for name, retriever in pipeline.retrievers.items()}
    redis_backed = pipeline.memory.backend == "redis"
    memory_ok = pipeline.memory.ping()
    backends["memory_index"] = {
        "backend": pipeline.memory.backend,
        "state": "ok" if memory_ok else "unreachable",
        "description": stack.memory_description,
    }
    degraded = not memory_ok or any(state != "ok" for name, state in backends.items() if name != "memory_index")
    report: dict[str, Any] = {}
    sink = pipeline.event_log
    unavailable = False
    if isinstance(sink, SpooledSink):
        pending = sink.pending_bytes()
        report["spool"] = {"bytes": pending, "writable": sink.writable, "max_bytes": sink.max_bytes}
        degraded = degraded or pending > 0 or not sink.writable
        unavailable = sink.breaker.down and sink.full  # events could be kept nowhere: every search gets 503
    return {
        "status": "unavailable" if unavailable else "degraded" if degraded else "ok",
        "backends": backends,
        "models": {"policy": pipeline.policy.version, "ranker": pipeline.ranker.version},
        "entities": len(pipeline.facts),
        "worker": stack.settings.worker_id,
        "learning": "ltrr ingest (Redis)" if redis_backed else "in this process (no Redis)",
        **report,
    }


def refresh_metrics(stack: Stack, metrics: Metrics) -> None:
    """The gauges read at scrape time: dependencies, the spool, ingest's lag, the serving models."""
    pipeline = stack.pipeline
    metrics.dependency_up.labels("memory_index").set(1.0 if pipeline.memory.ping() else 0.0)
    for name, retriever in pipeline.retrievers.items():
        metrics.dependency_up.labels(name).set(1.0 if retriever.health() == "ok" else 0.0)
    sink = pipeline.event_log
    if isinstance(sink, SpooledSink):
        metrics.spool_bytes.set(sink.pending_bytes())
        if sink.breaker.allows():
            try:
                metrics.ingest_lag.set(sink.breaker.call(sink.stream.lag_s))
            except BackendUnavailable:
                pass
    metrics.set_models({"policy": pipeline.policy.version, "ranker": pipeline.ranker.version})
