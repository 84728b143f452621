"""All configuration in one place: every field has a default and an ``LTRR_`` environment variable.

Build settings with ``load_settings()`` in ``main()`` / ``create_app()``, never at import: it turns an
invalid value into a ``ConfigError`` that names the variable and what it accepts, and warns about
``LTRR_`` variables that are no setting (with the closest one).
"""

from __future__ import annotations

import difflib
import logging
import os
import re
from pathlib import Path
from typing import Any, Literal, Mapping

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from typing_extensions import Annotated

from bandit.vw_policy import DEFAULT_ARGS as DEFAULT_VW_ARGS
from contracts import BadRequest, ConfigError, Plan
from contracts.events import Engagement

logger = logging.getLogger(__name__)

ENV_PREFIX = "LTRR_"
SECRET_FIELDS = frozenset({"api_key", "feedback_key", "user_id_salt"})
URL_FIELDS = frozenset({"redis_url", "opensearch_url"})
_URL_PASSWORD = re.compile(r"(?<=://)[^/@]*@")


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def env_name(field_name: str) -> str:
    return ENV_PREFIX + field_name.upper()


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", allow_inf_nan=False)

    data_dir: Path = Field(default=Path("data"), description="Where indexes, models, the event log and local Redis live.")
    catalog_path: Path | None = Field(default=None, description="JSONL catalog to index; default: the generated demo catalog.")
    demo_size: int = Field(default=20_000, ge=100, description="Entities in the generated demo catalog.")
    demo_seed: int = Field(default=7, description="Seed of the generated demo catalog.")

    redis_url: str | None = Field(default=None, description="Redis for the memory index; unset: start a local redis-server.")
    start_local_redis: bool = Field(default=True, description="When no LTRR_REDIS_URL: start redis-server if installed.")

    strategies: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["lexical", "dense", "memory"], description="Retrievers the bandit chooses among."
    )
    plan_levels: Annotated[list[int], NoDecode] = Field(
        default_factory=lambda: [0, 20, 100], description="Quotas a plan may give each strategy."
    )
    plans: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Explicit plan list like 'dense=20+lexical=0+memory=0'; empty: all combinations."
    )
    dense_index: Literal["flat", "hnsw"] = Field(default="flat", description="FAISS index kind: flat (exact) or hnsw.")
    backend: Literal["embedded", "opensearch"] = Field(
        default="embedded", description="Lexical and dense backend: embedded (tantivy + FAISS) or opensearch."
    )
    opensearch_url: str | None = Field(default=None, description="OpenSearch for backend=opensearch, e.g. http://localhost:9200.")
    lexical_popularity_prior: float = Field(
        default=0.0, ge=0.0, description="Weight of the lexical popularity prior (0: off); the more popular of two equal-text entities ranks first."
    )
    memory_half_life_s: float | None = Field(default=None, gt=0.0, description="Half-life of memory-index counts; unset: no decay.")
    memory_retention_s: float | None = Field(
        default=90 * 86400.0, ge=1.0, description="A query's memory-index entries expire this long after its last impression (Redis); unset: kept."
    )
    memory_max_per_query: int | None = Field(
        default=1000, ge=1, description="Entities the memory index keeps per query (Redis; the lowest-scored go first); unset: no cap."
    )

    click_weight: float = Field(default=1.0, ge=0.0, description="Reward of a click.")
    favorite_weight: float = Field(default=2.0, ge=0.0, description="Reward of a favorite.")
    play_weight: float = Field(default=3.0, ge=0.0, description="Reward of a play.")
    cost_per_candidate: float = Field(default=0.002, ge=0.0, description="Reward cost of each candidate a plan draws.")
    attribution_window_s: float = Field(default=300.0, gt=0.0, description="Feedback later than this after an impression earns nothing.")

    encoder_threads: int = Field(default=1, ge=1, description="Torch threads the service uses to encode queries.")
    retriever_timeout_ms: float = Field(
        default=250.0, gt=0.0, description="A retriever slower than this is skipped for the request; the budget starts when the search is admitted."
    )
    redis_timeout_ms: float = Field(
        default=250.0, gt=0.0, description="Timeout of the service's Redis calls on the request path; after a failure Redis is retried every second."
    )
    spool_max_mb: float = Field(
        default=256.0, gt=0.0, description="Size of the local spool that keeps events while Redis is unreachable; when full, searches get 503."
    )
    max_concurrent_searches: int = Field(
        default=0, ge=0, description="Searches a process runs at once; the rest wait in a FIFO queue (0: the number of CPU cores)."
    )
    queue_timeout_ms: float = Field(
        default=15000.0, gt=0.0, description="A search not admitted within this long gets 503 with Retry-After."
    )
    queue_max_waiting: int = Field(default=1000, ge=1, description="Searches allowed to wait for admission; more get 503 at once.")
    fallback_strategies: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["lexical", "dense"],
        description="Top up a page the plan's strategies filled with fewer than k results, from these in order until it has k "
        "(provenance `fallback`, charged like drawn candidates; dense after lexical, which has no answer for words it does not index); empty: no top-up.",
    )
    randomize_pages: float = Field(
        default=0.0, ge=0.0, le=1.0,
        description="Share of pages on which two adjacent results are shown in random order, logged (pair, swapped, probability): "
        "evidence of how much each position is examined that no ranker chose. 0 (the default): none.",
    )
    bandit_epsilon: float = Field(default=0.1, ge=0.0, le=1.0, description="Share of traffic the bandit spends exploring.")
    bandit_explore_halflife: int = Field(
        default=1000, ge=0, description="Warm-up: a new bandit chooses uniformly, and that extra exploration halves every this many updates (0: none)."
    )
    bandit_vw_args: str = Field(default=DEFAULT_VW_ARGS, description="Vowpal Wabbit options (without --epsilon, the seed and the exploration).")
    bandit_exploration: Literal["epsilon", "bag", "cover", "squarecb"] = Field(
        default="bag", description="How the bandit explores: epsilon-greedy, bagging (5 bootstraps), online cover (5) or SquareCB."
    )
    bandit_history_features: bool = Field(
        default=False,
        description="The bandit's context carries what each strategy earned for this query and its kind (memory index); ingest records it. Experimental: see the README.",
    )
    bandit_probability_floor: float = Field(
        default=0.002, ge=0.0, lt=1.0,
        description="Least probability of every allowed plan (at most 1 / plans); a distribution below it is mixed with the uniform one up to it.",
    )
    seed: int | None = Field(
        default=None,
        ge=0, description="Seed of this process's random draws (plans, explore); unset: OS entropy, logged at start. 0 counts as set."
    )
    worker_id: int = Field(
        default=0, ge=0, description="This worker's or replica's id: with LTRR_SEED set, each id draws its own stream; each has its own event spool."
    )
    workers: int = Field(
        default=1, ge=1, le=64, description="Worker processes `ltrr serve` runs on one port (they need Redis; any of them takes entity writes)."
    )
    policy: str = Field(default="vw", description="Plan policy: vw, uniform, or fixed:<plan> (e.g. fixed:dense=100; omitted strategies draw 0).")

    ranker: Literal["lambdamart", "fusion"] = Field(
        default="lambdamart", description="lambdamart: the model ingest publishes (fusion until one exists); fusion: reciprocal-rank fusion always."
    )
    ranker_min_new_impressions: int = Field(default=200, ge=1, description="Engaged impressions needed before a retrain.")
    ranker_threads: int = Field(
        default=1, ge=1, description="Threads LightGBM trains with; the trees depend on the count, so it is fixed, not the machine's CPU count."
    )
    ranker_correction: Literal["naive", "none", "position"] = Field(
        default="naive",
        description="How clicks train the ranker: naive keeps logged candidates below the page as negatives; none and position "
        "train on the shown results only, position with LightGBM's position-aware lambdarank (see README, Learning from clicks).",
    )
    ranker_holdout_fraction: float = Field(default=0.2, gt=0.0, lt=1.0, description="Newest share of rows held out to gate a retrained ranker.")
    ingest_lateness_s: float = Field(
        default=30.0, ge=0.0, description="Ingest closes an impression this long after its attribution window, for events that arrive late."
    )
    dedupe_horizon_s: float = Field(
        default=6 * 3600.0, ge=60.0, description="How long ingest remembers which impressions it applied (a repeat within it counts once)."
    )
    archive_segment_mb: float = Field(default=64.0, gt=0.0, description="Ingest starts a new event-archive segment past this size (or a new UTC day).")
    archive_retention_days: float = Field(
        default=30.0, gt=0.0, description="Event-archive segments older than this are deleted (they hold query text)."
    )
    ingest_interval_s: float = Field(default=5.0, gt=0.0, description="In-process ingestion period when no Redis is available.")
    reload_interval_s: float = Field(default=2.0, ge=0.0, description="How often the service checks for new model versions (0: never).")

    user_id_salt: str | None = Field(
        default=None,
        description="Salt of the user- and session-id hash (HMAC-SHA256); unset: one generated once, kept in Redis (or <data_dir>/secrets/ without Redis).",
    )
    api_key: str | None = Field(
        default=None, description="When set, entity writes need the X-API-Key header (checked before the body is read)."
    )
    feedback_key: str | None = Field(
        default=None,
        description="When set, POST /feedback needs the X-Feedback-Key header: for deployments whose own servers relay clicks (browsers then post to those servers, not here).",
    )
    allow_open_writes: bool = Field(
        default=False, description="Let `ltrr serve` listen on a non-loopback address without LTRR_API_KEY (entity writes open to anyone who can reach it)."
    )
    max_body_bytes: int = Field(default=1 << 20, ge=65536, description="Request bodies larger than this get 413 before they are parsed.")
    log_format: Literal["text", "json"] = Field(
        default="text", description="Log lines as text, or as one JSON object a line (time, level, logger, message) for a log collector."
    )
    host: str = Field(default="127.0.0.1", description="Address `ltrr serve` binds.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port `ltrr serve` listens on.")
    numeric_isa: Literal["avx2", "native"] = Field(
        default="avx2",
        description="Instruction set of the encoder and FAISS: avx2 gives the same numbers on every x86-64 machine with AVX2; native may differ by machine.",
    )
    no_progress: bool = Field(default=False, description="Hide progress bars (progress still goes to the log as lines).")

    @field_validator("strategies", "plans", "plan_levels", "fallback_strategies", mode="before")
    @classmethod
    def _csv_lists(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("seed", "memory_half_life_s", "memory_retention_s", "memory_max_per_query", "redis_url", "opensearch_url", "api_key", "feedback_key", "user_id_salt", "catalog_path", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        """``LTRR_SEED=`` in an env file means unset, as it reads."""
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("policy")
    @classmethod
    def _policy_syntax(cls, value: str) -> str:
        if value in ("vw", "uniform"):
            return value
        if value.startswith("fixed:"):
            fixed_plan(value)
            return value
        raise ValueError(f"expected vw, uniform or fixed:<plan> (e.g. fixed:dense=100+lexical=20), got {value!r}")

    @property
    def resolved_catalog_path(self) -> Path:
        return self.catalog_path or self.data_dir / "catalog.jsonl"

    @property
    def reward_weights(self) -> dict[Engagement, float]:
        return {Engagement.CLICK: self.click_weight, Engagement.FAVORITE: self.favorite_weight, Engagement.PLAY: self.play_weight}


def fixed_plan(policy: str) -> Plan:
    """The plan of ``fixed:<plan>``; ``ValueError`` says how to write it."""
    text = policy.removeprefix("fixed:")
    try:
        plan = Plan.parse(text)
    except BadRequest:
        raise ValueError(f"cannot parse the plan {text!r}; write it as fixed:strategy=quota+strategy=quota, e.g. fixed:dense=100") from None
    if any(quota < 0 for _, quota in plan.quotas) or plan.total <= 0:
        raise ValueError(f"the plan {text!r} draws no candidates; give at least one strategy a quota > 0")
    return plan


def load_settings(**overrides: Any) -> Settings:
    """Settings from the process environment with ``overrides`` (command-line options) on top.

    Raises ``ConfigError`` naming the ``LTRR_`` variable (or the option), the bad value and what is allowed."""
    warn_unknown_variables(os.environ)
    try:
        return Settings(**overrides)
    except ValidationError as error:
        raise ConfigError(_describe(error, overrides)) from None


def _describe(error: ValidationError, overrides: Mapping[str, Any]) -> str:
    problems = []
    for item in error.errors():
        field_name = str(item["loc"][0]) if item.get("loc") else "settings"
        source = f"--{field_name.replace('_', '-')}" if field_name in overrides else env_name(field_name)
        message = str(item.get("msg", "invalid value")).removeprefix("Value error, ")
        shown = "set" if field_name in SECRET_FIELDS else repr(item.get("input"))
        problems.append(f"{source}: {message} (got {shown})")
    return "; ".join(problems)


def warn_unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """Log a warning for each ``LTRR_`` variable that is no setting, naming the closest one; returns them."""
    known = {env_name(name) for name in Settings.model_fields}
    unknown = sorted(name for name in environ if name.startswith(ENV_PREFIX) and name not in known)
    for name in unknown:
        closest = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.5)
        hint = f"; did you mean {closest[0]}?" if closest else "; `ltrr config` lists every setting"
        logger.warning("%s is not an ltrr setting and is ignored%s", name, hint)
    return unknown


def redact(field_name: str, value: Any) -> Any:
    """What ``ltrr config`` may show: secrets as set/unset, URLs without their password."""
    if field_name in SECRET_FIELDS:
        return "set" if value else "unset"
    if field_name in URL_FIELDS and isinstance(value, str):
        return _URL_PASSWORD.sub("***@", value)
    return value


def describe_settings(settings: Settings, environ: Mapping[str, str] | None = None,
                      overrides: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """One row per setting: ``name`` (the LTRR_ variable), ``value`` (redacted), ``source`` and ``description``."""
    environ = os.environ if environ is None else environ
    overrides = overrides or {}
    rows = []
    for field_name, info in Settings.model_fields.items():
        value = getattr(settings, field_name)
        if isinstance(value, Path):
            value = str(value)
        if field_name in overrides:
            source = "option"
        elif env_name(field_name) in environ:
            source = "environment"
        else:
            source = "default"
        rows.append({"name": env_name(field_name), "value": redact(field_name, value), "source": source,
                     "description": info.description or ""})
    return rows
