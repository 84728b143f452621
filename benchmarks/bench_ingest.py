"""Ingest throughput through the real path: Redis stream -> archive -> every effect (memory-index counts,
bandit learning, ranker rows) -> acknowledgement.

    python benchmarks/bench_ingest.py --impressions 20000 --repeats 3 --out results/bench_ingest.json

Events are shaped like the service's own: the real pipeline (tantivy, FAISS, the encoder, the bandit) serves
``--templates`` searches on a small demo catalog, logging into the stream; those impressions (k = 10, their
real candidates and features) are copied with fresh request and event ids up to ``--impressions``, with about
0.5 feedback each. Each repeat loads them into a fresh redis-server and times one `ltrr ingest --flush` pass
in a child process (its peak RSS is the child's), retraining off (it runs in its own process in production).
``redis-benchmark -t set -P 16`` runs against the same server for scale. Also the CPU time per impression
of the ingest process and of Redis (what 5,000 impressions/s would need, in cores). Prints a table and
writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import redis  # noqa: E402

QUERIES = ("jazz", "calm piano", "rock anthems", "sad songs", "night drive", "summer hits", "blues guitar", "focus music",
           "love songs", "workout", "chill beats", "classic rock")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_redis(directory: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    process = subprocess.Popen(["redis-server", "--port", str(port), "--save", "", "--appendonly", "no", "--dir", str(directory)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    for _ in range(100):
        try:
            client.ping()
            return process, url
        except redis.ConnectionError:
            time.sleep(0.05)
    raise RuntimeError("redis-server did not start")


def templates(data_dir: Path, url: str, count: int) -> list[dict]:
    """Real impressions from the real pipeline on a small demo catalog."""
    from services.eventstream import read_stream
    from services.search.indexing import build_indexes, indexes_exist
    from services.search.stack import open_stack
    from services.settings import Settings

    settings = Settings(data_dir=data_dir, redis_url=url, start_local_redis=False, demo_size=2000, no_progress=True)
    if not indexes_exist(settings):
        from contextlib import contextmanager

        @contextmanager
        def quiet(label, total):
            yield lambda done: None

        build_indexes(settings, quiet)
    stack = open_stack(settings)
    try:
        for number in range(count):
            stack.pipeline.search(QUERIES[number % len(QUERIES)], k=10, user_id=f"u{number % 50}")
    finally:
        stack.close()
    client = redis.Redis.from_url(url, decode_responses=True)
    events = [json.loads(text) for _, text in read_stream(client)]
    client.flushall()
    return [event for event in events if event["kind"] == "impression"]


def traffic(shapes: list[dict], impressions: int, seed: int) -> list[str]:
    """``impressions`` copies of the templates with fresh ids and times, each with ~0.5 feedback events."""
    rng = np.random.default_rng(seed)
    lines = []
    start = time.time() - impressions * 0.05 - 3600.0  # a backlog in the past: windows close by event time
    for number in range(impressions):
        shape = shapes[number % len(shapes)]
        request_id = uuid.uuid4().hex
        now = start + number * 0.05
        lines.append(json.dumps({**shape, "request_id": request_id, "event_id": uuid.uuid4().hex, "time": now}, separators=(",", ":")))
        page = shape["page"]
        if page and rng.random() < 0.5:
            item = page[int(rng.integers(len(page)))]
            lines.append(json.dumps({"schema_version": 1, "kind": "feedback", "event_id": uuid.uuid4().hex, "request_id": request_id,
                                     "entity_id": item["entity_id"], "event": "click", "position": item["position"], "time": now + 2.0}))
    return lines


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM): unlike ru_maxrss, not inherited across fork and exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def child(data_dir: str, url: str) -> None:
    """One timed `ingest --flush` pass (run in a child so its peak RSS is its own)."""
    from services.ingest.jobs import open_ingest_job
    from services.settings import Settings

    settings = Settings(data_dir=Path(data_dir), redis_url=url, start_local_redis=False, ranker_min_new_impressions=10**9)
    job = open_ingest_job(settings)
    opened_rss = peak_rss_mb()
    client = redis.Redis.from_url(url, decode_responses=True)
    redis_cpu_before = _redis_cpu_s(client)
    cpu_before = time.process_time()
    started = time.perf_counter()
    report = job.run(flush=True)
    seconds = time.perf_counter() - started
    cpu_s, redis_cpu_s = time.process_time() - cpu_before, _redis_cpu_s(client) - redis_cpu_before
    job.close()
    peak = peak_rss_mb()
    print(json.dumps({"seconds": seconds, "finalized": report.finalized, "lines": report.lines, "rows": report.training_rows, "peak_rss_mb": peak,
                      "rss_after_start_mb": opened_rss, "ingest_cpu_s": cpu_s, "redis_cpu_s": redis_cpu_s}))


def _redis_cpu_s(client: redis.Redis) -> float:
    """CPU seconds the Redis server has used (user + system): what ingest costs Redis, read before and after."""
    figures = client.info("cpu")
    return float(figures["used_cpu_user"]) + float(figures["used_cpu_sys"])


def redis_set_rate(url: str) -> float:
    port = url.rsplit(":", 1)[1].split("/")[0]
    output = subprocess.run(["redis-benchmark", "-p", port, "-t", "set", "-P", "16", "-n", "200000", "-q"],
                            capture_output=True, text=True, timeout=120).stdout
    for part in output.replace("\r", "\n").splitlines():
        if part.startswith("SET:") and "requests per second" in part:
            return float(part.split()[1])
    return float("nan")


def interval(values: list[float]) -> list[float]:
    """Mean ± 1.96 standard errors over the repeats (a normal approximation; say so when quoting)."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return [mean, mean]
    half = 1.96 * statistics.stdev(values) / len(values) ** 0.5
    return [mean - half, mean + half]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--impressions", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--templates", type=int, default=200, help="Real searches whose impressions are copied.")
    parser.add_argument("--data-dir", type=Path, default=Path("results/bench_ingest_data"), help="Demo catalog and indexes (built if missing).")
    parser.add_argument("--out", type=Path, default=Path("results/bench_ingest.json"))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--child", nargs=2, metavar=("DATA_DIR", "URL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    if shutil.which("redis-server") is None:
        sys.exit("error: redis-server is not installed; run `make install-system-deps` (or apt-get install redis-server)")
    console = Console(stderr=True)
    with tempfile.TemporaryDirectory() as scratch:
        server, url = start_redis(Path(scratch))
        try:
            console.print(f"serving {args.templates} real searches for event shapes ...")
            shapes = templates(args.data_dir, url, args.templates)
            lines = traffic(shapes, args.impressions, args.seed)
            runs = []
            for repeat in range(args.repeats):
                client = redis.Redis.from_url(url, decode_responses=True)
                client.flushall()
                loading = client.pipeline(transaction=False)
                for line in lines:
                    loading.xadd("ltrr:events", {"e": line})
                loading.execute()
                run_dir = Path(scratch) / f"run{repeat}"
                completed = subprocess.run([sys.executable, __file__, "--child", str(run_dir), url], capture_output=True, text=True,
                                           env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
                if completed.returncode != 0:
                    sys.exit(f"error: the ingest pass failed:\n{completed.stderr}")
                result = json.loads(completed.stdout.strip().splitlines()[-1])
                result["impressions_per_s"] = result["finalized"] / result["seconds"]
                result["events_per_s"] = result["lines"] / result["seconds"]
                result["ingest_cpu_us_per_impression"] = 1e6 * result["ingest_cpu_s"] / result["finalized"]
                result["redis_cpu_us_per_impression"] = 1e6 * result["redis_cpu_s"] / result["finalized"]
                runs.append(result)
                console.print(f"repeat {repeat + 1}/{args.repeats}: {result['impressions_per_s']:,.0f} impressions/s, peak RSS {result['peak_rss_mb']:.0f} MB")
            set_rate = redis_set_rate(url)
        finally:
            server.terminate()
            server.wait(timeout=10)
    candidates = [len(shape["candidates"]) for shape in shapes]
    best = min(runs, key=lambda run: run["seconds"])
    report = {
        "impressions": runs[0]["finalized"],
        "events": runs[0]["lines"],
        "seconds": best["seconds"],
        "impressions_per_s": statistics.fmean(run["impressions_per_s"] for run in runs),
        "impressions_per_s_interval95": interval([run["impressions_per_s"] for run in runs]),
        "events_per_s": statistics.fmean(run["events_per_s"] for run in runs),
        "peak_rss_mb": max(run["peak_rss_mb"] for run in runs),
        "cpu_us_per_impression": {
            "ingest": [min(run["ingest_cpu_us_per_impression"] for run in runs), max(run["ingest_cpu_us_per_impression"] for run in runs)],
            "redis": [min(run["redis_cpu_us_per_impression"] for run in runs), max(run["redis_cpu_us_per_impression"] for run in runs)],
        },
        "ranker_rows": runs[0]["rows"],
        "candidates_per_impression": {"mean": statistics.fmean(candidates), "max": max(candidates)},
        "redis_benchmark_set_P16_per_s": set_rate,
        "repeats": runs,
        "cpu_count": os.cpu_count(),
        "command": "python " + " ".join(sys.argv),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    table = Table(title=f"ingest: {report['impressions']:,} impressions, {report['events']:,} events, {args.repeats} repeats")
    for column in ("figure", "value"):
        table.add_column(column)
    low, high = report["impressions_per_s_interval95"]
    table.add_row("impressions/s (mean)", f"{report['impressions_per_s']:,.0f}  [{low:,.0f}, {high:,.0f}]")
    table.add_row("events/s (mean)", f"{report['events_per_s']:,.0f}")
    table.add_row("peak RSS of ingest", f"{report['peak_rss_mb']:.0f} MB")
    for side in ("ingest", "redis"):
        low_cpu, high_cpu = report["cpu_us_per_impression"][side]
        table.add_row(f"CPU per impression, {side}", f"{low_cpu:,.0f}-{high_cpu:,.0f} us (lowest-highest repeat)")
    table.add_row("candidates per impression", f"{report['candidates_per_impression']['mean']:.0f} (max {report['candidates_per_impression']['max']})")
    table.add_row("redis-benchmark SET -P 16", f"{set_rate:,.0f}/s")
    Console().print(table)
    console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
