"""User ids reach the event log only as salted hashes, the same across restarts and processes."""

from __future__ import annotations

import hashlib
import hmac
import json
import stat
from concurrent.futures import ThreadPoolExecutor

import redis
from fastapi.testclient import TestClient
from logged import logged_lines

from services.app import build_app
from services.user_ids import REDIS_KEY, UserIdHasher, load_or_create_salt, salt_path

RAW = "alice@example.com"


def _logged_user_ids(settings) -> list[str | None]:
    lines = logged_lines(settings)
    return [json.loads(line)["query"]["user_id"] for line in lines if '"kind":"impression"' in line]


def test_with_redis_the_salt_is_shared_there_and_survives_a_restart(settings, embedder, redis_url):
    with TestClient(build_app(settings, embedder=embedder)) as client:
        assert client.post("/search", json={"query": "jazz", "user_id": RAW, "session_id": "alice-1"}).status_code == 200
        assert client.post("/search", json={"query": "rock"}).status_code == 200
    with TestClient(build_app(settings, embedder=embedder)) as restarted:
        assert restarted.post("/search", json={"query": "blues", "user_id": RAW}).status_code == 200
    first, anonymous, again = _logged_user_ids(settings)
    assert first.startswith("u_") and len(first) == 34 and anonymous is None
    assert again == first, "every process on this Redis hashes with the same salt"
    log = "\n".join(logged_lines(settings))
    assert RAW not in log and "alice-1" not in log, "session ids are pseudonymised too"
    salt = redis.Redis.from_url(redis_url).get(REDIS_KEY)
    assert first == "u_" + hmac.new(salt, RAW.encode(), hashlib.sha256).hexdigest()[:32]
    assert not salt_path(settings.data_dir).exists()


def test_without_redis_the_salt_is_kept_in_the_data_directory(settings, embedder):
    local = settings.model_copy(update={"redis_url": None, "start_local_redis": False})
    for query in ("jazz", "blues"):  # two processes' lifetimes on one data directory
        with TestClient(build_app(local, embedder=embedder)) as client:
            assert client.post("/search", json={"query": query, "user_id": RAW}).status_code == 200
    first, again = _logged_user_ids(local)
    assert first == again
    salt_file = salt_path(local.data_dir)
    assert stat.S_IMODE(salt_file.stat().st_mode) == 0o600
    assert first == "u_" + hmac.new(salt_file.read_text().strip().encode(), RAW.encode(), hashlib.sha256).hexdigest()[:32]


def test_a_configured_salt_is_used_and_nothing_is_written(settings, embedder):
    salted = settings.model_copy(update={"user_id_salt": "shared-by-every-host"})
    with TestClient(build_app(salted, embedder=embedder)) as client:
        assert client.post("/search", json={"query": "jazz", "user_id": RAW}).status_code == 200
    expected = "u_" + hmac.new(b"shared-by-every-host", RAW.encode(), hashlib.sha256).hexdigest()[:32]
    assert _logged_user_ids(salted) == [expected]
    assert not salt_path(salted.data_dir).exists()


def test_concurrent_first_uses_agree_on_one_salt(tmp_path):
    with ThreadPoolExecutor(max_workers=8) as pool:
        salts = set(pool.map(lambda _: load_or_create_salt(tmp_path, None), range(32)))
    assert len(salts) == 1 and len(next(iter(salts))) == 64
    hasher = UserIdHasher(next(iter(salts)))
    assert hasher(RAW) == hasher(RAW) != hasher("bob") and hasher(None) is None
    assert list(tmp_path.glob("secrets/.salt-*")) == [], "no temporary file is left behind"


def test_a_damaged_salt_file_is_a_clear_error(tmp_path):
    import pytest

    from contracts import ConfigError

    salt_path(tmp_path).parent.mkdir(parents=True)
    salt_path(tmp_path).write_text("")
    with pytest.raises(ConfigError, match="salt file .* is damaged"):
        load_or_create_salt(tmp_path, None)
