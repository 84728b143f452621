"""Crash points for tests: ``INGEST_FAILPOINT=<name>`` (deliberately not an ``LTRR_`` setting) makes ingest
kill itself with SIGKILL when it reaches that point, so tests can show a restart reconciles exactly.

The points, in commit order: ``after_counters`` (memory index and counters committed), ``after_bandit``
(the policy saved), ``after_rows`` (ranker rows committed), ``before_ack`` (everything but the
acknowledgement)."""

from __future__ import annotations

from services.failpoints import crash_at

VARIABLE = "INGEST_FAILPOINT"
POINTS = ("after_counters", "after_bandit", "after_rows", "before_ack")


def failpoint(name: str) -> None:
    crash_at(VARIABLE, name)
