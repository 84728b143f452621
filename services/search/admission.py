"""Admission control: at most ``limit`` searches run at once; the rest wait in a FIFO queue.

A search that waited longer than ``timeout_s``, or found ``max_waiting`` searches already waiting, is
refused (the API answers 503 with ``Retry-After``) instead of running late and skipping its retrievers.
A slot is handed straight to the oldest waiter when it is released, so nobody overtakes the queue.
Runs on the event loop; ``release_threadsafe`` is for the threads that finish a search's work.
"""

from __future__ import annotations

import asyncio
import collections
import time
from dataclasses import dataclass


class Overloaded(Exception):
    def __init__(self, reason: str, retry_after_s: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after_s = retry_after_s


@dataclass(frozen=True, slots=True)
class AdmissionState:
    limit: int
    running: int
    waiting: int
    refused: int


class Admission:
    def __init__(self, limit: int, timeout_s: float, max_waiting: int) -> None:
        if limit < 1:
            raise ValueError(f"limit: expected at least 1 concurrent search, got {limit}")
        self.limit = limit
        self.timeout_s = timeout_s
        self.max_waiting = max_waiting
        self._running = 0
        self._refused = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._loop: asyncio.AbstractEventLoop | None = None

    def state(self) -> AdmissionState:
        return AdmissionState(self.limit, self._running, len(self._waiters), self._refused)

    async def acquire(self) -> float:
        """Wait for a slot; returns the seconds waited. ``Overloaded`` when the queue is full or the wait timed out."""
        self._loop = asyncio.get_running_loop()
        if self._running < self.limit and not self._waiters:
            self._running += 1
            return 0.0
        if len(self._waiters) >= self.max_waiting:
            self._refused += 1
            raise Overloaded(f"{len(self._waiters)} searches are already waiting (LTRR_QUEUE_MAX_WAITING)", self._retry_after())
        started = time.monotonic()
        waiter: asyncio.Future[None] = self._loop.create_future()
        self._waiters.append(waiter)
        try:
            await asyncio.wait_for(asyncio.shield(waiter), self.timeout_s)
        except BaseException as error:
            if waiter.done() and not waiter.cancelled():
                if isinstance(error, (TimeoutError, asyncio.TimeoutError)):
                    return time.monotonic() - started  # the slot arrived as the wait ran out: use it
                self.release()  # handed a slot, but the request was cancelled: pass it on
                raise
            waiter.cancel()
            self._waiters.remove(waiter)
            if isinstance(error, (TimeoutError, asyncio.TimeoutError)):
                self._refused += 1
                raise Overloaded(
                    f"not admitted within {self.timeout_s * 1000:.0f} ms (LTRR_QUEUE_TIMEOUT_MS); {self.limit} searches run at once",
                    self._retry_after(),
                ) from None
            raise
        return time.monotonic() - started

    def release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot passes to the oldest waiter; the running count is unchanged
                return
        self._running -= 1

    def release_threadsafe(self) -> None:
        assert self._loop is not None, "release_threadsafe before acquire"
        try:
            self._loop.call_soon_threadsafe(self.release)
        except RuntimeError:  # the loop has closed (the app shut down while a retriever ran on): nobody waits
            pass

    def _retry_after(self) -> int:
        return max(1, round(self.timeout_s / 4))
