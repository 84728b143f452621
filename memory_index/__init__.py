"""Q2E memory: per normalized query, which entities people engaged with (Redis or in-process)."""

from memory_index.base import EntityMeta, EntityStat, MemoryStore, StrategyOutcome, StrategyRecord, observed_score
from memory_index.cold_start import predicted_pairs
from memory_index.local_store import LocalMemoryStore
from memory_index.redis_store import RedisMemoryStore

__all__ = [
    "EntityMeta",
    "EntityStat",
    "LocalMemoryStore",
    "MemoryStore",
    "RedisMemoryStore",
    "StrategyOutcome",
    "StrategyRecord",
    "observed_score",
    "predicted_pairs",
]
