"""Everything the search service opens, built through the registry, and what ``/healthz`` reports of it."""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from contracts.artifacts import ModelStore
from memory_index.base import MemoryStore
from memory_index.redis_store import RedisMemoryStore
from retrievers.dense_faiss import FaissDenseRetriever
from retrievers.embedding import Embedder
from retrievers.understanding import Gazetteer
from services.eventlog import EventLog, EventSink
from services.eventstream import RedisEventStream, eviction_warning, redis_client
from services.randomness import process_randomness
from services.redis_local import LocalRedis
from services.registry import (
    Paths,
    load_catalog,
    make_policy,
    make_ranker,
    open_memory,
    open_retrievers,
    plans_from,
    reward_config,
)
from services.search.catalog_changes import CatalogChanges, cold_start, entity_facts
from services.search.ledger import LocalLedger, RedisLedger, RequestLedger
from services.search.pipeline import Pipeline
from services.settings import Settings
from services.user_ids import UserIdHasher, load_or_create_salt

logger = logging.getLogger(__name__)


@dataclass
class Stack:
    """Everything a process opened, so it can be closed in one place."""

    settings: Settings
    pipeline: Pipeline
    memory_description: str
    models: ModelStore
    local_redis: LocalRedis | None = None
    threads: list[threading.Thread] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=5)
        self.pipeline.close()
        self.pipeline.event_log.close()
        if self.local_redis is not None:
            self.local_redis.stop()


def open_stack(
    settings: Settings,
    embedder: Embedder | None = None,
    memory: MemoryStore | None = None,
    clock: Callable[[], float] | None = None,
) -> Stack:
    """Open indexes, the memory store, models and the event log, and compose the pipeline."""
    paths = Paths(settings.data_dir)
    changes = CatalogChanges(paths.catalog_changes)
    entities = changes.apply(load_catalog(settings))
    plans = plans_from(settings)
    reward_config(settings)  # checked before anything starts: the in-process ingest and `ltrr ingest` use it
    local_redis = None
    if memory is None:
        local_redis = LocalRedis(settings.data_dir) if settings.start_local_redis else None
        start = local_redis.start if local_redis is not None and local_redis.available else None
        memory, description = open_memory(settings, start)
    else:
        description = f"{memory.backend} store supplied by the caller"
    randomness = process_randomness(settings, "serve")
    try:
        cold_start(memory, entities)
        models = ModelStore(paths.models)
        event_log = open_event_sink(settings, memory, paths)
        retrievers = open_retrievers(settings, memory, embedder, seed=randomness.library_seed)
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
            ledger=open_ledger(settings, memory),
            attribution_window_s=settings.attribution_window_s,
            catalog_changes=changes,
            persist=dense.save if isinstance(dense, FaissDenseRetriever) else None,
            clock=time.time if clock is None else clock,
            hash_user=UserIdHasher(
                load_or_create_salt(settings.data_dir, settings.user_id_salt, memory.url if isinstance(memory, RedisMemoryStore) else None)
            ),
            rng=randomness.generator,
            fallback_strategy=settings.fallback_strategy,
            max_concurrent=concurrent_searches(settings),
        )
    except BaseException:
        if local_redis is not None:
            local_redis.stop()
        raise
    return Stack(settings, pipeline, description, models, local_redis)


def concurrent_searches(settings: Settings) -> int:
    """LTRR_MAX_CONCURRENT_SEARCHES, or one search per core (each search's retrievers run in parallel)."""
    return settings.max_concurrent_searches or os.cpu_count() or 1


def open_event_sink(settings: Settings, memory: MemoryStore, paths: Paths) -> EventSink:
    """The Redis stream ingest reads when the memory index is in Redis, else the service's own log file."""
    if isinstance(memory, RedisMemoryStore):
        stream = RedisEventStream(memory.url)
        warning = eviction_warning(redis_client(memory.url))
        if warning:
            logger.warning(warning)
        return stream
    return EventLog(paths.events)


def open_ledger(settings: Settings, memory: MemoryStore) -> RequestLedger:
    """In the memory index's Redis when there is one (shared by workers, kept across restarts), else here."""
    if isinstance(memory, RedisMemoryStore):
        return RedisLedger(memory.url, settings.attribution_window_s)
    return LocalLedger(settings.attribution_window_s)


def health(stack: Stack) -> dict[str, Any]:
    pipeline = stack.pipeline
    backends: dict[str, Any] = {name: retriever.health() for name, retriever in pipeline.retrievers.items()}
    memory_ok = pipeline.memory.ping()
    backends["memory_index"] = {
        "backend": pipeline.memory.backend,
        "state": "ok" if memory_ok else "unreachable",
        "description": stack.memory_description,
    }
    degraded = pipeline.memory.backend != "redis" or not memory_ok or any(
        state != "ok" for name, state in backends.items() if name != "memory_index"
    )
    return {
        "status": "degraded" if degraded else "ok",
        "backends": backends,
        "models": {"policy": pipeline.policy.version, "ranker": pipeline.ranker.version},
        "entities": len(pipeline.facts),
    }
