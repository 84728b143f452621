"""Q2E store in Redis.

Keys (all under ``prefix``, default ``ltrr:q2e:``):

- ``<prefix>n:<query>``  hash of counts: ``i:<entity_id>`` impressions, ``c:<entity_id>`` clicks (both
  decayed as of the pair's last update when ``half_life_s`` is set), ``t:<entity_id>`` that last update
  (event time, seconds)
- ``<prefix>s:<query>``  sorted set ``entity_id -> score``; observed pairs score
  ``1 + (clicks + alpha*prior) / (impressions + alpha)``, predicted pairs keep their prior in [0, 1)
- ``<prefix>e:<entity_id>``  set of the queries the entity appears in (so ``forget`` is targeted)
- ``<prefix>x``  hash ``entity_id -> exposure``, impressions over every query (never decayed)
- ``<prefix>totals``  hash of raw, undecayed totals: ``queries`` (query keys created), ``impressions``, ``clicks``

With ``retention_s`` set, a query's keys expire that long after their last record (an entity's set of
queries does not, so ``forget`` always finds every query still holding it); with ``max_entities_per_query`` set, the lowest-scored entities beyond it are dropped from the query.

``record``, ``predict`` and ``forget`` are Lua scripts: one round trip, atomic, and a predicted pair can
never overwrite an observed one. ``record`` applies the time decay of ``MemoryStore`` in the script, with the
same formula as ``LocalMemoryStore``. The constructor connects and pings, raising ``BackendUnavailable``
at once when the server cannot be reached, so a caller can fall back to ``LocalMemoryStore`` at startup.
"""

from __future__ import annotations

import logging
import re
from contextlib import contextmanager
from typing import Iterable, Iterator, Sequence, cast

import orjson
import redis
import redis.client

from contracts import BackendUnavailable, ConfigError
from memory_index.base import (
    EntityStat,
    StrategyOutcome,
    StrategyRecord,
    check_half_life,
    check_prior,
    check_smoothing,
    check_timestamp,
    unique_shown,
)

logger = logging.getLogger(__name__)

# (query, shown, clicked, timestamp, late clicks): one impression's record for ``queue_records``.
Record = tuple[str, Sequence[str], Iterable[str], float, Sequence[str]]

