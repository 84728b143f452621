"""The HTTP door: ``POST /search``, ``POST /feedback``, ``GET /healthz``, ``/`` (a small search page).

Pydantic models live only here, at the edge. Every input problem becomes a 4xx whose body names the
field: ``{"error": "...", "detail": [{"field": "query", "message": "..."}]}``; nothing leaks a traceback.
"""

from __future__ import annotations

import hmac
import logging
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Callable, Literal, Union

import fastapi_offline
from fastapi import FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    field_validator,
)
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from catalog.schema import Entity
from contracts import BadRequest, LtrrError, NotFound
from services.search.admission import Admission, Overloaded
from services.search.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from services.search.metrics import Metrics
from services.search.pipeline import MAX_K, MAX_QUERY_CHARS, Pipeline, SearchOutcome

logger = logging.getLogger(__name__)

ContextValue = Union[StrictStr, StrictBool, StrictInt, StrictFloat]


def _reject_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("contains a lone surrogate (invalid Unicode); send valid UTF-8 text") from None
    return value


class SearchBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: StrictStr = Field(
        min_length=1, max_length=MAX_QUERY_CHARS, pattern=r"\S",
        description=f"The user's query, 1 to {MAX_QUERY_CHARS} characters, at least one not whitespace.", examples=["sad songs for a rainy day"],
    )
    user_id: StrictStr | None = Field(None, max_length=256)
    session_id: StrictStr | None = Field(None, max_length=256)
    k: StrictInt = Field(10, ge=1, le=MAX_K, description="How many results to return.")
    context: dict[Annotated[str, Field(max_length=64)], ContextValue] | None = Field(
        None, max_length=32, description="Extra context features (device, locale, ...): strings, numbers, booleans."
    )

    @field_validator("query", "user_id", "session_id")
    @classmethod
    def _valid_unicode(cls, value: Any) -> Any:
        return _reject_surrogates(value)

    @field_validator("context")
    @classmethod
    def _valid_context(cls, value: Any) -> Any:
        for key, item in (value or {}).items():
            _reject_surrogates(key)
            _reject_surrogates(item)
        return value


class SourceOut(BaseModel):
    strategy: str
    score: float
    rank: int


class ResultOut(BaseModel):
    id: str
    type: str
    title: str
    artist: str
    score: float
    sources: list[SourceOut]


class PlanOut(BaseModel):
    quotas: dict[str, int] = Field(description="Candidates drawn from each strategy.")
    name: str
    probability: float = Field(description="Probability with which the policy chose this plan.")
    distribution: dict[str, float] = Field(description="The policy's probability of every plan.")
    policy_version: str
    skipped: dict[str, str] = Field(description="Strategies in the plan that failed or ran out of time, with why.")


class SearchResponse(BaseModel):
    request_id: str
    results: list[ResultOut]
    plan: PlanOut
    model_versions: dict[str, str]
    candidates: int = Field(description="Size of the candidate union the ranker ordered.")
    fallback: int = Field(0, description="Results the fallback strategies added because the plan's strategies found fewer than k.")
    degraded: list[str] = Field(default_factory=list, description="Dependencies this answer was made without (e.g. memory_index while Redis is down).")


class FeedbackBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    request_id: StrictStr = Field(max_length=128)
    entity_id: StrictStr = Field(max_length=512)
    event: Literal["click", "favorite", "play"] = Field(description="What the user did with the result.")
    position: StrictInt | None = Field(None, ge=1, le=MAX_K)

    @field_validator("request_id", "entity_id")
    @classmethod
    def _valid_unicode(cls, value: Any) -> Any:
        return _reject_surrogates(value)


class FeedbackResponse(BaseModel):
    event_id: str


EntityType = Literal["track", "artist", "album", "playlist", "podcast", "document"]


class EntityIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: StrictStr = Field(min_length=1, max_length=512)
    type: EntityType
    title: StrictStr = Field(max_length=1000)
    artist: StrictStr = Field("", max_length=1000)
    album: StrictStr = Field("", max_length=1000)
    genres: list[Annotated[StrictStr, Field(max_length=100)]] = Field(default_factory=list, max_length=50)
    moods: list[Annotated[StrictStr, Field(max_length=100)]] = Field(default_factory=list, max_length=50)
    description: StrictStr = Field("", max_length=20_000)
    popularity: float = Field(0.0, ge=0.0, le=1.0, strict=True)
    release_date: StrictStr = Field("", max_length=32)

    @field_validator("id", "title", "artist", "album", "description", "release_date")
    @classmethod
    def _valid_unicode(cls, value: Any) -> Any:
        return _reject_surrogates(value)

    @field_validator("id")
    @classmethod
    def _non_blank_id(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value


class EntitiesBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entities: list[EntityIn] = Field(min_length=1, max_length=1000, description="Entities to add or replace (by id).")


class EntitiesResponse(BaseModel):
    upserted: int


class DeleteResponse(BaseModel):
    deleted: str


class ErrorDetail(BaseModel):
    field: str
    message: str


class ErrorResponse(BaseModel):
    error: str
    detail: list[ErrorDetail]


def search_response(outcome: SearchOutcome) -> SearchResponse:
    decision = outcome.decision
    return SearchResponse(
        request_id=outcome.request_id,
        results=[
            ResultOut(
                id=item.entity_id,
                type=item.type,
                title=item.title,
                artist=item.artist,
                score=item.score,
                sources=[SourceOut(strategy=s.strategy, score=s.score, rank=s.rank) for s in item.sources],
            )
            for item in outcome.results
        ],
        plan=PlanOut(
            quotas=decision.plan.as_dict(),
            name=decision.plan.name,
            probability=decision.probability,
            distribution={plan.name: p for plan, p in zip(decision.plans, decision.distribution, strict=True)},
            policy_version=decision.policy_version,
            skipped=dict(outcome.skipped),
        ),
        model_versions=dict(outcome.model_versions),
        candidates=outcome.candidates,
        fallback=len(outcome.fallback),
        degraded=list(outcome.degraded),
    )


def _field_of(location: tuple[Any, ...]) -> str:
    parts = [str(part) for part in location if part != "body"]
    return ".".join(parts) if parts else "body"


def _validation_detail(error: dict[str, Any]) -> ErrorDetail:
    if error.get("type") == "json_invalid":
        return ErrorDetail(field="body", message=f"malformed JSON: {error.get('ctx', {}).get('error', 'cannot parse')}")
    message = str(error.get("msg", "invalid value"))
    return ErrorDetail(field=_field_of(tuple(error.get("loc", ()))), message=message)


def _error(status: int, error: str, detail: list[ErrorDetail], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(status_code=status, content=ErrorResponse(error=error, detail=detail).model_dump(), headers=headers)


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "The body is not UTF-8 JSON."},
    404: {"model": ErrorResponse, "description": "Unknown request_id or entity id."},
    413: {"model": ErrorResponse, "description": "The body is larger than LTRR_MAX_BODY_BYTES."},
    422: {"model": ErrorResponse, "description": "A field is invalid; `detail[].field` names it."},
    503: {"model": ErrorResponse, "description": "A backend is unavailable; retry later."},
}
SEARCH_RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERROR_RESPONSES,
    503: {
        "model": ErrorResponse,
        "description": "Too many searches waiting (admission control) or a backend is unavailable; retry after `Retry-After` seconds.",
        "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait before retrying."}},
    },
}
WRITE_RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERROR_RESPONSES,
    401: {"model": ErrorResponse, "description": "Missing or wrong X-API-Key (when LTRR_API_KEY is set)."},
}

FEEDBACK_RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERROR_RESPONSES,
    401: {"model": ErrorResponse, "description": "Missing or wrong X-Feedback-Key (when LTRR_FEEDBACK_KEY is set)."},
}


DOCS_ASSETS = "/docs-assets"


@dataclass(frozen=True, slots=True)
class Limits:
    """What one process takes on: searches at once (the rest queue FIFO up to ``queue_timeout_s``) and body size."""

    max_concurrent: int = 2
    queue_timeout_s: float = 15.0
    queue_max_waiting: int = 1000
    max_body_bytes: int = 1 << 20


WRITE_PATH = "/entities"
WRITE_METHODS = frozenset({"POST", "PUT", "DELETE"})


class KeyGuard:
    """Checks a key header on the requests ``guards`` picks before anything reads the body (a constant-time
    comparison); 401 naming the header otherwise."""

    def __init__(self, app: ASGIApp, key: str, header: str, guards: Callable[[str, str], bool], message: str) -> None:
        self.app = app
        self.key = key.encode("utf-8")
        self.header = header
        self.header_bytes = header.lower().encode("ascii")
        self.guards = guards
        self.message = message

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.guards(scope["method"], scope["path"]):
            sent = next((value for name, value in scope["headers"] if name == self.header_bytes), b"")
            if not hmac.compare_digest(sent, self.key):
                response = _error(401, "unauthorized", [ErrorDetail(field=self.header, message=self.message)])
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _is_entity_write(method: str, path: str) -> bool:
    return method in WRITE_METHODS and path.startswith(WRITE_PATH)


