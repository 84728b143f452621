"""User ids reach the event log only as salted hashes, the same across restarts and processes."""

from __future__ import annotations

import hashlib
import hmac
import json
import stat
from concurrent.futures import ThreadPoolExecutor

from fastapi.testclient import TestClient

from services.app import build_app
from services.user_ids import UserIdHasher, load_or_create_salt, salt_path

RAW = "alice@example.com"


def _logged_user_ids(settings) -> list[str | None]:
    lines = (settings.data_dir / "events" / "events.jsonl").read_text().splitlines()
    return [json.loads(line)["query"]["user_id"] for line in lines if '"kind":"impression"' in line]


def test_the_log_holds_a_salted_hash_that_survives_a_restart(settings, embedder):
    with TestClient(build_app(settings, embedder=embedder)) as client:
        assert client.post("/search", json={"query": "jazz", "user_id": RAW}).status_code == 200
        assert client.post("/search", json={"query": "rock"}).status_code == 200
    with TestClient(build_app(settings, embedder=embedder)) as restarted:
        assert restarted.post("/search", json={"query": "blues", "user_id": RAW}).status_code == 200
    first, anonymous, again = _logged_user_ids(settings)
    assert first.startswith("u_") and len(first) == 34 and anonymous is None
    assert again == first, "the salt is kept in the data directory"
    assert RAW not in (settings.data_dir / "events" / "events.jsonl").read_text()
    salt_file = salt_path(settings.data_dir)
    assert stat.S_IMODE(salt_file.stat().st_mode) == 0o600
    expected = "u_" + hmac.new(salt_file.read_text().strip().encode(), RAW.encode(), hashlib.sha256).hexdigest()[:32]
    assert first == expected


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
