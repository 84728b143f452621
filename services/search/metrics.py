"""Prometheus metrics of one service process, served at ``GET /metrics``.

Labels are bounded: stages and strategies come from the configuration, plans from the plan list, events
from ``Engagement``, routes from the API's own paths, statuses from HTTP. No query text, no user id.
Each process has its own registry (a test can open several apps in one process); with several workers,
prometheus-client's multiprocess mode combines them, so a scrape of any worker reports the service.
"""

from __future__ import annotations

import os
import time
from typing import Callable, Mapping, Sequence

import numpy as np
from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE  # noqa: N811
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from retrievers.embedding import TextEncoder

__all__ = ["CONTENT_TYPE", "Metrics", "TimedEncoder"]

MULTIPROCESS_DIRECTORY = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.stage_seconds = Histogram(
            "ltrr_stage_seconds", "Time per stage of a search: queue (admission wait), encode, each retriever, bandit, ranker, total.",
            ["stage"], registry=r, buckets=LATENCY_BUCKETS,
        )
        self.plans = Counter("ltrr_plans_chosen_total", "Plans the bandit chose.", ["plan"], registry=r)
        self.skipped = Counter("ltrr_retriever_skipped_total", "Strategies of a plan that gave no answer, by reason.", ["strategy", "reason"], registry=r)
        self.fallback = Counter("ltrr_fallback_results_total", "Results the fallback strategy added to pages the plan left short.", registry=r)
        self.empty_pages = Counter("ltrr_empty_pages_total", "Searches answered with an empty page.", registry=r)
        self.feedback_events = Counter("ltrr_feedback_total", "Feedback accepted, by event.", ["event"], registry=r)
        self.responses = Counter("ltrr_http_responses_total", "Responses by route and status.", ["route", "status"], registry=r)
        self.overloaded = Counter("ltrr_overloaded_total", "Searches refused by admission control (503).", registry=r)
        self.spool_bytes = Gauge("ltrr_spool_bytes", "Bytes of events spooled locally, waiting for Redis.", registry=r, multiprocess_mode="livesum")
        self.dependency_up = Gauge(
            "ltrr_dependency_up", "1 when a dependency answers, 0 when the service runs without it.", ["dependency"], registry=r, multiprocess_mode="livemin"
        )
        self.ingest_lag = Gauge("ltrr_ingest_lag_seconds", "Age of the oldest event ingest has not read (Redis only).", registry=r, multiprocess_mode="livemax")
        self.admission_running = Gauge("ltrr_admission_running", "Searches running now.", registry=r, multiprocess_mode="livesum")
        self.admission_waiting = Gauge("ltrr_admission_waiting", "Searches waiting for admission now.", registry=r, multiprocess_mode="livesum")
        # The version strings themselves would be a label without bound (one per publish) that multiprocess
        # mode can never clear; they are in /healthz and in every response's model_versions.
        self.model_loaded = Gauge(
            "ltrr_model_loaded_timestamp_seconds", "When this process's metrics first saw its serving model of each kind (checked at every scrape, and every 5 s with several workers; the stalest worker's).",
            ["kind"], registry=r, multiprocess_mode="livemin",
        )
        self._serving: dict[str, str] = {}

    # -- the pipeline's Observer ------------------------------------------------------------------

    def stage(self, name: str, seconds: float) -> None:
        self.stage_seconds.labels(name).observe(seconds)

    def searched(self, plan: str, skipped: Mapping[str, str], fallback: int, empty: bool) -> None:
        self.plans.labels(plan).inc()
        for strategy, reason in skipped.items():
            self.skipped.labels(strategy, reason.split(" ", 1)[0].rstrip(":")).inc()
        if fallback:
            self.fallback.inc(fallback)
        if empty:
            self.empty_pages.inc()

    def feedback(self, event: str) -> None:
        self.feedback_events.labels(event).inc()

    # -- at scrape time ---------------------------------------------------------------------------

    def render(self, refresh: Callable[[Metrics], None] | None = None) -> bytes:
        """This process's figures; with several workers (PROMETHEUS_MULTIPROC_DIR, set by ``ltrr serve
        --workers``) every live worker's, summed (counters, histograms) or combined as each gauge says."""
        if refresh is not None:
            refresh(self)
        directory = os.environ.get(MULTIPROCESS_DIRECTORY)
        if not directory:
            return generate_latest(self.registry)
        combined = CollectorRegistry()
        MultiProcessCollector(combined, path=directory)
        return generate_latest(combined)

    def set_models(self, versions: Mapping[str, str], now: Callable[[], float] = time.time) -> None:
        for kind, version in versions.items():
            if self._serving.get(kind) != version:
                self._serving[kind] = version
                self.model_loaded.labels(kind).set(now())


class TimedEncoder:
    """A ``TextEncoder`` that reports each query encoding as the ``encode`` stage."""

    def __init__(self, encoder: TextEncoder, metrics: Metrics) -> None:
        self.encoder = encoder
        self.metrics = metrics
        self.dim = encoder.dim

    def encode_query(self, text: str) -> np.ndarray:
        started = time.perf_counter()
        try:
            return self.encoder.encode_query(text)
        finally:
            self.metrics.stage("encode", time.perf_counter() - started)

    def encode_documents(self, texts: Sequence[str], batch_size: int = 64, progress: Callable[[int], None] | None = None) -> np.ndarray:
        return self.encoder.encode_documents(texts, batch_size, progress)
