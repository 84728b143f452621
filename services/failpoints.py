"""Crash points for tests: when the environment variable ``variable`` names ``point``, the process kills
itself with SIGKILL there, so a test can show that a restart recovers (deliberately not ``LTRR_`` settings).
``INGEST_FAILPOINT`` covers ingest's commit steps (``services.ingest.failpoints``); ``SERVE_FAILPOINT`` the
service's entity writes (``catalog_journaled``: in the journal, in no index yet; ``catalog_one_index``:
in the first index only)."""

from __future__ import annotations

import os
import signal

SERVE_VARIABLE = "SERVE_FAILPOINT"
SERVE_POINTS = ("catalog_journaled", "catalog_one_index")


def crash_at(variable: str, point: str) -> None:
    if os.environ.get(variable) == point:
        os.kill(os.getpid(), signal.SIGKILL)
