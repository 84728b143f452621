"""Soak: `ltrr serve` and `ltrr ingest --follow 1` on their own redis-server under steady traffic, sampled
every ``--sample-s`` seconds: the service's and ingest's resident memory, Redis memory, the data directory
on disk, the stream's length and ingest's lag (the age of the oldest unread event).

    python benchmarks/soak.py --minutes 30 --warmup-minutes 15 --rate 10 --out results/soak.json --plot docs/soak.png

State is bounded by settings, so the run uses short ones to reach steady state within the run: attribution
window 60 s, dedupe horizon 600 s, archive segments of 0.25 MB kept 5 minutes (the defaults keep 6 hours of
markers and 30 days of archive: the same bounds, reached later). The newest 3,000 ranker rows fill in about
10 minutes at 10 searches/s. After ``--warmup-minutes`` each figure
must stay within 10% of its post-warm-up mean. Traffic: searches drawn from a fixed set of queries with
Zipf frequencies, a click on a random result for half of them. Prints a table, writes JSON and a plot.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import redis
from deployment import deployment, rss_mb  # a sibling module (run as a script, its folder is on the path)
from rich.console import Console
from rich.table import Table

QUERIES = ("jazz", "calm piano", "rock anthems", "sad songs", "night drive", "summer hits", "blues guitar", "focus music",
           "love songs", "workout", "chill beats", "classic rock", "sad jazz songs", "piano for studying", "road trip",
           "party hits", "acoustic", "late night jazz", "morning coffee", "rainy day")
SETTINGS = {"LTRR_ATTRIBUTION_WINDOW_S": "60", "LTRR_INGEST_LATENESS_S": "10", "LTRR_DEDUPE_HORIZON_S": "600",
            "LTRR_ARCHIVE_SEGMENT_MB": "0.25", "LTRR_ARCHIVE_RETENTION_DAYS": str(300 / 86400), "LTRR_RELOAD_INTERVAL_S": "2"}
FIGURES = ("serve_rss_mb", "ingest_rss_mb", "redis_used_mb", "disk_mb", "stream_length", "ingest_lag_s")
FLAT = ("serve_rss_mb", "ingest_rss_mb", "redis_used_mb", "disk_mb")  # must stay within 10% after warm-up
console = Console(stderr=True)


def disk_mb(directory: Path) -> float:
    return sum(path.stat().st_size for path in directory.rglob("*") if path.is_file()) / 1e6


def traffic(base: str, rate: float, stop: threading.Event, counts: dict[str, int], seed: int) -> None:
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, len(QUERIES) + 1)
    weights /= weights.sum()
    with httpx.Client(timeout=30) as client:
        next_at = time.monotonic()
        while not stop.is_set():
            query = QUERIES[int(rng.choice(len(QUERIES), p=weights))]
            try:
                response = client.post(f"{base}/search", json={"query": query, "k": 10, "user_id": f"u{int(rng.integers(200))}"})
                counts["searches"] += 1
                body = response.json()
                if response.status_code != 200:
                    counts["errors"] += 1
                elif body["results"] and rng.random() < 0.5:
                    item = body["results"][int(rng.integers(len(body["results"])))]
                    client.post(f"{base}/feedback", json={"request_id": body["request_id"], "entity_id": item["id"], "event": "click"})
                    counts["feedback"] += 1
            except httpx.HTTPError:
                counts["errors"] += 1
            next_at += 1.0 / rate
            stop.wait(max(0.0, next_at - time.monotonic()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--warmup-minutes", type=float, default=15.0)
    parser.add_argument("--rate", type=float, default=10.0, help="Searches per second.")
    parser.add_argument("--sample-s", type=float, default=30.0)
    parser.add_argument("--data-dir", type=Path, default=Path("results/soak_data"), help="Demo catalog and indexes (built if missing).")
    parser.add_argument("--out", type=Path, default=Path("results/soak.json"))
    parser.add_argument("--plot", type=Path, default=None)
    args = parser.parse_args()
    samples: list[dict[str, float]] = []
    counts = {"searches": 0, "feedback": 0, "errors": 0}
    stop = threading.Event()
    with deployment(args.data_dir, {"LTRR_DEMO_SIZE": "2000", **SETTINGS}, "ltrr-soak-", start_timeout_s=600) as running:
        try:
            loader = threading.Thread(target=traffic, args=(running.base, args.rate, stop, counts, 1), daemon=True)
            loader.start()
            client = redis.Redis.from_url(running.redis_url, decode_responses=True)
            from services.eventstream import ingest_lag_s

            started = time.monotonic()
            while time.monotonic() - started < args.minutes * 60:
                time.sleep(args.sample_s)
                sample = {
                    "minute": (time.monotonic() - started) / 60.0,
                    "serve_rss_mb": rss_mb(running.serve.pid),
                    "ingest_rss_mb": rss_mb(running.ingest.pid) if running.ingest is not None else float("nan"),
                    "redis_used_mb": int(client.info("memory")["used_memory"]) / 1e6,
                    "disk_mb": disk_mb(args.data_dir),
                    "stream_length": float(client.xlen("ltrr:events")),
                    "ingest_lag_s": ingest_lag_s(client),
                    "searches": float(counts["searches"]),
                }
                samples.append(sample)
                console.print(" ".join(f"{name}={value:,.1f}" for name, value in sample.items()))
                running.check_alive()
        finally:
            stop.set()
    steady = [sample for sample in samples if sample["minute"] >= args.warmup_minutes]
    summary = {}
    for name in FIGURES:
        values = [sample[name] for sample in steady]
        mean = statistics.fmean(values) if values else float("nan")
        worst = max((abs(value - mean) / mean for value in values), default=float("nan")) if mean else 0.0
        summary[name] = {"mean": mean, "min": min(values, default=float("nan")), "max": max(values, default=float("nan")),
                         "max_deviation_from_mean": worst}
    flat = all(summary[name]["max_deviation_from_mean"] <= 0.10 for name in FLAT)
    max_lag = summary["ingest_lag_s"]["max"]
    report = {"flat_within_10_percent": flat, "max_ingest_lag_s": max_lag, "minutes": args.minutes, "warmup_minutes": args.warmup_minutes, "rate_per_s": args.rate, "settings": SETTINGS,
              "counts": counts, "steady_state": summary, "samples": samples, "command": "python " + " ".join(sys.argv),
              "cpu_count": os.cpu_count()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    table = Table(title=f"soak: {args.minutes:.0f} min at {args.rate:g} searches/s, after {args.warmup_minutes:.0f} min warm-up")
    for column in ("figure", "mean", "min", "max", "max deviation"):
        table.add_column(column)
    for name, figures in summary.items():
        table.add_row(name, f"{figures['mean']:,.1f}", f"{figures['min']:,.1f}", f"{figures['max']:,.1f}", f"{figures['max_deviation_from_mean']:.1%}")
    Console().print(table)
    console.print(f"{counts['searches']:,} searches, {counts['feedback']:,} clicks, {counts['errors']:,} errors; "
                  f"memory and disk flat within 10%: {'yes' if flat else 'NO'}; ingest lag at most {max_lag:.1f} s; wrote {args.out}")
    if args.plot is not None:
        plot(samples, args.warmup_minutes, args.plot)


def plot(samples: list[dict[str, float]], warmup: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, 3, figsize=(12, 6), sharex=True)
    for axis, name in zip(axes.flat, FIGURES, strict=True):
        axis.plot([sample["minute"] for sample in samples], [sample[name] for sample in samples])
        axis.axvline(warmup, color="grey", linestyle=":")
        axis.set_title(name)
        axis.set_ylim(bottom=0)
    for axis in axes[-1]:
        axis.set_xlabel("minutes")
    figure.suptitle("ltrr soak: serve + ingest --follow 1 on Redis (dotted: end of warm-up)")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    console.print(f"wrote {path}")


if __name__ == "__main__":
    main()
