"""A small real stack: the demo generator's 400 entities indexed once per session with real tantivy,
FAISS and the real encoder; each test gets its own copy of the data directory and a real redis-server."""

from __future__ import annotations

import contextlib
import shutil

import pytest
from fastapi.testclient import TestClient

from catalog.io import write_entities
from services.app import build_app
from services.search.indexing import build_indexes
from services.settings import Settings


@contextlib.contextmanager
def no_progress(label, total):
    yield lambda done: None


@pytest.fixture(scope="session")
def built_data_dir(tmp_path_factory, embedder, small_catalog):
    directory = tmp_path_factory.mktemp("ltrr-data")
    write_entities(directory / "catalog.jsonl", small_catalog)
    build_indexes(Settings(data_dir=directory), no_progress, embedder=embedder, entities=small_catalog)
    return directory


@pytest.fixture
def data_dir(built_data_dir, tmp_path):
    target = tmp_path / "data"
    shutil.copytree(built_data_dir, target)
    return target


@pytest.fixture
def settings(data_dir, redis_url):
    return Settings(data_dir=data_dir, redis_url=redis_url, reload_interval_s=0, start_local_redis=False)


@pytest.fixture
def client(settings, embedder):
    with TestClient(build_app(settings, embedder=embedder), raise_server_exceptions=False) as test_client:
        yield test_client
