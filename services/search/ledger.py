"""What the service remembers of each search for as long as feedback on it can count: the page it showed,
when, and the feedback already accepted for it.

Feedback counts only for an entity on that request's page and within the attribution window; a repeat of
the same (request, entity, event) gets the first ``event_id`` back and is not logged again; at most
``3·k`` feedback events count per request. With Redis the ledger lives there (shared by every worker,
kept across restarts, each request's keys expiring with its window); without Redis, in this process,
bounded by the same window.
"""

from __future__ import annotations

import contextlib
import enum
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Iterator, Protocol

import redis

from contracts import BackendUnavailable

# Requests are kept one more window, so that late feedback gets a clear "window closed", not "unknown request".
GRACE_WINDOWS = 1.0


@dataclass(frozen=True, slots=True)
class ShownPage:
    time: float
    k: int
    entity_ids: tuple[str, ...]


class Claim(enum.Enum):
    NEW = "new"
    REPEAT = "repeat"
    OVER_LIMIT = "over_limit"


class RequestLedger(Protocol):
    def record(self, request_id: str, page: ShownPage) -> None: ...

    def page(self, request_id: str) -> ShownPage | None: ...

    def claim(self, request_id: str, key: str, event_id: str, limit: int) -> tuple[Claim, str]:
        """Accept ``key`` (entity and event) for ``request_id`` with ``event_id`` unless it was accepted
        before (then its first event id) or ``limit`` keys already were."""
        ...

    def first(self, request_id: str, key: str) -> str | None:
        """The event id ``key`` was accepted with, if it was."""
        ...

    def release(self, request_id: str, key: str, event_id: str) -> None:
        """Forget the claim of ``key`` if it still holds ``event_id`` (its event could not be logged)."""
        ...


class LocalLedger:
    """In-process ledger; forgets a request two windows of event time after it was made."""

    def __init__(self, window_s: float) -> None:
        self.keep_s = window_s * (1.0 + GRACE_WINDOWS)
        self._lock = threading.Lock()
        self._pages: OrderedDict[str, ShownPage] = OrderedDict()
        self._claims: dict[str, dict[str, str]] = {}

    def record(self, request_id: str, page: ShownPage) -> None:
        with self._lock:
            self._pages[request_id] = page
            while self._pages:
                oldest_id, oldest = next(iter(self._pages.items()))
                if page.time - oldest.time <= self.keep_s:
                    break
                self._pages.popitem(last=False)
                self._claims.pop(oldest_id, None)

    def page(self, request_id: str) -> ShownPage | None:
        with self._lock:
            return self._pages.get(request_id)

    def claim(self, request_id: str, key: str, event_id: str, limit: int) -> tuple[Claim, str]:
        with self._lock:
            if request_id not in self._pages:  # forgotten since the caller looked it up
                return Claim.OVER_LIMIT, ""
            claims = self._claims.setdefault(request_id, {})
            if key in claims:
                return Claim.REPEAT, claims[key]
            if len(claims) >= limit:
                return Claim.OVER_LIMIT, ""
            claims[key] = event_id
            return Claim.NEW, event_id

    def first(self, request_id: str, key: str) -> str | None:
        with self._lock:
            return self._claims.get(request_id, {}).get(key)

    def claims_of(self, request_id: str) -> dict[str, str]:
        """The feedback keys accepted for ``request_id`` and their event ids."""
        with self._lock:
            return dict(self._claims.get(request_id, {}))

    def release(self, request_id: str, key: str, event_id: str) -> None:
        with self._lock:
            claims = self._claims.get(request_id, {})
            if claims.get(key) == event_id:
                del claims[key]


_RELEASE_LUA = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then redis.call('HDEL', KEYS[1], ARGV[1]) end
return 0
"""

_CLAIM_LUA = """
local first = redis.call('HGET', KEYS[1], ARGV[1])
if first then return {'repeat', first} end
if redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then return {'over_limit', ''} end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return {'new', ARGV[2]}
"""


class RedisLedger:
    """The ledger in Redis: ``<prefix>page:<request_id>`` (the page) and ``<prefix>claims:<request_id>``
    (accepted feedback keys -> event ids), both expiring two windows after the search."""

    def __init__(self, url: str, window_s: float, prefix: str = "ltrr:request:", timeout_s: float = 2.0) -> None:
        self._client = redis.Redis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s, decode_responses=True)
        self.ttl_s = int(window_s * (1.0 + GRACE_WINDOWS)) + 1
        self.prefix = prefix
        self._claim = self._client.register_script(_CLAIM_LUA)
        self._release = self._client.register_script(_RELEASE_LUA)

    def record(self, request_id: str, page: ShownPage) -> None:
        record = json.dumps({"time": page.time, "k": page.k, "page": list(page.entity_ids)}, separators=(",", ":"))
        with _unavailable():
            self._client.set(f"{self.prefix}page:{request_id}", record, ex=self.ttl_s)

    def page(self, request_id: str) -> ShownPage | None:
        with _unavailable():
            record = self._client.get(f"{self.prefix}page:{request_id}")
        if record is None:
            return None
        parsed = json.loads(str(record))
        return ShownPage(float(parsed["time"]), int(parsed["k"]), tuple(parsed["page"]))

    def claim(self, request_id: str, key: str, event_id: str, limit: int) -> tuple[Claim, str]:
        with _unavailable():
            outcome, first = self._claim(keys=[f"{self.prefix}claims:{request_id}"], args=[key, event_id, limit, self.ttl_s])
        return Claim(outcome), str(first)

    def first(self, request_id: str, key: str) -> str | None:
        with _unavailable():
            found = self._client.hget(f"{self.prefix}claims:{request_id}", key)
        return None if found is None else str(found)

    def release(self, request_id: str, key: str, event_id: str) -> None:
        with _unavailable():
            self._release(keys=[f"{self.prefix}claims:{request_id}"], args=[key, event_id])


@contextlib.contextmanager
def _unavailable() -> Iterator[None]:
    try:
        yield
    except (redis.ConnectionError, redis.TimeoutError) as error:
        raise BackendUnavailable(f"the Redis of the request ledger is unreachable ({error.__class__.__name__})") from error
