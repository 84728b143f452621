"""The composition root: builds every part from ``Settings``, one registry per role.

The search service, the ingest job, replay and the simulator all build their parts here, so a setting
means the same thing in every process. A new strategy is one module in ``retrievers/`` plus one line in
``RETRIEVERS``; a new policy or ranker, one line in ``POLICIES`` or ``RANKERS``.

Stages name their own constructor parameters in errors; ``named_settings`` re-raises them with the
``LTRR_`` variable that fed the parameter.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import redis

from bandit.base import Policy
from bandit.baselines import FixedPlanPolicy, UniformPolicy
from bandit.plans import parse_plans, plan_space
from bandit.reward import RewardConfig
from bandit.vw_policy import MODEL_FILE as VW_MODEL_FILE
from bandit.vw_policy import VWPolicy
from catalog.demo import generate_demo_catalog
from catalog.io import read_entities, write_entities
from catalog.schema import CatalogError, Entity
from contracts import ArtifactError, BackendUnavailable, ConfigError, Plan
from contracts.artifacts import ModelStore, read_manifest, verify_files
from contracts.events import Engagement
from memory_index.base import MemoryStore
from memory_index.local_store import LocalMemoryStore
from memory_index.redis_store import RedisMemoryStore
from ranker.base import Ranker
from ranker.fusion import FusionRanker
from ranker.lambdamart import LambdaMartRanker
from retrievers.base import Retriever
from retrievers.embedding import Embedder, TextEncoder
from services.model_check import serving_version
from services.settings import Settings, env_name, fixed_plan

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

    def spool(self, worker_id: int) -> Path:
        return self.root / "spool" / f"events-{worker_id}.jsonl"

    @property
    def events(self) -> Path:
        return self.root / "events"

    @property
    def archive(self) -> Path:
        return self.root / "events" / "archive"

    @property
    def ingest(self) -> Path:
        return self.root / "ingest"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def catalog_changes(self) -> Path:
        return self.root / "catalog_changes.jsonl"


@contextlib.contextmanager
def named_settings(**setting_by_parameter: str) -> Iterator[None]:
    """Re-raise a stage's ``ConfigError`` about ``parameter`` as one about the setting that fed it
    (``weights[play]`` is looked up as itself, then as ``weights``)."""
    try:
        yield
    except ConfigError as error:
        parameter = error.parameter or ""
        setting = setting_by_parameter.get(parameter) or setting_by_parameter.get(parameter.split("[")[0])
        if setting is not None:
            raise ConfigError(f"{env_name(setting)}: {error.message}") from None
        raise


# -- rewards, plans, catalog ----------------------------------------------------------------------


def reward_config(settings: Settings) -> RewardConfig:
    weights = {f"weights[{engagement.value}]": f"{engagement.value}_weight" for engagement in Engagement}
    with named_settings(**weights, cost_per_candidate="cost_per_candidate", window_seconds="attribution_window_s"):
        return RewardConfig(
            weights=settings.reward_weights,
            cost_per_candidate=settings.cost_per_candidate,
            window_seconds=settings.attribution_window_s,
        )


def plans_from(settings: Settings) -> tuple[Plan, ...]:
    """The plan space the policy chooses among; a fixed policy's plan is added when it is not in it."""
    with named_settings(plans="plans", strategies="strategies", levels="plan_levels"):
        plans = parse_plans(settings.plans) if settings.plans else plan_space(settings.strategies, settings.plan_levels)
    if settings.policy.startswith("fixed:"):
        plan = configured_fixed_plan(settings)
        if not any(offered.draws_like(plan) for offered in plans):
            plans = (*plans, plan)
    return plans


def fallback_strategies(settings: Settings) -> tuple[str, ...]:
    """LTRR_FALLBACK_STRATEGIES among the configured strategies (the default skips those not configured;
    a name set on purpose must be one)."""
    unknown = [name for name in settings.fallback_strategies if name not in settings.strategies]
    if unknown and "fallback_strategies" in settings.model_fields_set:
        raise ConfigError(
            f"LTRR_FALLBACK_STRATEGIES: {unknown[0]!r} is not in LTRR_STRATEGIES ({', '.join(settings.strategies)}); name configured ones, or set it empty"
        )
    return tuple(name for name in settings.fallback_strategies if name in settings.strategies)


