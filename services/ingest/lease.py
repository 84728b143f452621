"""One learner at a time: a lease in Redis with its owner, host and pid, renewed every few seconds.

``acquire`` takes a free lease at once. A held lease is watched for one lease period: if its holder renews
it (the value changes) the holder is alive and ``acquire`` raises ``LeaseHeld``; if it lapses (the holder
was killed), this process takes it. A holder that finds its lease gone or taken stops (``LeaseLost``).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from typing import Callable, cast

import redis

from contracts import LtrrError

logger = logging.getLogger(__name__)

LEASE_KEY = "ltrr:ingest:lease"

_RENEW_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
"""

_RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class LeaseHeld(LtrrError):
    pass


class LeaseLost(LtrrError):
    pass


class Lease:
    def __init__(self, client: redis.Redis, key: str = LEASE_KEY, lease_s: float = 10.0, renew_s: float = 3.0) -> None:
        if not 0 < renew_s < lease_s:
            raise ValueError(f"renew_s must be in (0, lease_s), got {renew_s} and {lease_s}")
        self._client = client
        self.key = key
        self.lease_s = lease_s
        self.renew_s = renew_s
        self.token = uuid.uuid4().hex
        self._value = ""
        self._renew = client.register_script(_RENEW_LUA)
        self._release = client.register_script(_RELEASE_LUA)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lost = threading.Event()

    def _new_value(self) -> str:
        return json.dumps({"token": self.token, "owner": f"ltrr ingest {self.token[:8]}", "host": socket.gethostname(),
                           "pid": os.getpid(), "renewed": time.time()})

    def acquire(self, on_wait: Callable[[str, float], None] | None = None) -> None:
        """Take the lease, waiting out a holder that stopped renewing; ``LeaseHeld`` if the holder is alive."""
        deadline = None
        seen = None
        while True:
            value = self._new_value()
            if self._client.set(self.key, value, nx=True, px=int(self.lease_s * 1000)):
                self._value = value
                break
            held = cast("str | None", self._client.get(self.key))
            if held is None:
                continue
            if seen is None:
                seen = held
                deadline = time.monotonic() + self.lease_s + 1.0
                if on_wait is not None:
                    on_wait(describe(held), int(cast(int, self._client.pttl(self.key))) / 1000.0)
            elif held != seen:
                raise LeaseHeld(
                    f"another ingester holds the lease and is alive ({describe(held)}); run one `ltrr ingest` per Redis "
                    "(stop the other first; a killed one's lease lapses within "
                    f"{self.lease_s:.0f} s)"
                )
            if deadline is not None and time.monotonic() > deadline:
                raise LeaseHeld(f"the lease {self.key} neither lapsed nor was renewed ({describe(held)}); delete the key if its holder is gone")
            time.sleep(0.2)
        self._thread = threading.Thread(target=self._keep, name="ingest-lease", daemon=True)
        self._thread.start()

    def _keep(self) -> None:
        while not self._stop.wait(self.renew_s):
            try:
                if not self.renew():
                    self.lost.set()
                    logger.error("ingest lost its lease %s (another ingester took it); stopping", self.key)
                    return
            except redis.RedisError as error:
                logger.warning("could not renew the ingest lease: %s", error)

    def renew(self) -> bool:
        value = self._new_value()
        renewed = bool(self._renew(keys=[self.key], args=[self._value, value, int(self.lease_s * 1000)]))
        if renewed:
            self._value = value
        return renewed

    def check(self) -> None:
        """``LeaseLost`` unless this process still holds the lease (called before each commit step).
        Compares the token, not the whole value, which the renewing thread rewrites."""
        if self.lost.is_set() or _token(cast("str | None", self._client.get(self.key))) != self.token:
            self.lost.set()
            raise LeaseLost(f"this ingester no longer holds the lease {self.key}; another one took over, stopping without committing")

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            self._release(keys=[self.key], args=[self._value])
        except redis.RedisError as error:
            logger.warning("could not release the ingest lease (it lapses by itself): %s", error)


def _token(value: str | None) -> str | None:
    try:
        return str(json.loads(value)["token"]) if value else None
    except (ValueError, KeyError, TypeError):
        return None


def describe(value: str) -> str:
    try:
        holder = json.loads(value)
        return f"{holder.get('owner')} on {holder.get('host')}, pid {holder.get('pid')}"
    except (ValueError, AttributeError):
        return "an unknown holder"
