"""All configuration in one place: every field has a default and an ``LTRR_`` environment variable.

Build ``Settings()`` in ``main()`` / ``create_app()``, never at import.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from typing_extensions import Annotated

from bandit.vw_policy import DEFAULT_ARGS as DEFAULT_VW_ARGS
from contracts.events import Engagement


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LTRR_", extra="ignore")

    data_dir: Path = Field(Path("data"), description="Where indexes, models, the event log and local Redis live.")
    catalog_path: Path | None = Field(None, description="JSONL catalog to index; default: the generated demo catalog.")
    demo_size: int = Field(20_000, ge=100, description="Entities in the generated demo catalog.")
    demo_seed: int = 7

    redis_url: str | None = Field(None, description="Redis for the memory index; unset: start a local redis-server.")
    start_local_redis: bool = Field(True, description="When no LTRR_REDIS_URL: start redis-server if installed.")

    strategies: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["lexical", "dense", "memory"], description="Retrievers the bandit chooses among."
    )
    plan_levels: Annotated[list[int], NoDecode] = Field(default_factory=lambda: [0, 20, 100])
    plans: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Explicit plan list like 'dense=20+lexical=0+memory=0'; empty: all combinations."
    )
    dense_index: str = Field("flat", description="FAISS index kind: flat or hnsw.")
    backend: str = Field("embedded", description="Lexical and dense backend: embedded (tantivy + FAISS) or opensearch.")
    opensearch_url: str | None = Field(None, description="OpenSearch for backend=opensearch, e.g. http://localhost:9200.")
    lexical_popularity_prior: float = Field(
        0.0, ge=0.0, description="Weight of the lexical popularity prior (0: off); the more popular of two equal-text entities ranks first."
    )
    memory_half_life_s: float | None = Field(None, gt=0.0, description="Half-life of memory-index counts; unset: no decay.")

    click_weight: float = 1.0
    favorite_weight: float = 2.0
    play_weight: float = 3.0
    cost_per_candidate: float = Field(0.002, ge=0.0, description="Reward cost of each candidate a plan draws.")
    attribution_window_s: float = Field(300.0, gt=0.0, description="Feedback later than this after an impression earns nothing.")

    encoder_threads: int = Field(1, ge=1, description="Torch threads the service uses to encode queries.")
    retriever_timeout_ms: float = Field(250.0, gt=0.0)
    bandit_epsilon: float = Field(0.1, ge=0.0, le=1.0, description="Share of traffic the bandit spends exploring.")
    bandit_explore_halflife: int = Field(
        1000, ge=0, description="Warm-up: a new bandit chooses uniformly, and that extra exploration halves every this many updates (0: none)."
    )
    bandit_vw_args: str = Field(
        DEFAULT_VW_ARGS, description="Vowpal Wabbit options (without --epsilon and the seed)."
    )
    seed: int = 0
    policy: str = Field("vw", description="Plan policy: vw, uniform, or fixed:<plan name>.")

    ranker_min_new_impressions: int = Field(200, ge=1, description="Engaged impressions needed before a retrain.")
    ranker_holdout_fraction: float = Field(0.2, gt=0.0, lt=1.0)
    ingest_interval_s: float = Field(5.0, gt=0.0, description="In-process ingestion period when no Redis is available.")
    reload_interval_s: float = Field(2.0, ge=0.0, description="How often the service checks for new model versions.")

    api_key: str | None = Field(None, description="When set, entity writes need the X-API-Key header.")
    host: str = "127.0.0.1"
    port: int = 8000

    @field_validator("strategies", "plans", mode="before")
    @classmethod
    def _csv_strings(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("plan_levels", mode="before")
    @classmethod
    def _csv_levels(cls, value: object) -> object:
        return _split_csv(value)

    @property
    def resolved_catalog_path(self) -> Path:
        return self.catalog_path or self.data_dir / "catalog.jsonl"

    @property
    def reward_weights(self) -> dict[Engagement, float]:
        return {Engagement.CLICK: self.click_weight, Engagement.FAVORITE: self.favorite_weight, Engagement.PLAY: self.play_weight}
