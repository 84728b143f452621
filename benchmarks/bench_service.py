"""Latency and throughput of ``ltrr serve`` measured from outside, over HTTP.

Starts ``ltrr serve`` as a separate process (building the indexes first with ``ltrr index`` when they are
missing), waits for ``/healthz``, then sends ``POST /search`` (k=10) with distinct queries generated from the
catalog: exact titles, artist names, "artist title", lowercase and misspelled variants, genre and mood
phrases. Warm-up queries, single-client queries and concurrent queries are three disjoint sets (distinct
after query normalization), so no measured query is answered from the query-embedding cache.

Measures one client sending requests back to back, then ``--concurrency`` clients (one thread and one
``httpx.Client`` each); reports p50 and p99 latency and requests per second, prints a table, writes JSON.
Every search is logged as an impression in ``<data-dir>/events``, like real traffic.

    python benchmarks/bench_service.py --data-dir data --queries 1000 --concurrency 8
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

import httpx
import numpy as np
from rich.console import Console
from rich.table import Table

from catalog.io import read_entities
from catalog.schema import Entity
from retrievers.text import normalize_query
from services.search.indexing import indexes_exist
from services.settings import Settings

ACTIVITIES = (
    "studying", "a rainy day", "working out", "a road trip", "sleeping", "a party", "cooking", "running",
    "focus", "the weekend", "a long drive", "late nights", "the morning commute", "dinner", "meditation",
)
PHRASE_TEMPLATES = (
    "{mood} {genre}", "{mood} {genre} songs", "{genre} for {activity}", "{mood} {genre} for {activity}",
    "{mood} songs for {activity}", "something {mood} and {genre}", "{genre} music that feels {mood}",
)
SERVER_START_TIMEOUT_S = 600.0
console = Console()


@dataclass(frozen=True, slots=True)
class PhaseResult:
    requests: int
    errors: int
    p50_ms: float
    p99_ms: float
    mean_ms: float
    requests_per_s: float
    wall_s: float


# ---------------------------------------------------------------- queries


def _misspell(text: str, rng: random.Random) -> str:
    """One edit (swap, drop or double a letter) in one word of at least four letters; ``text`` if none."""
    words = text.split()
    long_words = [index for index, word in enumerate(words) if len(word) >= 4 and word.isalpha()]
    if not long_words:
        return text
    index = rng.choice(long_words)
    word = words[index]
    position = rng.randrange(1, len(word) - 1)
    edit = rng.choice(("swap", "drop", "double"))
    if edit == "swap":
        word = word[:position] + word[position + 1] + word[position] + word[position + 2:]
    elif edit == "drop":
        word = word[:position] + word[position + 1:]
    else:
        word = word[:position] + word[position] + word[position:]
    words[index] = word
    return " ".join(words)


def query_pools(entities: Sequence[Entity], rng: random.Random) -> dict[str, list[str]]:
    """Candidate queries by kind; each pool shuffled with ``rng``."""
    titled = [entity for entity in entities if entity.title.strip()]
    with_artist = [entity for entity in titled if entity.artist and entity.type in ("track", "album")]
    artists = sorted({entity.artist for entity in entities if entity.artist})
    genres = sorted({genre for entity in entities for genre in entity.genres})
    moods = sorted({mood for entity in entities for mood in entity.moods})
    pools = {
        "title": [entity.title for entity in titled],
        "artist": list(artists),
        "artist title": [f"{entity.artist} {entity.title}" for entity in with_artist],
        "title by artist": [f"{entity.title} by {entity.artist}" for entity in with_artist],
        "lowercase": [f"{entity.title} {entity.artist}".lower() for entity in with_artist],
        "misspelled": [_misspell(entity.title, rng) for entity in titled] + [_misspell(artist, rng) for artist in artists],
        "genre and mood": [
            template.format(mood=mood, genre=genre, activity=activity)
            for template in PHRASE_TEMPLATES
            for genre in genres
            for mood in moods
            for activity in (ACTIVITIES if "{activity}" in template else ACTIVITIES[:1])
        ],
    }
    for pool in pools.values():
        rng.shuffle(pool)
    return pools


def distinct_queries(entities: Sequence[Entity], count: int, seed: int) -> tuple[list[str], dict[str, int]]:
    """``count`` queries, distinct after ``normalize_query``, drawn round-robin from the pools (a fixed mix).
    Returns the queries in a seeded random order and how many came from each kind."""
    rng = random.Random(seed)
    pools = query_pools(entities, rng)
    iterators = {kind: iter(pool) for kind, pool in pools.items()}
    seen: set[str] = set()
    chosen: list[str] = []
    by_kind = {kind: 0 for kind in pools}
    while len(chosen) < count and iterators:
        for kind in list(iterators):
            for query in iterators[kind]:
                key = normalize_query(query)
                if key and key not in seen:
                    seen.add(key)
                    chosen.append(query)
                    by_kind[kind] += 1
                    break
            else:
                del iterators[kind]
            if len(chosen) == count:
                break
    if len(chosen) < count:
        raise SystemExit(
            f"--queries/--warmup: the catalog yields only {len(chosen)} distinct queries, {count} needed; "
            "lower --queries or --warmup, or use a bigger catalog"
        )
    rng.shuffle(chosen)
    return chosen, by_kind


# ---------------------------------------------------------------- the server process


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _ltrr_command() -> list[str]:
    script = Path(sys.executable).with_name("ltrr")
    if script.exists():
        return [str(script)]
    found = shutil.which("ltrr")
    return [found] if found else [sys.executable, "-m", "services.cli"]


def _server_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env["LTRR_NO_PROGRESS"] = env.get("LTRR_NO_PROGRESS", "1")
    return env


def ensure_indexes(data_dir: Path, demo_size: int | None) -> None:
    if indexes_exist(Settings(data_dir=data_dir)):
        return
    command = _ltrr_command() + ["index", "--data-dir", str(data_dir)]
    if demo_size is not None:
        command += ["--demo-size", str(demo_size)]
    console.print(f"indexes missing under {data_dir}; running: {shlex.join(command)}")
    subprocess.run(command, env=_server_env(), check=True)


class ServerProcess:
    """``ltrr serve`` in a child process; ``stop()`` sends SIGINT (uvicorn's graceful shutdown), then kills."""

    def __init__(self, data_dir: Path, port: int) -> None:
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self.log = tempfile.NamedTemporaryFile(prefix="ltrr-serve-", suffix=".log", delete=False)
        command = _ltrr_command() + ["serve", "--data-dir", str(data_dir), "--host", "127.0.0.1", "--port", str(port)]
        self.process = subprocess.Popen(command, env=_server_env(), stdout=self.log, stderr=subprocess.STDOUT)

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(Path(self.log.name).read_text(errors="replace").splitlines()[-lines:])

    def wait_healthy(self, timeout_s: float = SERVER_START_TIMEOUT_S) -> dict:
        deadline = time.monotonic() + timeout_s
        with httpx.Client(base_url=self.base_url, timeout=5.0) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise SystemExit(f"ltrr serve exited with code {self.process.returncode}:\n{self.log_tail()}")
                try:
                    response = client.get("/healthz")
                    if response.status_code == 200:
                        return response.json()
                except httpx.TransportError:
                    pass
                time.sleep(0.25)
        raise SystemExit(f"ltrr serve did not answer /healthz within {timeout_s:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        os.unlink(self.log.name)


# ---------------------------------------------------------------- measuring


def _search(client: httpx.Client, query: str, k: int) -> tuple[float, bool]:
    started = time.perf_counter()
    response = client.post("/search", json={"query": query, "k": k})
    return (time.perf_counter() - started) * 1000.0, response.status_code == 200


def _summary(latencies_ms: list[float], errors: int, wall_s: float) -> PhaseResult:
    values = np.asarray(latencies_ms, dtype=float)
    return PhaseResult(
        requests=len(latencies_ms) + errors,
        errors=errors,
        p50_ms=round(float(np.percentile(values, 50)), 2),
        p99_ms=round(float(np.percentile(values, 99)), 2),
        mean_ms=round(float(values.mean()), 2),
        requests_per_s=round((len(latencies_ms) + errors) / wall_s, 2),
        wall_s=round(wall_s, 3),
    )


def run_sequential(base_url: str, queries: Sequence[str], k: int) -> PhaseResult:
    latencies, errors = [], 0
    with httpx.Client(base_url=base_url, timeout=60.0) as client:
        started = time.perf_counter()
        for query in queries:
            elapsed_ms, ok = _search(client, query, k)
            if ok:
                latencies.append(elapsed_ms)
            else:
                errors += 1
        wall_s = time.perf_counter() - started
    return _summary(latencies, errors, wall_s)


def run_concurrent(base_url: str, queries: Sequence[str], k: int, clients: int) -> PhaseResult:
    """``clients`` threads, each with its own connection, taking the next query from a shared cursor."""
    cursor = iter(queries)
    cursor_lock = threading.Lock()
    results_lock = threading.Lock()
    latencies: list[float] = []
    errors = [0]
    start = threading.Barrier(clients + 1)
    failures: list[BaseException] = []

    def next_query() -> str | None:
        with cursor_lock:
            return next(cursor, None)

    def worker() -> None:
        try:
            with httpx.Client(base_url=base_url, timeout=60.0) as client:
                client.get("/healthz")  # open the connection before the clock starts
                start.wait()
                while (query := next_query()) is not None:
                    elapsed_ms, ok = _search(client, query, k)
                    with results_lock:
                        if ok:
                            latencies.append(elapsed_ms)
                        else:
                            errors[0] += 1
        except BaseException as error:  # reported below, after every thread has finished
            failures.append(error)
            start.abort()

    threads = [threading.Thread(target=worker, name=f"client-{index}") for index in range(clients)]
    for thread in threads:
        thread.start()
    try:
        start.wait()
    except threading.BrokenBarrierError:
        pass
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    wall_s = time.perf_counter() - started
    if failures:
        raise failures[0]
    return _summary(latencies, errors[0], wall_s)


def _print_table(phases: dict[str, PhaseResult], title: str) -> None:
    table = Table(title=title)
    for column in ("clients", "requests", "errors", "p50 ms", "p99 ms", "mean ms", "requests/s"):
        table.add_column(column, justify="right" if column != "clients" else "left")
    for name, phase in phases.items():
        table.add_row(
            name, str(phase.requests), str(phase.errors), f"{phase.p50_ms:.1f}", f"{phase.p99_ms:.1f}",
            f"{phase.mean_ms:.1f}", f"{phase.requests_per_s:.1f}",
        )
    console.print(table)


def _measure(
    args: argparse.Namespace, base_url: str, warmup: list[str], single: list[str], concurrent: list[str]
) -> dict[str, PhaseResult]:
    with httpx.Client(base_url=base_url, timeout=60.0) as client:
        for query in warmup:
            client.post("/search", json={"query": query, "k": args.k})
    phases: dict[str, PhaseResult] = {}
    steps: list[tuple[str, Callable[[], PhaseResult]]] = [
        ("single_client", lambda: run_sequential(base_url, single, args.k)),
        (f"concurrent_{args.concurrency}", lambda: run_concurrent(base_url, concurrent, args.k, args.concurrency)),
    ]
    for name, step in steps:
        console.print(f"measuring {name} ({args.queries} queries)")
        phases[name] = step()
    return phases


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=Path("data"), help="Data directory of the service.")
    parser.add_argument("--queries", type=int, default=1000, help="Measured queries per phase (distinct).")
    parser.add_argument("--concurrency", type=int, default=8, help="Clients in the concurrent phase.")
    parser.add_argument("--warmup", type=int, default=100, help="Warm-up queries (distinct from the measured ones).")
    parser.add_argument("--k", type=int, default=10, help="Results per search.")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the query generator.")
    parser.add_argument("--port", type=int, default=0, help="Server port (0: a free port).")
    parser.add_argument("--demo-size", type=int, default=None, help="Demo catalog size if the indexes must be built.")
    parser.add_argument("--out", type=Path, default=Path("results/bench_service.json"))
    args = parser.parse_args(argv)
    for name in ("queries", "concurrency", "k"):
        if getattr(args, name) < 1:
            parser.error(f"--{name}: expected >= 1, got {getattr(args, name)}")
    if args.warmup < 0:
        parser.error(f"--warmup: expected >= 0, got {args.warmup}")

    load_at_start = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None
    ensure_indexes(args.data_dir, args.demo_size)
    entities = list(read_entities(Settings(data_dir=args.data_dir).resolved_catalog_path))
    queries, mix = distinct_queries(entities, args.warmup + 2 * args.queries, args.seed)
    warmup, single = queries[: args.warmup], queries[args.warmup : args.warmup + args.queries]
    concurrent = queries[args.warmup + args.queries :]

    server = ServerProcess(args.data_dir, args.port or _free_port())
    try:
        health = server.wait_healthy()
        phases = _measure(args, server.base_url, warmup, single, concurrent)
    finally:
        server.stop()

    _print_table(phases, f"ltrr serve: {len(entities):,} entities, k={args.k}, {args.queries:,} distinct queries per phase")
    report = {
        "catalog_entities": len(entities),
        "queries": args.queries,
        "warmup": args.warmup,
        "k": args.k,
        "seed": args.seed,
        "query_mix": mix,
        **{name: asdict(phase) for name, phase in phases.items()},
        "server": {
            "status": health.get("status"),
            "memory_index": health.get("backends", {}).get("memory_index", {}).get("description"),
            "models": health.get("models"),
        },
        "machine": {
            "cpu_count": os.cpu_count(),
            "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "load_average_1m_at_start": load_at_start,
            "python": platform.python_version(),
            "platform": platform.platform(),
            "processor": platform.machine(),
        },
        "command": shlex.join(["python", *sys.argv]),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    console.print(f"wrote {args.out}")
    return 1 if any(phase.errors for phase in phases.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