def configured_fixed_plan(settings: Settings) -> Plan:
    """``LTRR_POLICY=fixed:<plan>`` over the configured strategies (those it omits draw 0)."""
    try:
        plan = fixed_plan(settings.policy)
    except ValueError as error:
        raise ConfigError(f"LTRR_POLICY: {error}") from None
    unknown = sorted(name for name, _ in plan.quotas if name not in settings.strategies)
    if unknown:
        raise ConfigError(
            f"LTRR_POLICY: fixed plan uses {', '.join(unknown)}, not in LTRR_STRATEGIES ({','.join(settings.strategies)}); "
            "add it there or drop it from the plan"
        )
    return Plan.of({name: plan.quota(name) for name in settings.strategies})


def load_catalog(settings: Settings) -> list[Entity]:
    path = settings.resolved_catalog_path
    if not path.exists():
        if settings.catalog_path is not None:
            raise ConfigError(f"LTRR_CATALOG_PATH (--catalog): {path} does not exist; point it at a JSONL catalog")
        raise ArtifactError(f"no catalog at {path}; run `ltrr index` to generate the demo catalog and build the indexes")
    try:
        return read_entities(path)
    except CatalogError as error:
        raise ConfigError(f"LTRR_CATALOG_PATH (--catalog): {error}") from None


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


# -- memory stores --------------------------------------------------------------------------------


def redis_store(settings: Settings, url: str, timeout_s: float = 2.0, connect: bool = True) -> RedisMemoryStore:
    with named_settings(half_life_s="memory_half_life_s", url="redis_url", retention_s="memory_retention_s",
                        max_entities_per_query="memory_max_per_query"):
        return RedisMemoryStore(url, half_life_s=settings.memory_half_life_s, retention_s=settings.memory_retention_s,
                                max_entities_per_query=settings.memory_max_per_query, timeout_seconds=timeout_s, connect=connect)


def local_store(settings: Settings) -> LocalMemoryStore:
    with named_settings(half_life_s="memory_half_life_s"):
        return LocalMemoryStore(half_life_s=settings.memory_half_life_s)


class RedisUnreachable(ConfigError, BackendUnavailable):
    """Redis gives no answer at a configured URL: an outage a long-running process may wait out, unlike a
    refused password or a server that is not Redis (plain ``ConfigError``)."""


def reachable_redis_store(settings: Settings, url: str, source: str, fix: str) -> RedisMemoryStore:
    """``redis_store`` that has answered a PING; otherwise a ``ConfigError`` naming where the URL came from
    (never the URL itself: it may hold a password), ``RedisUnreachable`` when nothing answered."""
    try:
        store = redis_store(settings, url)
        if store.ping():
            return store
        problem = "no answer to PING"
    except BackendUnavailable as error:
        cause = error.__cause__
        # redis-py files a refused password under ConnectionError: it is a configuration error, not an outage.
        if isinstance(cause, redis.AuthenticationError):
            raise ConfigError(f"{source} is set but Redis does not answer there ({cause.__class__.__name__}: {cause}); {fix}") from None
        problem = "no answer to PING"
    except redis.RedisError as error:  # wrong database number, a server that is not Redis, TLS, auth ...
        raise ConfigError(f"{source} is set but Redis does not answer there ({error.__class__.__name__}: {error}); {fix}") from None
    raise RedisUnreachable(f"{source} is set but Redis does not answer there ({problem}); {fix}")


MEMORY_STORES: dict[str, Callable[..., MemoryStore]] = {"redis": redis_store, "local": local_store}


def open_memory(
    settings: Settings, start_local_redis: Callable[[], str] | None, serve_unreachable: bool = False
) -> tuple[MemoryStore, str]:
    """Redis at LTRR_REDIS_URL, else a local redis-server (``start_local_redis`` returns its URL), else
    in-process. Returns the store and a sentence describing the choice. A LTRR_REDIS_URL that does not
    answer is a ConfigError, unless ``serve_unreachable`` (the service: it starts degraded and keeps trying,
    rather than crash-looping beside its replicas); one that answers wrongly (not Redis, auth) always is."""
    if settings.redis_url:
        fix = "start Redis, fix the URL, or unset LTRR_REDIS_URL to use a local redis-server"
        try:
            return reachable_redis_store(settings, settings.redis_url, "LTRR_REDIS_URL", fix), "redis at LTRR_REDIS_URL"
        except RedisUnreachable:
            if not serve_unreachable:
                raise
        logger.error("Redis at LTRR_REDIS_URL does not answer: serving degraded (lexical and dense only, events spooled "
                     "locally) and retrying every second")
        return redis_store(settings, settings.redis_url, connect=False), "redis at LTRR_REDIS_URL (unreachable at start)"
    if start_local_redis is not None:
        url = start_local_redis()
        logger.info("memory index: local redis-server at %s", url)
        return MEMORY_STORES["redis"](settings, url), f"local redis-server (its URL is in {settings.data_dir}/redis/redis.url)"
    logger.warning(
        "no Redis: the memory index lives in this process only; it is lost at exit, not shared with other "
        "processes, and ingestion runs inside the service (install redis-server or set LTRR_REDIS_URL)"
    )
    return MEMORY_STORES["local"](settings), "in-process store (no persistence, not shared between processes)"


