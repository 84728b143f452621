"""What a service under test logged: the Redis stream when it has Redis (ingest has not archived it yet),
else its own event log file; each event's JSON text, in order."""

from __future__ import annotations

import redis

from services.eventstream import read_stream


def logged_lines(settings) -> list[str]:
    if settings.redis_url:
        client = redis.Redis.from_url(settings.redis_url, decode_responses=True)
        return [text for _, text in read_stream(client)]
    path = settings.data_dir / "events" / "events.jsonl"
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []
