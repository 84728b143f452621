"""Load: ``--clients`` concurrent clients for ``--seconds`` against `ltrr serve`, ``--runs`` times, with
`ltrr ingest --follow 1` running beside it on its own redis-server, all on loopback; the clients run in
this process (asyncio + httpx), the service and ingest in theirs.

    python benchmarks/bench_load.py --clients 200 --seconds 60 --runs 2 --out docs/benchmarks/bench_load.json

Each client searches (a query drawn with Zipf frequencies from a fixed list), and clicks a random result of
a third of its pages. Per run: searches and feedback by status, 503 share, pages answered 200 but empty,
latency p50 / p99 (searches; 503s included, they answer fast), throughput, and the service's resident
memory after the run. Passes when: no 5xx but 503, at most 1% of searches 503, no empty 200 page, and the
service's memory after the last run within 10% of after the first. Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import numpy as np
from deployment import deployment, rss_mb  # sibling modules (run as a script, its folder is on the path)
from rich.console import Console
from rich.table import Table
from soak import QUERIES

console = Console(stderr=True)


async def client_loop(client: httpx.AsyncClient, seed: int, until: float, record: dict) -> None:
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, len(QUERIES) + 1)
    weights /= weights.sum()
    while time.monotonic() < until:
        query = QUERIES[int(rng.choice(len(QUERIES), p=weights))]
        started = time.perf_counter()
        try:
            response = await client.post("/search", json={"query": query, "k": 10})
        except httpx.HTTPError as error:
            record["search_status"][type(error).__name__] += 1
            continue
        record["search_ms"].append((time.perf_counter() - started) * 1000)
        record["search_status"][response.status_code] += 1
        if response.status_code == 503:
            await asyncio.sleep(float(response.headers.get("retry-after", "1")) * rng.random())
            continue
        if response.status_code != 200:
            continue
        body = response.json()
        if not body["results"]:
            record["empty_pages"] += 1
            continue
        if rng.random() < 1 / 3:
            chosen = body["results"][int(rng.integers(len(body["results"])))]
            try:
                answer = await client.post("/feedback", json={"request_id": body["request_id"], "entity_id": chosen["id"], "event": "click"})
                record["feedback_status"][answer.status_code] += 1
            except httpx.HTTPError as error:
                record["feedback_status"][type(error).__name__] += 1


async def one_run(base: str, clients: int, seconds: float, seed: int) -> dict:
    record: dict = {"search_ms": [], "search_status": Counter(), "feedback_status": Counter(), "empty_pages": 0}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60.0) as client:
        started = time.monotonic()
        until = started + seconds
        await asyncio.gather(*(client_loop(client, seed * 10_000 + index, until, record) for index in range(clients)))
        wall = time.monotonic() - started
    latencies = np.array(record["search_ms"]) if record["search_ms"] else np.array([float("nan")])
    searches = sum(record["search_status"].values())
    ok = record["search_status"].get(200, 0)
    server_errors = {str(code): n for code, n in record["search_status"].items() if not (isinstance(code, int) and code < 500) and code != 503}
    server_errors.update({f"feedback {code}": n for code, n in record["feedback_status"].items() if not (isinstance(code, int) and code < 500)})
    return {
        "searches": searches,
        "search_status": {str(code): n for code, n in record["search_status"].items()},
        "feedback_status": {str(code): n for code, n in record["feedback_status"].items()},
        "share_503": record["search_status"].get(503, 0) / searches if searches else 0.0,
        "errors_other_than_503": server_errors,
        "empty_pages": record["empty_pages"],
        "p50_ms": float(np.percentile(latencies, 50)),
        "p99_ms": float(np.percentile(latencies, 99)),
        "searches_per_s": ok / wall,
        "wall_s": wall,
    }


def serve_rss_mb(pid: int) -> float:
    """The service's resident memory: the process, plus its workers when it supervises some."""
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return rss_mb(pid) + sum(rss_mb(int(child)) for child in children)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--data-dir", type=Path, default=Path("results/load_data"), help="Demo catalog and indexes (built if missing).")
    parser.add_argument("--demo-size", type=int, default=20000, help="Entities in the demo catalog built when missing.")
    parser.add_argument("--workers", type=int, default=1, help="`ltrr serve --workers` (service processes on the port).")
    parser.add_argument("--out", type=Path, default=Path("results/bench_load.json"))
    args = parser.parse_args()
    runs = []
    settings = {"LTRR_DEMO_SIZE": str(args.demo_size), "LTRR_WORKERS": str(args.workers)}
    with deployment(args.data_dir, settings, "ltrr-load-", start_timeout_s=1800) as running:
        for number in range(1, args.runs + 1):
            console.print(f"run {number}/{args.runs}: {args.clients} clients for {args.seconds:.0f} s")
            result = asyncio.run(one_run(running.base, args.clients, args.seconds, seed=number))
            time.sleep(5)  # let the service settle before its memory is read
            result["serve_rss_mb"] = serve_rss_mb(running.serve.pid)
            result["ingest_rss_mb"] = rss_mb(running.ingest.pid) if running.ingest is not None else float("nan")
            runs.append(result)
            console.print(json.dumps({k: v for k, v in result.items() if k not in ("search_status", "feedback_status")}))
            running.check_alive()
    memory_growth = runs[-1]["serve_rss_mb"] / runs[0]["serve_rss_mb"] - 1.0
    checks = {
        "no_5xx_but_503": all(not run["errors_other_than_503"] for run in runs),
        "at_most_1_percent_503": all(run["share_503"] <= 0.01 for run in runs),
        "no_empty_200_page": all(run["empty_pages"] == 0 for run in runs),
        "memory_within_10_percent": abs(memory_growth) <= 0.10,
    }
    report = {"clients": args.clients, "seconds": args.seconds, "workers": args.workers, "runs": runs, "serve_memory_growth": memory_growth, "checks": checks,
              "passed": all(checks.values()), "command": "python " + " ".join(sys.argv), "cpu_count": os.cpu_count(),
              "note": "clients, service, ingest and Redis share the machine's cores"}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    table = Table(title=f"load: {args.clients} clients x {args.seconds:.0f} s, {args.runs} runs, {args.workers} worker(s), ingest running")
    for column in ("run", "searches", "200/s", "503", "other 5xx", "empty 200", "p50 ms", "p99 ms", "serve RSS MB"):
        table.add_column(column, justify="right")
    for index, run in enumerate(runs, 1):
        table.add_row(str(index), f"{run['searches']:,}", f"{run['searches_per_s']:.1f}", f"{run['share_503']:.2%}",
                      str(sum(run["errors_other_than_503"].values())), str(run["empty_pages"]), f"{run['p50_ms']:.0f}",
                      f"{run['p99_ms']:.0f}", f"{run['serve_rss_mb']:.0f}")
    Console().print(table)
    console.print(f"service memory after the last run vs the first: {memory_growth:+.1%}; "
                  + ", ".join(f"{name}: {'yes' if ok else 'NO'}" for name, ok in checks.items()) + f"; wrote {args.out}")
    sys.exit(0 if report["passed"] else 1)


if __name__ == "__main__":
    main()