# -- retrievers -----------------------------------------------------------------------------------


@dataclass
class RetrieverParts:
    """What retrievers are built from: the settings, the memory store, one encoder and one dense index
    for every strategy that needs them (``explore`` shares the dense index, so catalog writes reach it)."""

    settings: Settings
    memory: MemoryStore
    embedder: TextEncoder | None = None
    seed: int = 0
    opened: dict[str, Retriever] = field(default_factory=dict)

    def encoder(self) -> TextEncoder:
        if self.embedder is None:
            self.embedder = Embedder(threads=self.settings.encoder_threads)
        return self.embedder

    def shared(self, name: str) -> Retriever:
        if name not in self.opened:
            self.opened[name] = RETRIEVERS[name](self)
        return self.opened[name]


def opensearch_url(settings: Settings) -> str:
    if not settings.opensearch_url:
        raise ConfigError("LTRR_BACKEND=opensearch needs LTRR_OPENSEARCH_URL (e.g. http://localhost:9200)")
    return settings.opensearch_url


def _lexical(parts: RetrieverParts) -> Retriever:
    settings = parts.settings
    with named_settings(popularity_prior="lexical_popularity_prior", url="opensearch_url"):
        if settings.backend == "opensearch":
            from retrievers.lexical_opensearch import OpenSearchLexicalRetriever

            return OpenSearchLexicalRetriever(opensearch_url(settings), popularity_prior=settings.lexical_popularity_prior)
        from retrievers.lexical_tantivy import TantivyLexicalRetriever

        return TantivyLexicalRetriever.open(Paths(settings.data_dir).lexical, popularity_prior=settings.lexical_popularity_prior,
                                            hold_writer=False)  # every process on the data directory may write: they take turns


def _dense(parts: RetrieverParts) -> Retriever:
    if parts.settings.backend == "opensearch":
        from retrievers.dense_opensearch import OpenSearchDenseRetriever

        with named_settings(url="opensearch_url"):
            return OpenSearchDenseRetriever(opensearch_url(parts.settings), parts.encoder())
    from retrievers.dense_faiss import FaissDenseRetriever

    return FaissDenseRetriever.open(parts.encoder(), Paths(parts.settings.data_dir).dense)


def _memory(parts: RetrieverParts) -> Retriever:
    from retrievers.memory import MemoryRetriever

    return MemoryRetriever(parts.memory)


def _explore(parts: RetrieverParts) -> Retriever:
    from retrievers.explore import ExploreRetriever

    return ExploreRetriever(parts.shared("dense"), parts.memory, seed=parts.seed)  # type: ignore[arg-type]


RETRIEVERS: dict[str, Callable[[RetrieverParts], Retriever]] = {
    "lexical": _lexical,
    "dense": _dense,
    "memory": _memory,
    "explore": _explore,
}


def open_retrievers(
    settings: Settings, memory: MemoryStore, embedder: TextEncoder | None = None, seed: int | None = None
) -> dict[str, Retriever]:
    """The configured strategies, in ``LTRR_STRATEGIES`` order, built by ``RETRIEVERS``."""
    unknown = [name for name in settings.strategies if name not in RETRIEVERS]
    if unknown:
        raise ConfigError(f"LTRR_STRATEGIES: unknown strategy {unknown[0]!r}; known: {', '.join(sorted(RETRIEVERS))}")
    parts = RetrieverParts(settings, memory, embedder, library_seed(settings) if seed is None else seed)
    return {name: parts.shared(name) for name in settings.strategies}


# -- policies -------------------------------------------------------------------------------------


def _vw(settings: Settings, plans: tuple[Plan, ...], models: ModelStore | None, seed: int) -> Policy:
    version = serving_version(models, "bandit") if models is not None else None
    if models is not None and version is not None:
        return _load_vw(models.directory("bandit", version), seed, settings)
    with named_settings(epsilon="bandit_epsilon", args="bandit_vw_args", explore_halflife="bandit_explore_halflife",
                        exploration="bandit_exploration", probability_floor="bandit_probability_floor"):
        return VWPolicy(seed=seed, epsilon=settings.bandit_epsilon, args=settings.bandit_vw_args, plans=plans,
                        explore_halflife=settings.bandit_explore_halflife, exploration=settings.bandit_exploration,
                        probability_floor=settings.bandit_probability_floor)