# Any number of records in one call. KEYS: exposure, totals; ARGV: alpha, prior, half-life, retention, cap, the
# key prefix, then the records as one JSON array of [query, time, entity ids, flags] (flags: one character an
# entity, 0 shown, 1 shown and clicked, 2 clicked only: an engagement whose impression was already counted).
# The per-query and per-entity keys are built here from the prefix rather than declared in KEYS: one argument
# for a batch instead of three a pair keeps redis-py's packing off ingest's critical path. That is allowed on
# a single Redis server (the store's deployment); a cluster would refuse the undeclared keys, and also the
# declared ones, which span slots.
_RECORD_LUA = """
local alpha = tonumber(ARGV[1])
local prior = tonumber(ARGV[2])
local half_life = tonumber(ARGV[3])
local retention = tonumber(ARGV[4])
local cap = tonumber(ARGV[5])
local function fmt(value) return string.format('%.17g', value) end
local function kept(elapsed)
  if half_life then return 0.5 ^ (elapsed / half_life) end
  return 1
end
local total_impressions, total_clicks, new_queries = 0, 0, 0
local prefix = ARGV[6]
local SLICE = 1000
local records = 0
local exposure = {}
for _, record in ipairs(cjson.decode(ARGV[7])) do
  local query, now, entity_ids, flags = record[1], tonumber(record[2]), record[3], record[4]
  local counts, scores = prefix .. 'n:' .. query, prefix .. 's:' .. query
  if redis.call('EXISTS', counts) == 0 then new_queries = new_queries + 1 end
  -- A record's entities are distinct: their counts are read, written and scored in one call each, per
  -- slice of SLICE entities (Lua's unpack takes at most about 8,000 values).
  for first = 1, #entity_ids, SLICE do
    local last = math.min(first + SLICE - 1, #entity_ids)
    local fields = {}
    for i = first, last do
      local entity_id, j = entity_ids[i], 3 * (i - first)
      fields[j + 1], fields[j + 2], fields[j + 3] = 'i:' .. entity_id, 'c:' .. entity_id, 't:' .. entity_id
    end
    local stored = redis.call('HMGET', counts, unpack(fields))
    local written, scored = {}, {}
    for i = first, last do
      local entity_id, j = entity_ids[i], 3 * (i - first)
      local flag = string.sub(flags, i, i)
      local shown, click = 1, 0
      if flag == '1' then click = 1 end
      if flag == '2' then shown, click = 0, 1 end
      local impressions = tonumber(stored[j + 1] or '0')
      local clicks = tonumber(stored[j + 2] or '0')
      local last_update = tonumber(stored[j + 3] or '') or now
      if now >= last_update then
        local weight = kept(now - last_update)
        impressions = impressions * weight + shown
        clicks = clicks * weight + click
        last_update = now
      else
        local weight = kept(last_update - now)
        impressions = impressions + shown * weight
        clicks = clicks + click * weight
      end
      local w = 2 * j
      written[w + 1], written[w + 2] = fields[j + 1], fmt(impressions)
      written[w + 3], written[w + 4] = fields[j + 2], fmt(clicks)
      written[w + 5], written[w + 6] = fields[j + 3], fmt(last_update)
      local score = 1 + (clicks + alpha * prior) / (impressions + alpha)
      scored[2 * (i - first) + 1], scored[2 * (i - first) + 2] = fmt(score), entity_id
      if shown == 1 then exposure[entity_id] = (exposure[entity_id] or 0) + 1 end
      total_impressions, total_clicks = total_impressions + shown, total_clicks + click
      -- A pair with counts is in its entity's set already (counts and set entries are removed together).
      if not stored[j + 1] then redis.call('SADD', prefix .. 'e:' .. entity_id, query) end
    end
    redis.call('HSET', counts, unpack(written))
    redis.call('ZADD', scores, unpack(scored))
  end
  if retention then
    redis.call('EXPIRE', counts, retention)
    redis.call('EXPIRE', scores, retention)
  end
  if cap then
    local extra = redis.call('ZCARD', scores) - cap
    if extra > 0 then
      for _, dropped in ipairs(redis.call('ZRANGE', scores, 0, extra - 1)) do
        redis.call('ZREM', scores, dropped)
        redis.call('HDEL', counts, 'i:' .. dropped, 'c:' .. dropped, 't:' .. dropped)
      end
    end
  end
  records = records + 1
end
for entity_id, shown in pairs(exposure) do redis.call('HINCRBY', KEYS[1], entity_id, shown) end
redis.call('HINCRBY', KEYS[2], 'queries', new_queries)
redis.call('HINCRBY', KEYS[2], 'impressions', total_impressions)
redis.call('HINCRBY', KEYS[2], 'clicks', total_clicks)
return records
"""

_PREDICT_LUA = """
local written = 0
for i = 1, #KEYS / 2 do
  local scores_key = KEYS[2 * i - 1]
  local entity_key = KEYS[2 * i]
  local entity_id = ARGV[3 * i - 2]
  local current = redis.call('ZSCORE', scores_key, entity_id)
  if (not current) or tonumber(current) < 1 then
    redis.call('ZADD', scores_key, ARGV[3 * i - 1], entity_id)
    redis.call('SADD', entity_key, ARGV[3 * i])
    written = written + 1
  end
end
return written
"""

