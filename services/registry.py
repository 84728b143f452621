"""Builds the stages from ``Settings``: the only place that knows which backend serves which role."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from bandit.base import Policy
from bandit.baselines import FixedPlanPolicy, UniformPolicy
from bandit.plans import parse_plans, plan_space
from bandit.reward import RewardConfig
from bandit.vw_policy import VWPolicy
from catalog.demo import generate_demo_catalog
from catalog.io import read_entities, write_entities
from catalog.schema import Entity
from contracts import ArtifactError, ConfigError, Plan
from memory_index.base import MemoryStore
from memory_index.local_store import LocalMemoryStore
from memory_index.redis_store import RedisMemoryStore
from ranker.base import Ranker
from ranker.fusion import FusionRanker
from ranker.lambdamart import LambdaMartRanker
from retrievers.base import Retriever
from retrievers.dense_faiss import FaissDenseRetriever
from retrievers.embedding import Embedder
from retrievers.explore import ExploreRetriever
from retrievers.lexical_tantivy import TantivyLexicalRetriever
from retrievers.memory import MemoryRetriever
from retrievers.understanding import Gazetteer
from services.eventlog import EventLog
from services.models import ModelStore
from services.redis_local import LocalRedis
from services.search.catalog_changes import CatalogChanges, cold_start, entity_facts
from services.search.pipeline import Pipeline
from services.settings import Settings

logger = logging.getLogger(__name__)


@dataclass
class Paths:
    root: Path

    @property
    def lexical(self) -> Path:
        return self.root / "indexes" / "lexical"

    @property
    def dense(self) -> Path:
        return self.root / "indexes" / "dense"

    @property
    def events(self) -> Path:
        return self.root / "events"

    @property
    def ingest(self) -> Path:
        return self.root / "ingest"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def catalog_changes(self) -> Path:
        return self.root / "catalog_changes.jsonl"


def reward_config(settings: Settings) -> RewardConfig:
    return RewardConfig(
        weights=settings.reward_weights,
        cost_per_candidate=settings.cost_per_candidate,
        window_seconds=settings.attribution_window_s,
    )


def plans_from(settings: Settings) -> tuple[Plan, ...]:
    if settings.plans:
        return parse_plans(settings.plans)
    return plan_space(settings.strategies, settings.plan_levels)


def load_catalog(settings: Settings) -> list[Entity]:
    path = settings.resolved_catalog_path
    if not path.exists():
        if settings.catalog_path is not None:
            raise ConfigError(f"LTRR_CATALOG_PATH: {path} does not exist; point it at a JSONL catalog")
        raise ArtifactError(f"no catalog at {path}; run `ltrr index` to generate the demo catalog and build the indexes")
    return read_entities(path)


def ensure_catalog(settings: Settings) -> list[Entity]:
    """The configured catalog, or the demo catalog generated (and written) on first use."""
    path = settings.resolved_catalog_path
    if settings.catalog_path is None and not path.exists():
        entities = generate_demo_catalog(size=settings.demo_size, seed=settings.demo_seed)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_entities(path, entities)
        logger.info("generated a demo catalog of %d entities at %s", len(entities), path)
        return entities
    return load_catalog(settings)


def open_memory(settings: Settings, local_redis: LocalRedis | None) -> tuple[MemoryStore, str]:
    """Redis at LTRR_REDIS_URL (unreachable: ConfigError), else a local redis-server, else in-process.
    Returns the store and a sentence describing the choice."""
    if settings.redis_url:
        try:
            store = RedisMemoryStore(settings.redis_url, half_life_s=settings.memory_half_life_s)
            if not store.ping():
                raise ConnectionError("PING failed")
        except Exception as error:
            raise ConfigError(
                f"LTRR_REDIS_URL={settings.redis_url} is set but unreachable ({error}); start Redis there, "
                "fix the URL, or unset LTRR_REDIS_URL to use a local redis-server"
            ) from error
        return store, f"redis at {settings.redis_url}"
    if local_redis is not None and local_redis.available:
        url = local_redis.start()
        return RedisMemoryStore(url, half_life_s=settings.memory_half_life_s), f"local redis-server at {url}"
    logger.warning(
        "no Redis: the memory index lives in this process only; it is lost at exit, not shared with other "
        "processes, and ingestion runs inside the service (install redis-server or set LTRR_REDIS_URL)"
    )
    store = LocalMemoryStore(half_life_s=settings.memory_half_life_s)
    return store, "in-process store (no persistence, not shared between processes)"


def make_policy(settings: Settings, models: ModelStore, plans: tuple[Plan, ...]) -> Policy:
    if settings.policy == "uniform":
        return UniformPolicy(seed=settings.seed)
    if settings.policy.startswith("fixed:"):
        return FixedPlanPolicy(Plan.parse(settings.policy.removeprefix("fixed:")))
    if settings.policy != "vw":
        raise ConfigError(f"LTRR_POLICY: expected vw, uniform or fixed:<plan>, got {settings.policy!r}")
    directory = models.current_directory("bandit")
    if directory is not None:
        return VWPolicy.load(directory, seed=settings.seed)
    return new_vw_policy(settings, plans, seed=settings.seed)


def new_vw_policy(settings: Settings, plans: tuple[Plan, ...], seed: int) -> VWPolicy:
    """An untrained VW policy with the configured epsilon, options and warm-up."""
    return VWPolicy(seed=seed, epsilon=settings.bandit_epsilon, args=settings.bandit_vw_args, plans=plans,
                    explore_halflife=settings.bandit_explore_halflife)


def make_ranker(settings: Settings, models: ModelStore) -> Ranker:
    directory = models.current_directory("ranker")
    if directory is not None:
        try:
            return LambdaMartRanker.load(directory)
        except ArtifactError as error:
            pointer = models.root / "ranker" / "CURRENT"
            raise ArtifactError(f"{error}; to serve reciprocal-rank fusion until ingest trains a new model, delete {pointer}") from error
    return FusionRanker(strategies=tuple(settings.strategies))


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


def opensearch_url(settings: Settings) -> str:
    if not settings.opensearch_url:
        raise ConfigError("LTRR_BACKEND=opensearch needs LTRR_OPENSEARCH_URL (e.g. http://localhost:9200)")
    return settings.opensearch_url


def lexical_and_dense(settings: Settings, embedder: Embedder | None) -> dict[str, Callable[[], Retriever]]:
    """Factories of the lexical and dense retrievers of the configured backend."""
    if settings.backend == "embedded":
        paths = Paths(settings.data_dir)
        return {
            "lexical": lambda: TantivyLexicalRetriever.open(paths.lexical, popularity_prior=settings.lexical_popularity_prior),
            "dense": lambda: FaissDenseRetriever.open(embedder or Embedder(threads=settings.encoder_threads), paths.dense),
        }
    if settings.backend == "opensearch":
        from retrievers.dense_opensearch import OpenSearchDenseRetriever
        from retrievers.lexical_opensearch import OpenSearchLexicalRetriever

        return {
            "lexical": lambda: OpenSearchLexicalRetriever(
                opensearch_url(settings), popularity_prior=settings.lexical_popularity_prior
            ),
            "dense": lambda: OpenSearchDenseRetriever(
                opensearch_url(settings), embedder or Embedder(threads=settings.encoder_threads)
            ),
        }
    raise ConfigError(f"LTRR_BACKEND: expected embedded or opensearch, got {settings.backend!r}")


def open_retrievers(
    settings: Settings, memory: MemoryStore, embedder: Embedder | None = None
) -> dict[str, Retriever]:
    """The configured strategies; ``explore`` shares the dense retriever so catalog writes reach it."""
    factories = lexical_and_dense(settings, embedder)
    opened: dict[str, Retriever] = {}

    def dense() -> Retriever:
        if "dense" not in opened:
            opened["dense"] = factories["dense"]()
        return opened["dense"]

    registry: dict[str, Callable[[], Retriever]] = {
        "lexical": factories["lexical"],
        "dense": dense,
        "memory": lambda: MemoryRetriever(memory),
        "explore": lambda: ExploreRetriever(dense(), memory, seed=settings.seed),
    }
    unknown = [name for name in settings.strategies if name not in registry]
    if unknown:
        raise ConfigError(f"LTRR_STRATEGIES: unknown strategy {unknown[0]!r}; known: {', '.join(sorted(registry))}")
    return {name: registry[name]() for name in settings.strategies}


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
    local_redis = None
    if memory is None:
        local_redis = LocalRedis(settings.data_dir) if settings.start_local_redis else None
        memory, description = open_memory(settings, local_redis)
    else:
        description = f"{memory.backend} store supplied by the caller"
    cold_start(memory, entities)
    models = ModelStore(paths.models)
    plans = plans_from(settings)
    event_log = EventLog(paths.events)
    retrievers = open_retrievers(settings, memory, embedder)
    dense = retrievers.get("dense")
    pipeline = Pipeline(
        retrievers=retrievers,
        policy=make_policy(settings, models, plans),
        plans=plans,
        ranker=make_ranker(settings, models),
        memory=memory,
        gazetteer=Gazetteer.from_entities(entities),
        facts={entity.id: entity_facts(entity) for entity in entities},
        event_log=event_log,
        strategies=tuple(settings.strategies),
        retriever_timeout_s=settings.retriever_timeout_ms / 1000.0,
        known_requests=event_log.request_ids(),
        catalog_changes=changes,
        persist=dense.save if isinstance(dense, FaissDenseRetriever) else None,
        **({"clock": clock} if clock is not None else {}),
    )
    return Stack(settings, pipeline, description, models, local_redis)


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
