"""What the service benchmarks run against: the deployment a user runs, on loopback. A redis-server of its
own, `ltrr serve --build-if-missing` (waited for until `/healthz` answers 200) and `ltrr ingest --follow 1`
beside it, each a separate process with its log under a scratch directory; all stopped on exit.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import httpx

LTRR = str(Path(sys.executable).with_name("ltrr"))


@dataclass(frozen=True)
class Deployment:
    base: str  # the service's URL
    redis_url: str
    serve: subprocess.Popen
    ingest: subprocess.Popen | None
    logs: Path

    def check_alive(self) -> None:
        if self.serve.poll() is not None or (self.ingest is not None and self.ingest.poll() is not None):
            sys.exit(f"error: a process exited early; see {self.logs}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` alone, in MB (nan once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except FileNotFoundError:
        pass
    return float("nan")


@contextmanager
def deployment(data_dir: Path, settings: dict[str, str], prefix: str, start_timeout_s: float, ingest: bool = True) -> Iterator[Deployment]:
    """Redis, `ltrr serve` on ``data_dir`` (indexes built if missing) and, unless ``ingest`` is false (learning
    off), `ltrr ingest --follow 1`, with the ``LTRR_`` variables of this environment replaced by ``settings``."""
    if shutil.which("redis-server") is None:
        sys.exit("error: redis-server is not installed; run `make system-deps` (or apt-get install redis-server)")
    port, redis_port = free_port(), free_port()
    scratch = Path(tempfile.mkdtemp(prefix=prefix))
    logs = scratch / "logs"
    logs.mkdir()
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    redis_server = subprocess.Popen(["redis-server", "--port", str(redis_port), "--save", "", "--appendonly", "no", "--dir", str(scratch)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env = {name: value for name, value in os.environ.items() if not name.startswith("LTRR_")}
    env.update({"LTRR_REDIS_URL": redis_url, "LTRR_DATA_DIR": str(data_dir), "LTRR_PORT": str(port), "LTRR_NO_PROGRESS": "1",
                "HF_HUB_OFFLINE": "1", **settings})
    serve = follow = None
    try:
        serve = subprocess.Popen([LTRR, "serve", "--build-if-missing"], env=env, stdout=open(logs / "serve.out", "w"), stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + start_timeout_s
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if serve.poll() is not None:
                break
            time.sleep(1)
        else:
            sys.exit(f"error: ltrr serve did not answer within {start_timeout_s:.0f} s; see {logs / 'serve.out'}")
        if serve.poll() is not None:
            sys.exit(f"error: ltrr serve exited while starting; see {logs / 'serve.out'}")
        if ingest:
            follow = subprocess.Popen([LTRR, "ingest", "--follow", "1"], env=env, stdout=open(logs / "ingest.out", "w"), stderr=subprocess.STDOUT)
        yield Deployment(base, redis_url, serve, follow, logs)
    finally:
        for process in (follow, serve):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=60)
        redis_server.terminate()
        redis_server.wait(timeout=10)