def _is_feedback(method: str, path: str) -> bool:
    return method == "POST" and path == FEEDBACK_PATH


ROUTES = ("/search", "/feedback", "/healthz", "/metrics", "/entities", "/docs", "/openapi.json", "/")


class CountResponses:
    """``ltrr_http_responses_total`` by route (one of ``ROUTES`` or ``other``: bounded) and status."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        route = next((r for r in ROUTES if path == r or (r == "/entities" and path.startswith("/entities/"))), "other")

        async def counted(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.metrics.responses.labels(route, str(message["status"])).inc()
            await send(message)

        await self.app(scope, receive, counted)


class BodyTooLarge(StarletteHTTPException):
    def __init__(self) -> None:
        super().__init__(status_code=413, detail="content too large")


class BodyLimit:
    """413 for a body over ``max_bytes``: at once from ``Content-Length``, else as soon as the bytes read pass it."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = next((value for name, value in scope["headers"] if name == b"content-length"), None)
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await body_too_large(self.max_bytes)(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise BodyTooLarge()
            return message

        await self.app(scope, counted, send)


def body_too_large(max_bytes: int) -> JSONResponse:
    message = f"the body is larger than {max_bytes:,} bytes (LTRR_MAX_BODY_BYTES)"
    return _error(413, "content too large", [ErrorDetail(field="body", message=message)])


UNAUTHORIZED_MESSAGE = "entity writes need the API key: send it in the X-API-Key header (LTRR_API_KEY on the server)"
FEEDBACK_UNAUTHORIZED_MESSAGE = "feedback needs the feedback key: send it in the X-Feedback-Key header (LTRR_FEEDBACK_KEY on the server)"
FEEDBACK_PATH = "/feedback"


def create_app(
    open_pipeline: Callable[[], Any],
    health: Callable[[Pipeline], dict[str, Any]],
    api_key: str | None = None,
    limits: Limits = Limits(),
    feedback_key: str | None = None,
    metrics: Metrics | None = None,
    refresh_metrics: Callable[[Metrics], None] | None = None,
) -> FastAPI:
    """``open_pipeline`` is a context-manager factory yielding the ``Pipeline`` (wiring builds it from Settings);
    ``refresh_metrics`` sets the gauges read at scrape time."""
    admission = Admission(limits.max_concurrent, limits.queue_timeout_s, limits.queue_max_waiting)
    metrics = metrics or Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        with open_pipeline() as pipeline:
            app.state.pipeline = pipeline
            yield

    app = FastAPI(
        title="ltrr",
        version="0.1.0",
        summary="Learning to rank and retrieve: a bandit picks the retrievers, LambdaMART ranks their union.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.add_middleware(BodyLimit, max_bytes=limits.max_body_bytes)
    app.add_middleware(CountResponses, metrics=metrics)
    if api_key is not None:
        app.add_middleware(KeyGuard, key=api_key, header="X-API-Key", guards=_is_entity_write, message=UNAUTHORIZED_MESSAGE)
    if feedback_key is not None:
        app.add_middleware(KeyGuard, key=feedback_key, header="X-Feedback-Key", guards=_is_feedback, message=FEEDBACK_UNAUTHORIZED_MESSAGE)
    app.state.admission = admission
    # Swagger UI 5 (it reads OpenAPI 3.1) from the installed fastapi-offline package, not a CDN: /docs works offline.
    app.mount(DOCS_ASSETS, StaticFiles(directory=Path(fastapi_offline.__file__).parent / "static"), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title="ltrr API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png",
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(422, "invalid request", [_validation_detail(error) for error in exc.errors()])

    @app.exception_handler(Overloaded)
    async def _overloaded(request: Request, exc: Overloaded) -> JSONResponse:
        metrics.overloaded.inc()
        detail = [ErrorDetail(field="service", message=f"overloaded: {exc.reason}; retry after {exc.retry_after_s} s")]
        return _error(503, "overloaded", detail, headers={"Retry-After": str(exc.retry_after_s)})

    @app.exception_handler(BadRequest)
    async def _bad_request(request: Request, exc: BadRequest) -> JSONResponse:
        status = 404 if isinstance(exc, NotFound) else 422
        return _error(status, "invalid request", [ErrorDetail(field=exc.field, message=exc.message)])

    @app.exception_handler(LtrrError)
    async def _ltrr_error(request: Request, exc: LtrrError) -> JSONResponse:
        logger.error("request failed: %s", exc)
        return _error(503, "service unavailable", [ErrorDetail(field="service", message=str(exc))])

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:
            # Starlette's own body parsing failed before validation (e.g. bytes that are not UTF-8).
            message = f"cannot parse the request body ({exc.detail}); send UTF-8 encoded JSON"
            return _error(400, "invalid request", [ErrorDetail(field="body", message=message)])
        if exc.status_code == 413:
            return body_too_large(limits.max_body_bytes)
        return _error(exc.status_code, "http error", [ErrorDetail(field="path", message=str(exc.detail))], headers=dict(exc.headers) if exc.headers else None)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unexpected error on %s", request.url.path)
        return _error(500, "internal error", [ErrorDetail(field="service", message="unexpected error; see the server log")])

    @app.post("/search", response_model=SearchResponse, responses=SEARCH_RESPONSES)
    async def search(body: SearchBody, request: Request) -> SearchResponse:
        """Choose a plan, retrieve, rank the union, log the impression. Searches beyond what the process runs at
        once wait in a FIFO queue; one not admitted within LTRR_QUEUE_TIMEOUT_MS gets 503 with Retry-After."""
        pipeline: Pipeline = request.app.state.pipeline
        metrics.stage("queue", await admission.acquire())
        entered = False

        def run() -> SearchOutcome:
            nonlocal entered
            entered = True
            # The slot is held until the search's retrievers have all finished, also any that ran out of time.
            return pipeline.search(
                body.query, k=body.k, user_id=body.user_id, session_id=body.session_id, request_context=body.context,
                settled=admission.release_threadsafe,
            )

        try:
            outcome = await run_in_threadpool(run)
        except BaseException:
            if not entered:  # cancelled before the search began: nothing else will release its slot
                admission.release()
            raise
        return search_response(outcome)

    @app.post("/feedback", response_model=FeedbackResponse, responses=FEEDBACK_RESPONSES)
    def feedback(
        body: FeedbackBody, request: Request,
        x_feedback_key: Annotated[str | None, Header(description="The feedback key, when LTRR_FEEDBACK_KEY is set.")] = None,
    ) -> FeedbackResponse:
        """Record a click, favorite or play on a result of an earlier search."""
        pipeline: Pipeline = request.app.state.pipeline
        event_id = pipeline.feedback(body.request_id, body.entity_id, body.event, body.position)
        return FeedbackResponse(event_id=event_id)

    @app.post("/entities", response_model=EntitiesResponse, responses=WRITE_RESPONSES)
    def upsert_entities(
        body: EntitiesBody, request: Request, x_api_key: Annotated[str | None, Header(description="The API key, when LTRR_API_KEY is set.")] = None
    ) -> EntitiesResponse:
        """Add or replace entities; every strategy of the worker that took them can find them when this returns, the other workers within a second."""
        entities = [Entity.from_json(item.model_dump()) for item in body.entities]
        request.app.state.pipeline.upsert(entities)
        return EntitiesResponse(upserted=len(entities))

    @app.delete("/entities/{entity_id:path}", response_model=DeleteResponse, responses=WRITE_RESPONSES)
    def delete_entity(
        entity_id: str, request: Request, x_api_key: Annotated[str | None, Header(description="The API key, when LTRR_API_KEY is set.")] = None
    ) -> DeleteResponse:
        """Remove an entity from every strategy."""
        if not request.app.state.pipeline.delete([entity_id]):
            raise NotFound("id", f"unknown entity {entity_id[:64]!r}")
        return DeleteResponse(deleted=entity_id)

    @app.get("/healthz", responses={503: {"description": "This process cannot serve searches now (the body says why)."}})
    async def healthz(request: Request) -> JSONResponse:
        """``status`` is ``ok`` or ``degraded`` (a fallback is serving) with each dependency's state; 503 only
        when this process cannot serve searches. Answered outside admission control."""
        report = await run_in_threadpool(health, request.app.state.pipeline)
        state = admission.state()
        full = state.waiting >= limits.queue_max_waiting
        report["admission"] = {"limit": state.limit, "running": state.running, "waiting": state.waiting, "refused": state.refused}
        if full:
            report["status"] = "overloaded"
        return JSONResponse(report, status_code=503 if report["status"] in ("overloaded", "unavailable") else 200)

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics(request: Request) -> Response:
        """Prometheus text format; answered outside admission control."""
        state = admission.state()
        metrics.admission_running.set(state.running)
        metrics.admission_waiting.set(state.waiting)
        body = await run_in_threadpool(metrics.render, refresh_metrics)
        return Response(body, media_type=METRICS_CONTENT_TYPE)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> HTMLResponse:
        return HTMLResponse(resources.files("services.search").joinpath("static/index.html").read_text(encoding="utf-8"))

    return app
