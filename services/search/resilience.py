"""Serving through a Redis outage: a breaker, the memory index behind it, a ledger that remembers locally
too, and an event spool that keeps every acknowledged event on disk until Redis takes it.

- ``Breaker``: after a failure, Redis is not tried again for ``retry_s``, so an outage costs one timeout,
  not one per request. Every Redis user of the service shares one.
- ``GuardedMemory``: the memory index; while Redis is down its calls fail at once (the memory strategy is
  skipped, the page is filled by the others and topped up).
- ``FallbackLedger``: each page is remembered here and in Redis; feedback on a page this process
  served is accepted during an outage.
- ``SpooledSink``: an event Redis cannot take (or any event while older ones wait) is appended to a local
  spool file and fsynced before the request is answered; a thread delivers the spool, in order, when Redis
  is back, and only then do new events go to Redis directly. Delivery is at least once: a crash between an
  ``XADD`` and the spool's position leaves a duplicate, which ingest counts once.
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import functools
import logging
import os
import threading
import time
from pathlib import Path
from typing import Callable, Iterable, Sequence, TypeVar

import redis

from contracts import BackendUnavailable, ConfigError
from contracts.events import Event
from memory_index.base import EntityStat, MemoryStore, StrategyOutcome, StrategyRecord
from services.eventstream import RedisEventStream, encode
from services.search.ledger import Claim, LocalLedger, RedisLedger, ShownPage

logger = logging.getLogger(__name__)

T = TypeVar("T")
REDIS_DOWN = (redis.ConnectionError, redis.TimeoutError, BackendUnavailable)


class Breaker:
    def __init__(self, name: str, retry_s: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.retry_s = retry_s
        self.clock = clock
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self._next_try = 0.0

    @property
    def down(self) -> bool:
        return self._down_since is not None

    def allows(self) -> bool:
        """True when the dependency is up, or down but due for another try."""
        with self._lock:
            return self._down_since is None or self.clock() >= self._next_try

    def failed(self, error: BaseException) -> None:
        with self._lock:
            now = self.clock()
            if self._down_since is None:
                self._down_since = now
                logger.error("%s is unreachable (%s); serving degraded, retrying every %.0f s", self.name, error.__class__.__name__, self.retry_s)
            self._next_try = now + self.retry_s

    def succeeded(self) -> None:
        with self._lock:
            if self._down_since is not None:
                logger.warning("%s is reachable again after %.1f s", self.name, self.clock() - self._down_since)
            self._down_since = None

    def call(self, work: Callable[[], T]) -> T:
        """``work()`` unless the breaker is open (then ``BackendUnavailable`` at once); a failure opens it.
        Once a retry is due, one caller tries (each waiting up to the timeout would pile up behind a dead
        server); the others fail fast until it has answered."""
        with self._lock:
            if self._down_since is not None:
                now = self.clock()
                if now < self._next_try:
                    raise BackendUnavailable(f"{self.name} is unreachable; retrying every {self.retry_s:.0f} s")
                self._next_try = now + self.retry_s
        try:
            result = work()
        except REDIS_DOWN as error:
            self.failed(error)
            raise BackendUnavailable(f"{self.name} is unreachable ({error.__class__.__name__})") from error
        self.succeeded()
        return result


class GuardedMemory:
    """A ``MemoryStore`` whose calls go through ``breaker``."""

    def __init__(self, store: MemoryStore, breaker: Breaker) -> None:
        self.store = store
        self.breaker = breaker
        self.backend = store.backend

    @property
    def url(self) -> str:
        return str(getattr(self.store, "url", ""))

    def record(self, query: str, shown: Sequence[str], clicked: Iterable[str], timestamp: float) -> None:
        self.breaker.call(lambda: self.store.record(query, shown, clicked, timestamp))

    def exposure(self, entity_ids: Sequence[str]) -> list[float]:
        return self.breaker.call(lambda: self.store.exposure(entity_ids))

    def history(self, query: str, entity_ids: Sequence[str]) -> list[tuple[float, float]]:
        return self.breaker.call(lambda: self.store.history(query, entity_ids))

    def predict(self, pairs: Iterable[tuple[str, str, float]]) -> int:
        return self.breaker.call(lambda: self.store.predict(pairs))

    def top(self, query: str, n: int) -> list[EntityStat]:
        return self.breaker.call(lambda: self.store.top(query, n))

    def count(self, query: str) -> int:
        return self.breaker.call(lambda: self.store.count(query))

    def forget(self, entity_ids: Sequence[str]) -> None:
        self.breaker.call(lambda: self.store.forget(entity_ids))

    def record_strategies(self, outcomes: Sequence[StrategyOutcome]) -> None:
        self.breaker.call(lambda: self.store.record_strategies(outcomes))

    def strategy_history(self, scopes: Sequence[str]) -> dict[str, dict[str, StrategyRecord]]:
        return self.breaker.call(lambda: self.store.strategy_history(scopes))

    def ping(self) -> bool:
        if not self.breaker.allows():
            return False
        reachable = self.store.ping()
        if reachable:
            self.breaker.succeeded()
        else:
            self.breaker.failed(BackendUnavailable("ping failed"))
        return reachable

    def clear(self) -> None:
        self.breaker.call(self.store.clear)


class FallbackLedger:
    """``RedisLedger`` shared by every worker, with this process's ``LocalLedger`` beside it. Pages recorded
    while Redis was down, with the feedback accepted for them, are copied to Redis once it answers (by a
    thread, off the request path), so other processes and a restart know them too."""

    COPY_EVERY_S = 1.0

    def __init__(self, shared: RedisLedger, local: LocalLedger, breaker: Breaker) -> None:
        self.shared = shared
        self.local = local
        self.breaker = breaker
        self._unsynced: collections.OrderedDict[str, ShownPage] = collections.OrderedDict()
        self._unsynced_lock = threading.Lock()
        self._stop = threading.Event()
        self._copier = threading.Thread(target=self._copy_loop, name="ledger-copy", daemon=True)
        self._copier.start()

    def _copy_loop(self) -> None:
        while not self._stop.wait(self.COPY_EVERY_S):
            if self._unsynced and self.breaker.allows():
                try:
                    self.copy_unsynced()
                except Exception:
                    logger.exception("copying pages served during the outage to Redis failed")

    def copy_unsynced(self) -> int:
        """Copy to Redis the pages (and their accepted feedback) recorded here alone; returns how many."""
        with self._unsynced_lock:
            pending = list(self._unsynced.items())
        copied = 0
        for request_id, page in pending:
            claims = self.local.claims_of(request_id)

            def copy(request_id: str = request_id, page: ShownPage = page, claims: dict[str, str] = claims) -> None:
                self.shared.record(request_id, page)
                for key, event_id in claims.items():
                    self.shared.claim(request_id, key, event_id, max(len(claims), 3 * page.k))

            try:
                self.breaker.call(copy)
            except BackendUnavailable:
                break
            with self._unsynced_lock:
                self._unsynced.pop(request_id, None)
            copied += 1
        if copied:
            logger.info("copied %d pages served while Redis was down to Redis", copied)
        return copied

    def close(self) -> None:
        self._stop.set()

    def _shared(self, work: Callable[[], T]) -> T | None:
        try:
            return self.breaker.call(work)
        except BackendUnavailable:
            return None

    def record(self, request_id: str, page: ShownPage) -> None:
        self.local.record(request_id, page)
        try:
            self.breaker.call(lambda: self.shared.record(request_id, page))
        except BackendUnavailable:
            with self._unsynced_lock:
                self._unsynced[request_id] = page
                while self._unsynced and page.time - next(iter(self._unsynced.values())).time > self.local.keep_s:
                    self._unsynced.popitem(last=False)  # feedback on it could no longer count anyway

    def page(self, request_id: str) -> ShownPage | None:
        """This process's memory first; Redis for pages other processes served. With Redis down, a page this
        process does not know may still exist: ``BackendUnavailable`` (503, retry), never "unknown" (404)."""
        found = self.local.page(request_id)
        if found is not None:
            return found
        return self.breaker.call(lambda: self.shared.page(request_id))

    def claim(self, request_id: str, key: str, event_id: str, limit: int) -> tuple[Claim, str]:
        """In Redis, so that every worker agrees; in this process's memory while Redis is down. A claim made
        here during an outage keeps its event id when Redis is back (a retry is a repeat, not a new event)."""
        earlier = self.local.first(request_id, key)
        shared = self._shared(lambda: self.shared.claim(request_id, key, earlier or event_id, limit))
        if shared is None:
            page = self.local.page(request_id)
            if page is None:  # another process's page, and Redis just went down
                raise BackendUnavailable("the request ledger's Redis does not answer; retry the feedback later")
            with self._unsynced_lock:
                self._unsynced[request_id] = page  # its claims go to Redis with it when Redis answers
            return self.local.claim(request_id, key, event_id, limit)
        if earlier is not None:
            return Claim.REPEAT, earlier
        if shared[0] is Claim.NEW:
            self.local.claim(request_id, key, shared[1], limit)  # so a retry during a later outage gets the same id
        return shared

    def first(self, request_id: str, key: str) -> str | None:
        return self.local.first(request_id, key) or self._shared(lambda: self.shared.first(request_id, key))

    def release(self, request_id: str, key: str, event_id: str) -> None:
        self.local.release(request_id, key, event_id)
        self._shared(lambda: self.shared.release(request_id, key, event_id))


class SpoolFull(BackendUnavailable):
    pass


class SpooledSink:
    """The Redis event stream with a local spool in front of it for outages (see the module docstring).

    The spool is written with plain ``os.write`` (no buffer that could hold a failed write), fsynced before
    ``append`` returns; a failed write is cut off again. ``<spool>.position`` (fsynced, its directory too)
    says how much of the spool Redis already has."""

    POSITION_SUFFIX = ".position"

    def __init__(self, stream: RedisEventStream, path: Path, breaker: Breaker, max_bytes: int, deliver_every_s: float = 0.5) -> None:
        self.stream = stream
        self.path = Path(path)
        self.position_path = self.path.with_name(self.path.name + self.POSITION_SUFFIX)
        self.breaker = breaker
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        self._own()
        self._seal_torn_tail()
        self._delivered = 0
        self._write_position(min(self._read_position(), self._size()))  # a clamped position is saved at once
        self.writable = True
        self._refused_logged = False
        self._thread = threading.Thread(target=self._deliver_loop, args=(deliver_every_s,), name="spool-delivery", daemon=True)
        self._thread.start()
        if self.pending_bytes():
            logger.warning("%s holds %d bytes of events not yet in Redis; delivering them first", self.path, self.pending_bytes())

    def _own(self) -> None:
        """One process per spool: two writers would interleave their events and deliver each other's twice.
        A POSIX record lock belongs to the process, so a second sink in this process (a test reopening
        the app) shares it, and another process is refused."""
        try:
            fcntl.lockf(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except (BlockingIOError, PermissionError):
            os.close(self._fd)
            raise ConfigError.about(
                "LTRR_WORKER_ID", f"another running process uses the event spool {self.path}; give every service process on this "
                "data directory its own LTRR_WORKER_ID (replica r of N workers: r*N ... r*N+N-1)"
            ) from None
        except OSError as error:  # a file system without locks: the spool still works, unguarded
            logger.warning("the event spool %s cannot be locked (%s); make sure no other process uses it", self.path, error)

    # -- the request path -------------------------------------------------------------------------

    def append(self, event: Event) -> None:
        with self._lock:
            if self.pending_bytes() == 0:
                try:
                    self.breaker.call(lambda: self.stream.append(event))
                    return
                except (BackendUnavailable, redis.ResponseError) as error:
                    if isinstance(error, redis.ResponseError):
                        logger.error("Redis refused an event (%s); spooling", error)
            self._spool(encode(event))

    @property
    def full(self) -> bool:
        """No room for another event (or the spool cannot be written) while events wait for Redis."""
        return not self.writable or self._size() >= self.max_bytes * 0.99

    def _spool(self, line: str) -> None:
        data = (line + "\n").encode("utf-8")
        size = self._size()
        if size + len(data) > self.max_bytes:
            raise SpoolFull(
                f"the event spool {self.path} is full ({self.max_bytes:,} bytes, LTRR_SPOOL_MAX_MB) while Redis is unreachable; "
                "events cannot be kept, so searches are refused until Redis is back"
            )
        try:
            written = 0
            while written < len(data):
                written += os.write(self._fd, data[written:])
            os.fsync(self._fd)
        except OSError as error:
            self.writable = False
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, size)
            logger.error("cannot write the event spool %s (%s) while Redis is unreachable", self.path, error.strerror)
            # The path stays in the log: a response never shows the server's files.
            raise BackendUnavailable(f"cannot write the event spool ({error.strerror}) while Redis is unreachable; the service log names the file") from error
        self.writable = True

    # -- delivery ---------------------------------------------------------------------------------

    def pending_bytes(self) -> int:
        return self._size() - self._position()

    def deliver(self, batch: int = 500) -> int:
        """Send spooled events to Redis in order; returns how many. Stops at the first failure."""
        delivered = 0
        while not self._stop.is_set():
            with self._lock:
                start = self._position()
                chunk = os.pread(self._fd, 1 << 20, start)
                if b"\n" not in chunk:  # one event longer than the read
                    chunk = os.pread(self._fd, self._size() - start, start)
                lines = chunk.split(b"\n")[:-1][:batch]  # whole lines only
                if not lines:
                    if start and start == self._size():  # all delivered; nothing new can arrive while the lock is held
                        self._write_position(0)  # first: a crash before the truncate only re-delivers
                        os.ftruncate(self._fd, 0)
                        os.fsync(self._fd)
                    return delivered
            encoded = [line.decode("utf-8") for line in lines]
            try:
                self.breaker.call(functools.partial(self.stream.append_encoded, encoded))
            except BackendUnavailable:
                return delivered
            except redis.RedisError as error:  # Redis answers but refuses (out of memory, read-only replica)
                self.breaker.failed(error)
                if not self._refused_logged:
                    logger.error("Redis refuses the spooled events (%s); retrying every %.0f s", error, self.breaker.retry_s)
                    self._refused_logged = True
                return delivered
            self._refused_logged = False
            with self._lock:
                self._write_position(start + sum(len(line) + 1 for line in lines))
            self.writable = True
            delivered += len(lines)
            logger.info("delivered %d spooled events to Redis (%d bytes still spooled)", len(lines), self.pending_bytes())
        return delivered

    def _deliver_loop(self, every_s: float) -> None:
        while not self._stop.wait(every_s):
            if self.pending_bytes() and self.breaker.allows():
                try:
                    self.deliver()
                except Exception:
                    logger.exception("spool delivery failed")

    # -- the file ---------------------------------------------------------------------------------

    def _size(self) -> int:
        return os.fstat(self._fd).st_size

    def _position(self) -> int:
        return min(self._delivered, self._size())

    def _read_position(self) -> int:
        try:
            return int(self.position_path.read_text() or 0)
        except (OSError, ValueError):
            return 0

    def _write_position(self, offset: int) -> None:
        staging = self.position_path.with_suffix(".tmp")
        with open(staging, "w") as handle:
            handle.write(str(offset))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(staging, self.position_path)
        directory = os.open(self.position_path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        self._delivered = offset

    def _seal_torn_tail(self) -> None:
        """Cut a partial last line (a write that failed or was interrupted was never acknowledged)."""
        size = self._size()
        if size == 0 or os.pread(self._fd, 1, size - 1) == b"\n":
            return
        content = os.pread(self._fd, size, 0)
        try:
            os.ftruncate(self._fd, content.rfind(b"\n") + 1)
            os.fsync(self._fd)
        except OSError:
            logger.exception("cannot cut the torn end of %s", self.path)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        try:
            if not self._thread.is_alive() and self.pending_bytes() and self.breaker.allows():
                self._stop.clear()
                self.deliver()
        finally:
            os.close(self._fd)
            self.stream.close()
