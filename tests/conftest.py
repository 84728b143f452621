"""Shared fixtures: a real redis-server started for the session, the real embedding model loaded once,
and a small deterministic demo catalog."""

from __future__ import annotations

import os
import shutil

import pytest
import redis
from pytest_redis import factories

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"

redis_proc = factories.redis_proc(executable=REDIS_SERVER, port=None)


@pytest.fixture
def redis_url(redis_proc) -> str:
    """URL of a real, empty redis-server (flushed before each test)."""
    url = f"redis://{redis_proc.host}:{redis_proc.port}/0"
    redis.Redis.from_url(url).flushall()
    return url


@pytest.fixture(scope="session")
def embedder():
    """The real all-MiniLM-L6-v2 encoder, loaded once per test session."""
    from retrievers.embedding import Embedder

    return Embedder()


@pytest.fixture(scope="session")
def small_catalog():
    """About 400 entities from the deterministic demo generator."""
    from catalog.demo import generate_demo_catalog

    return generate_demo_catalog(size=400, seed=7)


def pytest_collection_modifyitems(config, items):
    """Without redis-server, Redis-backed tests are skipped with the reason, except under CI=true,
    where they run and fail: CI must test what `make test` sets up."""
    if os.path.exists(REDIS_SERVER) or os.environ.get("CI") == "true":
        return
    reason = f"redis-server not found at {REDIS_SERVER}; run `make test`, which installs it"
    for item in items:
        if "redis_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.skip(reason=reason))
