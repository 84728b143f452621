"""User and session ids are pseudonymised before they reach the event log or Redis: ``HMAC-SHA256(salt, id)``.

The salt is ``LTRR_USER_ID_SALT`` when set. Otherwise one is generated once and kept where every process
that serves finds it: in Redis when the service uses Redis (``SET NX``, so hosts sharing a Redis agree),
else in ``<data_dir>/secrets/user_id_salt`` (mode 0600, written whole before it appears). Every worker,
host and restart then hashes an id the same way. The log can be joined back to raw ids only by hashing a
candidate id with the salt, never by reversing one.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

import redis

from contracts import BackendUnavailable, ConfigError

SALT_FILE = Path("secrets") / "user_id_salt"
REDIS_SALT_COPY = Path("secrets") / "user_id_salt.redis"  # the shared salt as last read, for a start while Redis is down
REDIS_KEY = "ltrr:user_id_salt"
SALT_CHARS = 64


def salt_path(data_dir: Path) -> Path:
    return Path(data_dir) / SALT_FILE


def load_or_create_salt(data_dir: Path, configured: str | None, redis_url: str | None = None, timeout_s: float = 2.0) -> bytes:
    """The configured salt, else Redis's (when ``redis_url``), else the data directory's; created on first use."""
    if configured:
        return configured.encode("utf-8")
    if redis_url:
        return _redis_salt(redis_url, Path(data_dir) / REDIS_SALT_COPY, timeout_s)
    return _file_salt(salt_path(data_dir))


def _redis_salt(url: str, copy: Path, timeout_s: float = 2.0) -> bytes:
    """Redis's salt (created there first), kept in ``copy`` too; ``copy`` when Redis does not answer."""
    client = redis.Redis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s, decode_responses=True)
    try:
        client.set(REDIS_KEY, secrets.token_hex(SALT_CHARS // 2), nx=True)
        salt = str(client.get(REDIS_KEY))
    except redis.RedisError as error:
        if copy.exists():
            return copy.read_text().strip().encode("utf-8")
        raise BackendUnavailable(f"cannot read the user-id salt from Redis ({error.__class__.__name__}) and no copy of it is kept yet") from error
    if not copy.exists() or copy.read_text().strip() != salt:
        copy.parent.mkdir(parents=True, exist_ok=True)
        staging = copy.with_suffix(".tmp")
        staging.write_text(salt + "\n")
        os.chmod(staging, 0o600)
        os.replace(staging, copy)
    return salt.encode("utf-8")


def _file_salt(path: Path) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        # Written and synced under a temporary name, then linked into place: the file appears whole or not at
        # all, and when two processes race the first link wins and both read its salt.
        descriptor, staging = tempfile.mkstemp(dir=path.parent, prefix=".salt-")
        try:
            with os.fdopen(descriptor, "w") as handle:
                handle.write(secrets.token_hex(SALT_CHARS // 2) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(staging, 0o600)
            try:
                os.link(staging, path)
            except FileExistsError:
                pass
        finally:
            os.unlink(staging)
    salt = path.read_text().strip()
    if len(salt) < SALT_CHARS:
        raise ConfigError(f"LTRR_USER_ID_SALT: the salt file {path} is damaged ({len(salt)} characters); restore it from a backup, or set LTRR_USER_ID_SALT")
    return salt.encode("utf-8")


class UserIdHasher:
    """``hasher(value, prefix)``: ``prefix`` and 32 hex digits of HMAC-SHA256 under the salt; ``None`` stays ``None``."""

    def __init__(self, salt: bytes) -> None:
        if not salt:
            raise ConfigError("LTRR_USER_ID_SALT: expected a non-empty salt")
        self._salt = salt

    def __call__(self, value: str | None, prefix: str = "u_") -> str | None:
        if value is None:
            return None
        return prefix + hmac.new(self._salt, value.encode("utf-8"), hashlib.sha256).hexdigest()[:32]


class DeferredUserIdHasher:
    """A ``UserIdHasher`` whose salt is not known yet (Redis holds it and is down, and no copy exists):
    ids are dropped (``None``) until ``load`` succeeds, tried at most every ``retry_s``; never hashed
    with a salt other processes do not share."""

    def __init__(self, load: Callable[[], bytes], retry_s: float = 5.0) -> None:
        self._load = load
        self._retry_s = retry_s
        self._next_try = 0.0
        self._hasher: UserIdHasher | None = None
        self._loading = threading.Lock()  # one caller tries the load; the others go on without ids meanwhile

    def __call__(self, value: str | None, prefix: str = "u_") -> str | None:
        if value is None:
            return None
        if self._hasher is None and time.monotonic() >= self._next_try and self._loading.acquire(blocking=False):
            try:
                self._next_try = time.monotonic() + self._retry_s
                self._hasher = UserIdHasher(self._load())
            except BackendUnavailable:
                pass
            finally:
                self._loading.release()
        return None if self._hasher is None else self._hasher(value, prefix)


def synthetic_ids(value: str | None, prefix: str = "u_") -> str | None:
    """No hashing: for the simulator, whose ids are made up and which must reproduce its logs exactly."""
    return value