# KEYS: exposure; ARGV: the key prefix, then the entity ids. Per-query keys are built here, as in _RECORD_LUA.
_FORGET_LUA = """
local prefix = ARGV[1]
for i = 2, #ARGV do
  local entity_id = ARGV[i]
  local entity_key = prefix .. 'e:' .. entity_id
  for _, query in ipairs(redis.call('SMEMBERS', entity_key)) do
    redis.call('ZREM', prefix .. 's:' .. query, entity_id)
    redis.call('HDEL', prefix .. 'n:' .. query, 'i:' .. entity_id, 'c:' .. entity_id, 't:' .. entity_id)
  end
  redis.call('DEL', entity_key)
  redis.call('HDEL', KEYS[1], entity_id)
end
return #ARGV - 1
"""

_PREDICT_BATCH = 500


class RedisMemoryStore:
    """``MemoryStore`` in Redis; see the module docstring for the key layout.

    ``top_limit`` caps ``n`` in ``top`` (one ZREVRANGE never returns more); ``half_life_s`` sets the time
    decay described in ``MemoryStore`` (``None``: no decay). Raises ``ConfigError`` for a
    malformed URL and ``BackendUnavailable`` when the server does not answer, here and in every method.
    """

    backend = "redis"

    def __init__(
        self,
        url: str,
        prefix: str = "ltrr:q2e:",
        alpha: float = 2.0,
        prior: float = 0.05,
        top_limit: int = 1000,
        timeout_seconds: float = 2.0,
        half_life_s: float | None = None,
        retention_s: float | None = None,
        max_entities_per_query: int | None = None,
        connect: bool = True,
    ) -> None:
        """``connect=False`` skips the PING (a service that starts while Redis is down and serves degraded)."""
        check_smoothing(alpha, prior)
        check_half_life(half_life_s)
        if not prefix:
            raise ConfigError.about("prefix", "expected a non-empty key prefix such as 'ltrr:q2e:', got ''")
        self.url = url
        self.prefix = prefix
        self.alpha = alpha
        self.prior = prior
        self.top_limit = top_limit
        self.half_life_s = None if half_life_s is None else float(half_life_s)
        if retention_s is not None and not retention_s >= 1:
            raise ConfigError.about("retention_s", f"expected seconds >= 1, or unset to keep entries; got {retention_s!r}")
        if max_entities_per_query is not None and not max_entities_per_query >= 1:
            raise ConfigError.about("max_entities_per_query", f"expected at least 1, or unset for no cap; got {max_entities_per_query!r}")
        self.retention_s = None if retention_s is None else int(retention_s)
        self.max_entities_per_query = max_entities_per_query
        try:
            self._client = redis.Redis.from_url(
                url, socket_connect_timeout=timeout_seconds, socket_timeout=timeout_seconds, decode_responses=True
            )
        except ValueError as error:
            raise ConfigError.about(
                "url", f"not a Redis URL ({error}); use e.g. redis://localhost:6379/0"
            ) from error
        if connect:
            with self._unavailable_as_error():
                self._client.ping()
        self._record_script = self._client.register_script(_RECORD_LUA)
        self._predict_script = self._client.register_script(_PREDICT_LUA)
        self._forget_script = self._client.register_script(_FORGET_LUA)

    @contextmanager
    def _unavailable_as_error(self) -> Iterator[None]:
        try:
            yield
        except (redis.ConnectionError, redis.TimeoutError) as error:
            raise BackendUnavailable(
                f"the Redis of the memory index is unreachable ({error.__class__.__name__}); start redis-server "
                "or fix its URL"
            ) from error

    def _counts_key(self, query: str) -> str:
        return f"{self.prefix}n:{query}"

    def _scores_key(self, query: str) -> str:
        return f"{self.prefix}s:{query}"

    def _entity_key(self, entity_id: str) -> str:
        return f"{self.prefix}e:{entity_id}"

    def _exposure_key(self) -> str:
        return f"{self.prefix}x"

    def _totals_key(self) -> str:
        return f"{self.prefix}totals"

    def record(self, query: str, shown: Sequence[str], clicked: Iterable[str], timestamp: float) -> None:
        call = self._record_call([(query, shown, clicked, timestamp, ())])
        if call is None:
            return
        keys, args = call
        with self._unavailable_as_error():
            self._record_script(keys=keys, args=args)

    def queue_records(self, pipeline: redis.client.Pipeline, records: Sequence[Record], per_call: int = 500) -> None:
        """``record`` for each of ``records`` (query, shown, clicked, timestamp, late clicks), queued on
        ``pipeline`` (a MULTI the caller executes, so they commit with the caller's own writes or not at all),
        ``per_call`` records a script call. Late clicks are engagements on entities whose impression was
        already counted: a click each, no impression."""
        for start in range(0, len(records), per_call):
            call = self._record_call(records[start:start + per_call])
            if call is not None:
                keys, args = call
                self._record_script(keys=keys, args=args, client=pipeline)

    def _record_call(self, records: Sequence[Record]) -> tuple[list[str], list[str]] | None:
        half_life = "" if self.half_life_s is None else repr(self.half_life_s)
        retention = "" if self.retention_s is None else str(self.retention_s)
        cap = "" if self.max_entities_per_query is None else str(self.max_entities_per_query)
        batch: list[tuple[str, str, list[str], str]] = []
        for query, shown, clicked, timestamp, late_clicks in records:
            entity_ids, clicked_set = unique_shown(shown, clicked)
            late = [entity_id for entity_id in dict.fromkeys(late_clicks) if entity_id not in entity_ids]
            if not entity_ids and not late:
                continue
            flags = "".join("1" if entity_id in clicked_set else "0" for entity_id in entity_ids) + "2" * len(late)
            batch.append((query, repr(check_timestamp(timestamp)), entity_ids + late, flags))
        if not batch:
            return None
        args = [repr(float(self.alpha)), repr(float(self.prior)), half_life, retention, cap, self.prefix, orjson.dumps(batch).decode()]
        return [self._exposure_key(), self._totals_key()], args

    def _strategy_key(self, scope: str) -> str:
        return f"{self.prefix}strategy:{scope}"

    def record_strategies(self, outcomes: Sequence[StrategyOutcome]) -> None:
        with self._unavailable_as_error():
            writing = self._client.pipeline(transaction=True)
            self.queue_strategy_outcomes(writing, outcomes)
            if len(writing):
                writing.execute()

    def queue_strategy_outcomes(self, pipeline: redis.client.Pipeline, outcomes: Sequence[StrategyOutcome]) -> None:
        """``record_strategies`` queued on ``pipeline`` (a MULTI the caller executes with its own writes)."""
        increments: dict[str, dict[str, int]] = {}
        for outcome in outcomes:
            fields = [f"d:{strategy}" for strategy in dict.fromkeys(outcome.drawn)]
            fields += [f"c:{strategy}" for strategy in dict.fromkeys(outcome.credited)]
            for scope in outcome.scopes:
                by_field = increments.setdefault(self._strategy_key(scope), {})
                for name in fields:
                    by_field[name] = by_field.get(name, 0) + 1
        for key, by_field in increments.items():
            for name, amount in by_field.items():
                pipeline.hincrby(key, name, amount)
            if self.retention_s is not None:
                pipeline.expire(key, self.retention_s)

    def strategy_history(self, scopes: Sequence[str]) -> dict[str, dict[str, StrategyRecord]]:
        if not scopes:
            return {}
        with self._unavailable_as_error():
            reading = self._client.pipeline(transaction=False)
            for scope in scopes:
                reading.hgetall(self._strategy_key(scope))
            answers = reading.execute()
        history: dict[str, dict[str, StrategyRecord]] = {}
        for scope, stored in zip(scopes, answers, strict=True):
            strategies = {name.split(":", 1)[1] for name in stored}
            history[scope] = {
                strategy: StrategyRecord(float(stored.get(f"d:{strategy}", 0)), float(stored.get(f"c:{strategy}", 0))) for strategy in strategies
            }
        return history

    def totals(self) -> dict[str, int]:
        """Raw, undecayed totals: queries recorded, distinct entities shown, impressions, clicks."""
        with self._unavailable_as_error():
            reading = self._client.pipeline(transaction=False)
            reading.hgetall(self._totals_key())
            reading.hlen(self._exposure_key())
            stored, entities = reading.execute()
        return {
            "queries": int(stored.get("queries", 0)),
            "entities": int(entities),
            "impressions": int(stored.get("impressions", 0)),
            "clicks": int(stored.get("clicks", 0)),
        }

    def exposure(self, entity_ids: Sequence[str]) -> list[float]:
        if not entity_ids:
            return []
        with self._unavailable_as_error():
            counts = self._client.hmget(self._exposure_key(), list(entity_ids))
        return [float(count or 0.0) for count in counts]

    def history(self, query: str, entity_ids: Sequence[str]) -> list[tuple[float, float]]:
        if not entity_ids:
            return []
        fields = [f"{kind}:{entity_id}" for entity_id in entity_ids for kind in ("i", "c")]
        with self._unavailable_as_error():
            counts = self._client.hmget(self._counts_key(query), fields)
        return [(float(counts[2 * i] or 0.0), float(counts[2 * i + 1] or 0.0)) for i in range(len(entity_ids))]

    def predict(self, pairs: Iterable[tuple[str, str, float]]) -> int:
        written = 0
        keys: list[str] = []
        args: list[str] = []
        with self._unavailable_as_error():
            for query, entity_id, prior in pairs:
                check_prior(query, entity_id, prior)
                keys += [self._scores_key(query), self._entity_key(entity_id)]
                args += [entity_id, repr(float(prior)), query]
                if len(keys) >= 2 * _PREDICT_BATCH:
                    written += int(self._predict_script(keys=keys, args=args))
                    keys, args = [], []
            if keys:
                written += int(self._predict_script(keys=keys, args=args))
        return written

    def top(self, query: str, n: int) -> list[EntityStat]:
        n = min(n, self.top_limit)
        if n <= 0:
            return []
        with self._unavailable_as_error():
            # decode_responses=True and withscores=True: (member, score) pairs, which the stub cannot express
            ranked = cast("list[tuple[str, float]]", self._client.zrevrange(self._scores_key(query), 0, n - 1, withscores=True))
        counts = self.history(query, [entity_id for entity_id, _ in ranked])
        return [
            EntityStat(entity_id, impressions, clicks, float(score), predicted=score < 1.0)
            for (entity_id, score), (impressions, clicks) in zip(ranked, counts, strict=True)
        ]

    def count(self, query: str) -> int:
        with self._unavailable_as_error():
            return int(self._client.zcard(self._scores_key(query)))

    def forget(self, entity_ids: Sequence[str]) -> None:
        """One script call: each entity leaves every query holding it, atomically with respect to ``record``
        (which adds a pair to its entity's set only when the pair is new, so a record between a read of the
        set and the removal could otherwise leave a pair behind)."""
        entity_ids = list(dict.fromkeys(entity_ids))
        if not entity_ids:
            return
        with self._unavailable_as_error():
            self._forget_script(keys=[self._exposure_key()], args=[self.prefix, *entity_ids])

    def ping(self) -> bool:
        try:
            return bool(self._client.ping())
        except (redis.ConnectionError, redis.TimeoutError):
            logger.warning("the Redis of the memory index did not answer a ping")
            return False

    def clear(self) -> None:
        """Delete every key under ``prefix`` (SCAN + UNLINK in batches); other keys are left alone."""
        pattern = re.sub(r"([*?\[\]\\])", r"\\\1", self.prefix) + "*"
        with self._unavailable_as_error():
            batch: list[str] = []
            for key in self._client.scan_iter(match=pattern, count=1000):
                batch.append(key)
                if len(batch) >= 1000:
                    self._client.unlink(*batch)
                    batch = []
            if batch:
                self._client.unlink(*batch)
