"""The event stream in Redis: with Redis, the service appends every impression and feedback here and
``ltrr ingest`` reads them through a consumer group.

One stream, ``ltrr:events``; each entry holds one field, ``e``, the event's JSON (``contracts.events``).
Ingest archives what it reads, applies the effects and only then acknowledges, so an entry leaves the
group's pending list only once it is safe. The service trims the stream, never past an entry that the
group has not acknowledged: ``trim`` keeps everything from the oldest pending (or not yet delivered) entry.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any, Iterator

import redis

from contracts import BackendUnavailable
from contracts.events import Event
from services.eventlog import next_stream_id, stream_id_key

logger = logging.getLogger(__name__)

STREAM = "ltrr:events"
GROUP = "ingest"
FIELD = "e"
TRIM_EVERY = 100


def redis_client(url: str, timeout_s: float = 2.0) -> redis.Redis:
    return redis.Redis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s, decode_responses=True)


def encode(event: Event) -> str:
    return json.dumps(event.to_json(), separators=(",", ":"), ensure_ascii=False)


class RedisEventStream:
    """The service's side: ``append`` (XADD, one round trip) and ``trim``. Thread-safe (redis-py's pool)."""

    def __init__(self, url: str, stream: str = STREAM, group: str = GROUP, timeout_s: float = 2.0) -> None:
        self._client = redis_client(url, timeout_s)
        self.stream = stream
        self.group = group
        self._appended = 0

    def append(self, event: Event) -> None:
        try:
            self._client.xadd(self.stream, {FIELD: encode(event)})
        except (redis.ConnectionError, redis.TimeoutError) as error:
            raise BackendUnavailable(f"the Redis of the event stream is unreachable ({error.__class__.__name__})") from error
        self._appended += 1
        if self._appended % TRIM_EVERY == 0:
            try:
                self.trim()
            except redis.RedisError as error:
                logger.warning("could not trim the event stream: %s", error)

    def append_encoded(self, encoded: list[str]) -> None:
        """XADD already encoded events, in order, in one round trip (the spool's delivery)."""
        pipe = self._client.pipeline(transaction=False)
        for line in encoded:
            pipe.xadd(self.stream, {FIELD: line})
        pipe.execute()

    def lag_s(self) -> float:
        """How far ingest is behind (``ingest_lag_s``)."""
        return ingest_lag_s(self._client, self.stream, self.group)

    def trim(self) -> int:
        """Remove the entries ingest has archived and acknowledged; returns how many. Nothing before ingest
        has created its group (it has read nothing yet)."""
        floor = safe_trim_point(self._client, self.stream, self.group)
        if floor is None:
            return 0
        return int(self._client.xtrim(self.stream, minid=floor, approximate=False))

    def close(self) -> None:
        self._client.close()


def safe_trim_point(client: redis.Redis, stream: str, group: str) -> str | None:
    """The oldest id that must be kept: the group's oldest pending entry, else the one after its last
    delivered id; ``None`` when there is no group (no ingest yet) or no stream."""
    try:
        groups = client.xinfo_groups(stream)
    except redis.ResponseError:
        return None
    found = [entry for entry in groups if entry["name"] == group]
    if not found:
        return None
    pending = client.xpending(stream, group)
    if pending and int(pending["pending"]) > 0:
        return str(pending["min"])
    return next_stream_id(str(found[0]["last-delivered-id"]))


def read_stream(client: redis.Redis, stream: str = STREAM, batch: int = 1000) -> Iterator[tuple[str, str]]:
    """Every entry still in the stream as ``(id, event JSON)``, oldest first (reads only, takes no lock)."""
    start = "-"
    while True:
        entries: Any = client.xrange(stream, min=start, max="+", count=batch)
        if not entries:
            return
        for entry_id, fields in entries:
            yield str(entry_id), str((fields or {}).get(FIELD, ""))
        start = next_stream_id(str(entries[-1][0]))


def eviction_warning(client: redis.Redis) -> str | None:
    """A warning when Redis may evict keys (the stream or the memory index) under memory pressure."""
    try:
        policy = client.config_get("maxmemory-policy").get("maxmemory-policy")
    except redis.ResponseError as error:
        return f"cannot read Redis's maxmemory-policy ({error}); make sure it is noeviction, or events may be lost"
    if policy != "noeviction":
        return (
            f"Redis's maxmemory-policy is {policy!r}: under memory pressure it may evict unread events or memory-index "
            "entries; set `maxmemory-policy noeviction` (CONFIG SET maxmemory-policy noeviction, and in redis.conf)"
        )
    return None


def stream_info(client: redis.Redis, stream: str = STREAM, group: str = GROUP) -> dict[str, Any]:
    """Length, the group's pending count and lag (entries not yet delivered), for ``ltrr stats``."""
    info: dict[str, Any] = {"length": 0, "pending": 0, "lag": 0}
    try:
        info["length"] = int(client.xlen(stream))
        groups = client.xinfo_groups(stream)
    except redis.ResponseError:
        return info
    for entry in groups:
        if entry["name"] == group:
            info["pending"] = int(entry.get("pending") or 0)
            info["lag"] = int(entry.get("lag") or 0)
    return info


def ingest_lag_s(client: redis.Redis, stream: str = STREAM, group: str = GROUP, now: float | None = None) -> float:
    """Age of the oldest entry the group has not read yet (0 when caught up)."""
    try:
        groups = client.xinfo_groups(stream)
    except redis.ResponseError:
        return 0.0
    found = [entry for entry in groups if entry["name"] == group]
    if not found:
        return 0.0
    following: Any = client.xrange(stream, min=next_stream_id(str(found[0]["last-delivered-id"])), max="+", count=1)
    if not following:
        return 0.0
    oldest = stream_id_key(following[0][0])[0] / 1000.0
    return max(0.0, (time.time() if now is None else now) - oldest)
