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
from pathlib import Path

import redis

from contracts import BackendUnavailable, ConfigError

SALT_FILE = Path("secrets") / "user_id_salt"
REDIS_KEY = "ltrr:user_id_salt"
SALT_CHARS = 64


def salt_path(data_dir: Path) -> Path:
    return Path(data_dir) / SALT_FILE


def load_or_create_salt(data_dir: Path, configured: str | None, redis_url: str | None = None) -> bytes:
    """The configured salt, else Redis's (when ``redis_url``), else the data directory's; created on first use."""
    if configured:
        return configured.encode("utf-8")
    if redis_url:
        return _redis_salt(redis_url)
    return _file_salt(salt_path(data_dir))


def _redis_salt(url: str) -> bytes:
    client = redis.Redis.from_url(url, socket_connect_timeout=2.0, socket_timeout=2.0, decode_responses=True)
    try:
        client.set(REDIS_KEY, secrets.token_hex(SALT_CHARS // 2), nx=True)
        salt = client.get(REDIS_KEY)
    except redis.RedisError as error:
        raise BackendUnavailable(f"cannot read the user-id salt from Redis ({error.__class__.__name__})") from error
    return str(salt).encode("utf-8")


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


def synthetic_ids(value: str | None, prefix: str = "u_") -> str | None:
    """No hashing: for the simulator, whose ids are made up and which must reproduce its logs exactly."""
    return value
