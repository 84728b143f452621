"""A local ``redis-server`` for the demo: started on a free port with its files under the data directory,
stopped with the service; its URL is written to ``<data_dir>/redis/redis.url`` for ``ltrr ingest``."""

from __future__ import annotations

import contextlib
import logging
import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis

from contracts import BackendUnavailable

logger = logging.getLogger(__name__)


def url_file(data_dir: Path) -> Path:
    return Path(data_dir) / "redis" / "redis.url"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LocalRedis:
    def __init__(self, data_dir: Path, executable: str | None = None) -> None:
        self.directory = Path(data_dir) / "redis"
        self.executable = executable or shutil.which("redis-server")
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""

    @property
    def available(self) -> bool:
        return self.executable is not None

    def start(self, timeout_s: float = 10.0) -> str:
        """Start a redis-server for this data directory, or join the one another process of it started."""
        running = self._running_url()
        if running is not None:
            self.url = running
            logger.info("using the redis-server another ltrr process started for %s", self.directory.parent)
            return running
        if self.executable is None:
            raise BackendUnavailable("redis-server is not installed; `apt-get install redis-server` or set LTRR_REDIS_URL")
        self.directory.mkdir(parents=True, exist_ok=True)
        port = _free_port()
        self.process = subprocess.Popen(
            [self.executable, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(self.directory.resolve()),
             "--save", "60 1", "--appendonly", "no", "--protected-mode", "yes"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.url = f"redis://127.0.0.1:{port}/0"
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                client.ping()
                break
            except redis.RedisError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise BackendUnavailable(f"redis-server at {self.executable} did not start on port {port}") from None
                time.sleep(0.05)
        url_file(self.directory.parent).write_text(self.url + "\n")
        logger.info("started redis-server at %s (files in %s)", self.url, self.directory)
        return self.url

    def _running_url(self) -> str | None:
        path = url_file(self.directory.parent)
        try:
            url = path.read_text().strip()
        except OSError:
            return None
        try:
            redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5).ping()
        except (redis.RedisError, ValueError):
            return None
        return url

    def stop(self) -> None:
        """Stop the server this object started (one it joined keeps running) and remove its URL file, only
        if the file still names it."""
        if self.process is None:
            return
        path = url_file(self.directory.parent)
        with contextlib.suppress(OSError):
            if path.read_text().strip() == self.url:
                path.unlink()
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process = None