def _uniform(settings: Settings, plans: tuple[Plan, ...], models: ModelStore | None, seed: int) -> Policy:
    return UniformPolicy()


def _fixed(settings: Settings, plans: tuple[Plan, ...], models: ModelStore | None, seed: int) -> Policy:
    return FixedPlanPolicy(configured_fixed_plan(settings))


POLICIES: dict[str, Callable[[Settings, tuple[Plan, ...], ModelStore | None, int], Policy]] = {
    "vw": _vw,
    "uniform": _uniform,
    "fixed": _fixed,
}


def make_policy(
    settings: Settings, plans: tuple[Plan, ...], models: ModelStore | None = None, seed: int | None = None
) -> Policy:
    """The ``LTRR_POLICY`` policy; ``vw`` loads the published model from ``models`` when there is one
    (the newest one that verifies when ``CURRENT``'s does not).
    ``seed`` seeds VW's own bootstrap (its learning), not the plan draws: those come from the caller."""
    kind = settings.policy.split(":", 1)[0]
    return POLICIES[kind](settings, plans, models, library_seed(settings) if seed is None else seed)


def library_seed(settings: Settings) -> int:
    """The integer seed handed to libraries (VW, explore) when the caller has none of its own."""
    return settings.seed if settings.seed is not None else 0


def policy_from_directory(directory: Path, settings: Settings) -> Policy:
    """A saved VW policy (the reloader and replay read saved policies only through here)."""
    return _load_vw(directory, library_seed(settings), settings)


def _load_vw(directory: Path, seed: int, settings: Settings) -> VWPolicy:
    """``VWPolicy.load`` after checking every file the manifest lists (it checks only ``model.vw``), serving
    with the configured probability floor: the floor is a serving transform, so it applies to a published
    bandit too (the exploration is part of the saved model and stays what it was trained with)."""
    what, fix = "bandit model", "load a directory written by VWPolicy.save, or retrain"
    verify_files(directory, read_manifest(directory, what, fix, [VW_MODEL_FILE]), what, VW_MODEL_FILE)
    policy = VWPolicy.load(directory, seed=seed)
    policy.probability_floor = settings.bandit_probability_floor
    return policy


def policy_for_replay(spec: str, settings: Settings) -> Policy:
    """``current`` (the published bandit), a model directory, ``uniform`` or ``fixed:<plan>``."""
    if spec == "current":
        directory = ModelStore(Paths(settings.data_dir).models).current_directory("bandit")
        if directory is None:
            raise ConfigError("--policy current: no bandit model has been saved yet; run `ltrr ingest` after some traffic")
        return policy_from_directory(directory, settings)
    if spec == "uniform":
        return UniformPolicy()
    if spec.startswith("fixed:"):
        try:
            return FixedPlanPolicy(fixed_plan(spec))  # the logged plans decide which strategies exist
        except ValueError as error:
            raise ConfigError(f"--policy: {error}") from None
    path = Path(spec)
    if not path.is_dir():
        raise ConfigError(f"--policy: {spec!r} is not current, uniform, fixed:<plan> or a model directory")
    return policy_from_directory(path, settings)


# -- rankers --------------------------------------------------------------------------------------


def ranker_from_directory(directory: Path, models: ModelStore) -> Ranker:
    try:
        return LambdaMartRanker.load(directory)
    except ArtifactError as error:
        pointer = models.root / "ranker" / "CURRENT"
        raise ArtifactError(f"{error}; to serve reciprocal-rank fusion until ingest trains a new model, delete {pointer}") from error


def _lambdamart(settings: Settings, models: ModelStore) -> Ranker | None:
    version = serving_version(models, "ranker")
    return None if version is None else ranker_from_directory(models.directory("ranker", version), models)


def _fusion(settings: Settings, models: ModelStore) -> Ranker:
    with named_settings(strategies="strategies"):
        return FusionRanker(strategies=tuple(settings.strategies))


RANKERS: dict[str, Callable[[Settings, ModelStore], Ranker | None]] = {"lambdamart": _lambdamart, "fusion": _fusion}


def make_ranker(settings: Settings, models: ModelStore) -> Ranker:
    """``LTRR_RANKER``: ``lambdamart`` serves the published model (the newest one that verifies when
    ``CURRENT``'s does not), and reciprocal-rank fusion until one exists; ``fusion`` always serves fusion."""
    return RANKERS[settings.ranker](settings, models) or _fusion(settings, models)
