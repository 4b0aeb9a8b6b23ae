"""The HTTP predictor: ``POST /predict``, ``POST /explain`` (when enabled), ``GET /version``, ``GET /healthz``,
``GET /readyz``, ``GET /metrics``.

Every adapter the follower keeps loaded shares one base model. A request reads the follower's
current version once and answers entirely from it, so a swap never mixes two versions in one
answer. Bad input is always a 4xx with a message that says what to change; never a 500.
"""

from __future__ import annotations

import logging
import math
import threading
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from serving.follower import Follower
from serving.http_body import ApiError, PostGuard, Utf8JsonRoute, each_key_once, error_response, unparsed_body
from serving.ops import Operations, ServingMetrics
from serving.rate_limit import RateLimit
from serving.schemas import (
    ErrorResponse,
    Explaining,
    ExplainRequest,
    ExplainResponse,
    HealthResponse,
    Limits,
    Prediction,
    PredictRequest,
    PredictResponse,
    ReadyResponse,
    VersionResponse,
)
from serving.traffic import TrafficRecorder

log = logging.getLogger(__name__)

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": why}
    for code, why in [
        (400, "malformed JSON"),
        (404, "unknown adapter"),
        (411, "no Content-Length"),
        (413, "body too large"),
        (415, "not JSON"),
        (422, "invalid request"),
    ]
}
# Per route: the fields a body may have, and an example body for the messages that show one.
BODY_SHAPES = {"/predict": ("texts, adapter", '{"texts": ["..."]}'), "/explain": ("text, adapter", '{"text": "..."}')}
JSON_TYPES = {
    bool: "a boolean",
    int: "a number",
    float: "a number",
    type(None): "null",
    dict: "an object",
    list: "an array",
    str: "a string",
}


def _where(loc: tuple) -> str:
    out = ""
    for part in loc:
        if part == "body":
            continue
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


def _body_shape(path: str) -> tuple[str, str]:
    """The accepted fields and an example body of the route at ``path`` (/predict's for any other)."""
    return BODY_SHAPES.get(path, BODY_SHAPES["/predict"])


def _describe(err: dict[str, Any], path: str = "/predict") -> str:
    """One pydantic validation error in words a client can act on (``path``: the route the body was sent to)."""
    where, kind, given = _where(tuple(err["loc"])), err["type"], err.get("input")
    got = JSON_TYPES.get(type(given), type(given).__name__)
    accepted, example = _body_shape(path)
    if kind == "missing":
        return f"{where}: required" if where != "body" else f"the body is empty: send {example}"
    if kind == "extra_forbidden":
        return f"{where}: unknown field (accepted: {accepted})"
    if kind == "string_type":
        return f"{where}: must be a string, got {got}"
    if kind == "list_type":
        return f"{where}: must be an array of strings, got {got}"
    if kind in ("model_attributes_type", "dict_type"):
        return f"the body must be a JSON object like {example}, got {got}"
    return f"{where}: {err['msg']}"


