"""The service process: opens the stack, starts its background threads, serves the FastAPI app.

With Redis, learning happens in ``ltrr ingest`` (another process) and this process reloads the model
versions it publishes. Without Redis, the memory index lives here, so ingestion runs here too.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import Any, Callable, Iterator

from fastapi import FastAPI

from contracts import LtrrError
from services.search.api import Limits, create_app
from services.search.metrics import Metrics
from services.search.pipeline import Pipeline
from services.search.reload import reload_models
from services.search.stack import Stack, concurrent_searches, health, open_stack, refresh_metrics
from services.settings import Settings

logger = logging.getLogger(__name__)


def _every(stack: Stack, seconds: float, name: str, work) -> threading.Thread:
    def loop() -> None:
        while not stack.stop.wait(seconds):
            try:
                work()
            except LtrrError as error:
                logger.error("%s failed: %s", name, error)
            except Exception:
                logger.exception("%s failed", name)

    thread = threading.Thread(target=loop, name=name, daemon=True)
    thread.start()
    return thread


InProcessLearning = Callable[[Stack], Callable[[], object]]


METRICS_REFRESH_S = 5.0
CATALOG_FOLLOW_S = 0.5  # how soon an entity write one worker took reaches the others


def _follow(pipeline: Pipeline) -> None:
    followed = pipeline.follow_catalog()
    if followed:
        logger.info("followed %d entity writes another process took", followed)


def start_background(stack: Stack, learn_in_process: InProcessLearning | None = None) -> None:
    """Without Redis the memory index lives here, so ``learn_in_process(stack)`` (the composition root's
    in-process ingest) runs every LTRR_INGEST_INTERVAL_S; with Redis, published models are reloaded. With
    several workers, each refreshes its gauges every few seconds (a scrape reaches one of them). Every
    process follows the entity writes other processes on its data directory took."""
    stack.threads.append(_every(stack, CATALOG_FOLLOW_S, "catalog-follower", lambda: _follow(stack.pipeline)))
    if stack.settings.workers > 1:
        stack.threads.append(_every(stack, METRICS_REFRESH_S, "metrics-refresh", lambda: refresh_metrics(stack, stack.metrics)))
    if stack.pipeline.memory.backend == "local":
        if learn_in_process is None:
            logger.warning("no Redis and no in-process learning: this service will not learn from its feedback")
            return
        stack.threads.append(_every(stack, stack.settings.ingest_interval_s, "in-process-ingest", learn_in_process(stack)))
    elif stack.settings.reload_interval_s > 0:
        stack.threads.append(_every(stack, stack.settings.reload_interval_s, "model-reloader", lambda: reload_models(stack.pipeline, stack.models, stack.settings)))


def build_app(
    settings: Settings, opened: Stack | None = None, learn_in_process: InProcessLearning | None = None, **stack_options: Any
) -> FastAPI:
    """The app for ``settings``; the stack opens at startup (or is ``opened`` already, so that `ltrr serve`
    reports a configuration error before uvicorn starts) and closes at shutdown."""
    holder: dict[str, Stack] = {}
    metrics = opened.metrics if opened is not None else Metrics()

    @contextlib.contextmanager
    def open_pipeline() -> Iterator[Pipeline]:
        stack = opened if opened is not None else open_stack(settings, metrics=metrics, **stack_options)
        holder["stack"] = stack
        try:
            start_background(stack, learn_in_process)
            logger.info("memory index: %s", stack.memory_description)
            yield stack.pipeline
        finally:
            stack.close()

    limits = Limits(
        max_concurrent=concurrent_searches(settings),
        queue_timeout_s=settings.queue_timeout_ms / 1000.0,
        queue_max_waiting=settings.queue_max_waiting,
        max_body_bytes=settings.max_body_bytes,
    )
    return create_app(
        open_pipeline, lambda pipeline: health(holder["stack"]), api_key=settings.api_key, feedback_key=settings.feedback_key, limits=limits, metrics=metrics,
        refresh_metrics=lambda metrics: refresh_metrics(holder["stack"], metrics),
    )
