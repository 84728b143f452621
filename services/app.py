"""The search service as `ltrr serve` runs it: the search door, plus in-process learning when there is no
Redis (the memory index then lives in the service, so ingestion must too). Composition root: the only
place that joins the search service and the ingest job."""

from __future__ import annotations

from typing import Any, Callable

from fastapi import FastAPI

from services.search.server import build_app as build_search_app
from services.search.stack import Stack
from services.settings import Settings


def in_process_learning(stack: Stack) -> Callable[[], object]:
    """One ingest pass over the service's own log, learning into its pipeline (imported on first use)."""
    from services.ingest.jobs import ingest_job

    return ingest_job(stack.settings, stack.pipeline).run


def build_app(settings: Settings, opened: Stack | None = None, **stack_options: Any) -> FastAPI:
    return build_search_app(settings, opened=opened, learn_in_process=in_process_learning, **stack_options)
