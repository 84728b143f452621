"""The breaker in front of Redis on the request path: a failure opens it, calls then fail fast, one caller
at a time tries again once a retry is due, and a success closes it."""

from __future__ import annotations

import pytest
import redis

from contracts import BackendUnavailable
from services.search.resilience import Breaker


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _down() -> None:
    raise redis.ConnectionError("connection refused")


def test_a_failure_opens_the_breaker_and_calls_fail_fast_until_a_retry_is_due():
    clock, calls = Clock(), []
    breaker = Breaker("Redis", retry_s=1.0, clock=clock)
    with pytest.raises(BackendUnavailable):
        breaker.call(_down)
    assert breaker.down
    with pytest.raises(BackendUnavailable, match="retrying every 1 s"):
        breaker.call(lambda: calls.append("ran"))
    assert calls == [], "an open breaker does not call the dependency"
    clock.now += 1.0
    assert breaker.call(lambda: "answered") == "answered"
    assert not breaker.down


def test_once_a_retry_is_due_one_caller_tries_and_the_others_fail_fast():
    clock, ran = Clock(), []
    breaker = Breaker("Redis", retry_s=1.0, clock=clock)
    with pytest.raises(BackendUnavailable):
        breaker.call(_down)
    clock.now += 1.5

    def probe() -> str:
        ran.append("probe")
        with pytest.raises(BackendUnavailable):  # a second caller while the probe still waits for an answer
            breaker.call(lambda: ran.append("second"))
        raise redis.TimeoutError("no answer")

    with pytest.raises(BackendUnavailable):
        breaker.call(probe)
    assert ran == ["probe"]
    with pytest.raises(BackendUnavailable):
        breaker.call(lambda: ran.append("too soon"))
    clock.now += 1.0
    breaker.call(lambda: ran.append("next retry"))
    assert ran == ["probe", "next retry"] and not breaker.down
