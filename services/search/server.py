"""The service process: opens the stack, starts its background threads, serves the FastAPI app.

With Redis, learning happens in ``ltrr ingest`` (another process) and this process reloads the model
versions it publishes. Without Redis, the memory index lives here, so ingestion runs here too.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import Any, Iterator

from fastapi import FastAPI

from contracts import LtrrError
from services.search.api import create_app
from services.search.pipeline import Pipeline
from services.search.reload import reload_models
from services.search.stack import Stack, health, open_stack
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


def start_background(stack: Stack) -> None:
    if stack.pipeline.memory.backend == "local":
        # Only a service without Redis learns in-process.
        from services.ingest.jobs import ingest_job

        job = ingest_job(stack.settings, stack.pipeline)
        stack.threads.append(_every(stack, stack.settings.ingest_interval_s, "in-process-ingest", job.run))
    elif stack.settings.reload_interval_s > 0:
        stack.threads.append(_every(stack, stack.settings.reload_interval_s, "model-reloader", lambda: reload_models(stack.pipeline, stack.models, stack.settings)))


def build_app(settings: Settings, opened: Stack | None = None, **stack_options: Any) -> FastAPI:
    """The app for ``settings``; the stack opens at startup (or is ``opened`` already, so that `ltrr serve`
    reports a configuration error before uvicorn starts) and closes at shutdown."""
    holder: dict[str, Stack] = {}

    @contextlib.contextmanager
    def open_pipeline() -> Iterator[Pipeline]:
        stack = opened if opened is not None else open_stack(settings, **stack_options)
        holder["stack"] = stack
        try:
            start_background(stack)
            logger.info("memory index: %s", stack.memory_description)
            yield stack.pipeline
        finally:
            stack.close()

    return create_app(open_pipeline, lambda pipeline: health(holder["stack"]), api_key=settings.api_key)
