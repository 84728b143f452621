"""The demo's local redis-server: a second process on the same data directory joins it, never deletes it."""

from __future__ import annotations

import redis

from services.redis_local import LocalRedis, url_file


def test_a_second_local_redis_joins_the_running_one_and_its_stop_leaves_it_running(tmp_path):
    first = LocalRedis(tmp_path)
    url = first.start()
    try:
        second = LocalRedis(tmp_path)
        assert second.start() == url, "the same data directory shares one redis-server"
        second.stop()
        assert url_file(tmp_path).read_text().strip() == url, "the joiner leaves the URL file ltrr ingest reads"
        assert redis.Redis.from_url(url).ping()
    finally:
        first.stop()
    assert not url_file(tmp_path).exists()


def test_a_stale_url_file_is_replaced(tmp_path):
    url_file(tmp_path).parent.mkdir(parents=True)
    url_file(tmp_path).write_text("redis://127.0.0.1:1/0\n")
    local = LocalRedis(tmp_path)
    try:
        url = local.start()
        assert url != "redis://127.0.0.1:1/0" and url_file(tmp_path).read_text().strip() == url
    finally:
        local.stop()
