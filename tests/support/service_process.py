"""Processes as users run them, for tests: `ltrr serve` as a subprocess, and a redis-server the test
starts, kills and restarts (append-only file, fsync always, so Redis itself loses nothing it acknowledged)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import redis

LTRR = str(Path(sys.executable).with_name("ltrr"))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class OwnRedis:
    def __init__(self, directory: Path) -> None:
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.command = ["redis-server", "--port", str(self.port), "--dir", str(directory), "--appendonly", "yes",
                        "--appendfsync", "always", "--save", ""]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(self.command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(200):
            try:
                redis.Redis.from_url(self.url).ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise AssertionError("redis-server did not start")

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.kill()


class Service:
    def __init__(self, data_dir: Path, redis_url: str) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {name: value for name, value in os.environ.items() if not name.startswith("LTRR_")}
        self.env.update({"LTRR_REDIS_URL": redis_url, "LTRR_DATA_DIR": str(data_dir), "LTRR_PORT": str(self.port),
                         "LTRR_NO_PROGRESS": "1", "HF_HUB_OFFLINE": "1", "LTRR_RELOAD_INTERVAL_S": "0",
                         "LTRR_POLICY": "fixed:lexical=20+dense=20+memory=20"})
        self.data_dir = data_dir
        self.log_path = data_dir.parent / f"serve-{self.port}.log"
        self.process: subprocess.Popen[str] | None = None
        self.args: list[str] = []  # options after `ltrr serve`

    def start(self) -> None:
        # The log goes to a file, not a pipe nobody reads while the service runs (a full pipe would block it).
        self.log = open(self.log_path, "a")
        self.process = subprocess.Popen([LTRR, "serve", *self.args], env=self.env, stdout=subprocess.DEVNULL, stderr=self.log, text=True)
        deadline = time.monotonic() + 180
        try:
            while True:
                try:
                    urllib.request.urlopen(self.base + "/healthz", timeout=10)
                    return
                except OSError:  # refused, reset, or a read that timed out while it loads
                    assert self.process.poll() is None, self.log_path.read_text()[-3000:]
                    assert time.monotonic() < deadline, "the service did not start"
                    time.sleep(0.2)
        except BaseException:
            self.process.kill()  # a service that never started must not outlive its test
            self.process.wait(timeout=30)
            raise

    def post(self, path: str, body: dict) -> tuple[int, dict]:
        request = urllib.request.Request(self.base + path, data=json.dumps(body).encode(), headers={"content-type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}")

    def health(self) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.base + "/healthz", timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def stop(self, sig: int = signal.SIGTERM) -> str:
        assert self.process is not None
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout=60)
            return self.log_path.read_text()
        finally:
            if self.process.poll() is None:
                self.process.kill()
