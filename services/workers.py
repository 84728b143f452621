"""`ltrr serve --workers N`: N service processes on one port (SO_REUSEPORT: the kernel spreads connections),
each with its own ``LTRR_WORKER_ID`` (its random stream, its event spool), all on one Redis, which holds what
they share: the memory index, the request ledger (feedback sent to any worker counts), the event stream and
the user-id salt. Each worker reloads the models ingest publishes. This process supervises them: a worker
that dies is started again; SIGTERM or SIGINT stops them all (each drains its requests)."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

from prometheus_client.multiprocess import mark_process_dead

from contracts import ConfigError
from services.redis_local import LocalRedis
from services.settings import Settings

logger = logging.getLogger(__name__)

RESTART_DELAY_S = 1.0
CONFIG_ERROR_EXIT = 2  # what `ltrr` exits with on a configuration error


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound with SO_REUSEPORT, so that every worker listens on the same port."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def redis_for_workers(settings: Settings) -> tuple[str, LocalRedis | None]:
    """LTRR_REDIS_URL, or a local redis-server this process starts (and stops); without either, several
    workers would each keep their own memory index and ledger: a ConfigError."""
    if settings.redis_url:
        return settings.redis_url, None
    local = LocalRedis(settings.data_dir) if settings.start_local_redis else None
    if local is None or not local.available:
        raise ConfigError(
            "--workers: several workers share the memory index, the request ledger and the event stream through Redis; "
            "set LTRR_REDIS_URL or install redis-server (or run one worker)"
        )
    return local.start(), local


def supervise(settings: Settings, worker_command: Callable[[int], list[str]], with_ingest: bool, die_with_parent: Callable[[], None]) -> int:
    """Run ``settings.workers`` workers (``worker_command(i)`` each) until SIGTERM/SIGINT; returns the exit code."""
    url, local = redis_for_workers(settings)
    metrics_directory = tempfile.mkdtemp(prefix="ltrr-metrics-")  # prometheus-client's multiprocess files
    environment = {**os.environ, "LTRR_REDIS_URL": url, "LTRR_WORKERS": str(settings.workers), "LTRR_DATA_DIR": str(settings.data_dir),
                   "PROMETHEUS_MULTIPROC_DIR": metrics_directory}
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    signal.signal(signal.SIGINT, lambda signum, frame: stop.set())

    def start(index: int) -> subprocess.Popen[bytes]:
        # This service's LTRR_WORKER_ID numbers the replica; its workers take the next N ids, so no two
        # processes of a deployment share a random stream or a spool.
        worker_environment = {**environment, "LTRR_WORKER_ID": str(settings.worker_id * settings.workers + index)}
        return subprocess.Popen(worker_command(index), env=worker_environment, preexec_fn=die_with_parent)

    workers = {index: start(index) for index in range(settings.workers)}
    ingest = None
    if with_ingest:
        ingest = subprocess.Popen([sys.executable, "-m", "services.cli", "ingest", "--follow", "2", "--data-dir", str(Path(settings.data_dir))],
                                  env=environment, preexec_fn=die_with_parent)
    logger.info("started %d workers on %s:%d (pids %s)", len(workers), settings.host, settings.port,
                ", ".join(str(process.pid) for process in workers.values()))
    try:
        while not stop.wait(0.5):
            for index, process in list(workers.items()):
                if process.poll() is not None:
                    if process.returncode == CONFIG_ERROR_EXIT:  # it said why in one line; starting it again would say it again
                        logger.error("worker %d stopped on a configuration error (above); stopping the service", index)
                        return CONFIG_ERROR_EXIT
                    logger.error("worker %d (pid %d) exited with %s; starting it again", index, process.pid, process.returncode)
                    mark_process_dead(process.pid, metrics_directory)
                    time.sleep(RESTART_DELAY_S)
                    workers[index] = start(index)
    finally:
        for process in [*workers.values(), *([ingest] if ingest is not None else [])]:
            if process.poll() is None:
                process.terminate()
        for process in [*workers.values(), *([ingest] if ingest is not None else [])]:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
        if local is not None:
            local.stop()
        shutil.rmtree(metrics_directory, ignore_errors=True)
    return 0
