"""User ids are pseudonymised before they reach the event log or Redis: ``HMAC-SHA256(salt, user id)``.

The salt is ``LTRR_USER_ID_SALT`` when set (what several hosts must share), else a random one generated
once and kept in ``<data_dir>/secrets/user_id_salt`` (mode 0600), so every worker, ``ltrr ingest`` and
every restart on that data directory hash a user the same way. Without the salt the log cannot be
joined back to raw ids; with it, only by hashing a candidate id, never by reversing one.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

SALT_FILE = Path("secrets") / "user_id_salt"


def salt_path(data_dir: Path) -> Path:
    return Path(data_dir) / SALT_FILE


def load_or_create_salt(data_dir: Path, configured: str | None) -> bytes:
    """The configured salt, else the data directory's (created on first use; concurrent first uses agree)."""
    if configured:
        return configured.encode("utf-8")
    path = salt_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_hex(32) + "\n")
    # A reader racing the creator may see an empty file for an instant; the salt is never shorter than 64 chars.
    for _ in range(100):
        text = path.read_text().strip()
        if len(text) >= 64:
            return text.encode("utf-8")
        os.sched_yield()
    return path.read_text().strip().encode("utf-8")


class UserIdHasher:
    """``hasher(user_id)``: ``u_`` and 32 hex digits of HMAC-SHA256 under the salt; ``None`` stays ``None``."""

    def __init__(self, salt: bytes) -> None:
        if not salt:
            raise ValueError("salt: expected a non-empty salt")
        self._salt = salt

    def __call__(self, user_id: str | None) -> str | None:
        if user_id is None:
            return None
        return "u_" + hmac.new(self._salt, user_id.encode("utf-8"), hashlib.sha256).hexdigest()[:32]