def create_app(
    follower: Follower,
    limits: Limits = Limits(),
    *,
    allow_remote: bool = False,
    log_access: bool = False,
    explaining: Explaining | None = None,
    recorder: TrafficRecorder | None = None,
) -> FastAPI:
    """The FastAPI app over a follower that has loaded its adapters (``Follower.load``).

    The app's lifespan starts the follower's polling thread and closes it on shutdown. Requests whose
    Host is not a loopback name are refused unless ``allow_remote``; ``log_access`` writes one JSON
    line per request to the ``tailor.access`` logger. ``POST /explain`` answers only with ``explaining``. With a ``recorder``, predictions are offered to
    it under the request's id (its ``X-Request-ID`` header, which feedback names them by).
    """
    metrics = ServingMetrics(follower)
    explain_rate = RateLimit(explaining.per_minute) if explaining is not None else None
    stopping = threading.Event()  # set first thing on shutdown: /readyz turns 503 while requests drain

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        follower.start()
        if recorder is not None:
            recorder.start()
        try:
            yield
        finally:
            stopping.set()
            follower.close()
            if recorder is not None:
                recorder.close()
            log.info("stopped following %s", ", ".join(follower.names))

    # No /docs or /redoc: FastAPI's pages load Swagger UI from a CDN, which this network cannot reach;
    # /openapi.json describes the API for any local viewer.
    app = FastAPI(title="Tailor predictor", lifespan=lifespan, responses=ERRORS, docs_url=None, redoc_url=None)
    app.router.route_class = Utf8JsonRoute
    app.add_middleware(PostGuard, max_bytes=limits.max_body_bytes, body_seconds=limits.body_seconds)
    # Added last, so it runs first: a refused Host or an oversized body is counted and logged too.
    app.add_middleware(Operations, metrics=metrics, allow_remote=allow_remote, log_access=log_access)

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, err: ApiError) -> JSONResponse:
        response = error_response(err.status, err.error, err.problems)
        if err.retry_after is not None:
            response.headers["Retry-After"] = str(err.retry_after)
        return response

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, err: RequestValidationError) -> JSONResponse:
        errors = list(err.errors())
        broken = next((e for e in errors if e["type"] == "json_invalid"), None)
        if broken is not None:
            reason, at = broken.get("ctx", {}).get("error", "cannot parse"), broken["loc"][-1]
            where = f" at character {at}" if isinstance(at, int) else ""
            return error_response(400, f"malformed JSON: {reason}{where}")
        problems = [_describe(e, request.url.path) for e in errors]
        return error_response(422, "; ".join(problems), problems)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, err: StarletteHTTPException) -> JSONResponse:
        hint = unparsed_body(err.__cause__, _body_shape(request.url.path)[1])
        return error_response(err.status_code, hint or str(err.detail))

    def _pick(adapter: str | None):
        if adapter is None:
            if len(follower.names) > 1:
                raise ApiError(422, f"adapter: required when several adapters are served ({', '.join(follower.names)})")
            adapter = follower.names[0]
        try:
            return follower.current(adapter)
        except KeyError:
            raise ApiError(
                404, f"adapter '{adapter}' is not served here; served: {', '.join(follower.names)}"
            ) from None

    @app.post("/predict", response_model=PredictResponse, dependencies=[Depends(each_key_once)])
    def predict(request: PredictRequest, http: Request) -> PredictResponse:
        """Labels and class probabilities for each text, all from one adapter version."""
        problems = limits.problems(request.texts)
        if problems:
            raise ApiError(422, "; ".join(problems), problems)
        served = _pick(request.adapter)  # read once: the whole answer comes from this version
        http.state.adapter, http.state.version = served.name, served.version  # for metrics and the access log
        labels = served.classifier.labels
        probs = served.classifier.predict_proba(request.texts)
        if recorder is not None:
            recorder.offer(
                served.name,
                served.version,
                http.state.request_id,
                request.texts,
                [labels[i] for i in probs.argmax(axis=1)],
                probs.max(axis=1),
            )
        return PredictResponse(
            adapter=served.name,
            version=served.version,
            predictions=[
                Prediction(label=labels[int(row.argmax())], probabilities=dict(zip(labels, map(float, row))))
                for row in probs
            ],
        )

    @app.post(
        "/explain",
        response_model=ExplainResponse,
        dependencies=[Depends(each_key_once)],
        responses={
            403: {"model": ErrorResponse, "description": "explanations are off on this server"},
            429: {"model": ErrorResponse, "description": "too many explanations this minute"},
        },
    )
    def explain(request: ExplainRequest, http: Request) -> ExplainResponse:
        """Which words made the served version give the text its label (costs ``steps`` forward and backward
        passes: off unless the server was started with --explain, and rate-limited)."""
        if explaining is None or explain_rate is None:
            raise ApiError(403, "explanations are off on this server: start tailor serve with --explain")
        problem = limits.text_problem(request.text, "text")
        if problem:
            raise ApiError(422, problem, [problem])
        served = _pick(request.adapter)  # read once: the explanation is of the version that predicted
        http.state.adapter, http.state.version = served.name, served.version
        wait = explain_rate.take()
        if wait:
            raise ApiError(
                429,
                f"at most {explaining.per_minute} explanations a minute are answered: try again in {math.ceil(wait)} s",
                retry_after=math.ceil(wait),
            )
        from serving.explain import explain as run  # Captum and autograd only for servers that explain

        return ExplainResponse(
            adapter=served.name,
            version=served.version,
            explanation=run(served.classifier, request.text, steps=explaining.steps),
        )

    @app.get("/version", response_model=VersionResponse)
    def version() -> VersionResponse:
        """Which version of each adapter answers, its content hash, the alias followed, and since when."""
        return VersionResponse(adapters=[served.describe() for served in follower.served()])

    @app.get("/healthz", response_model=HealthResponse)
    def healthz() -> HealthResponse:
        """``ok`` when every adapter serves what its alias names; ``degraded`` (still answering) otherwise."""
        adapters = follower.health()
        degraded = any(a.failure is not None or a.alias_target != a.serving for a in adapters)
        return HealthResponse(
            status="degraded" if degraded else "ok",
            alias=follower.alias,
            poll_seconds=follower.poll_seconds,
            adapters=adapters,
        )

    @app.get("/readyz", response_model=ReadyResponse, responses={503: {"model": ReadyResponse}})
    def readyz() -> JSONResponse:
        """200 once every adapter has a version answering (a load balancer may send traffic); 503 before
        that and from the moment the server starts shutting down."""
        serving = {served.name for served in follower.served()}
        missing = [name for name in follower.names if name not in serving]
        body = ReadyResponse(ready=not missing and not stopping.is_set(), missing=missing, stopping=stopping.is_set())
        return JSONResponse(body.model_dump(), status_code=200 if body.ready else 503)

    @app.get("/metrics", include_in_schema=False)
    def prometheus() -> Response:
        """Prometheus text format: requests, errors and latency per adapter and version, swaps, failed loads."""
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
