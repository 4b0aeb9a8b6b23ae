"""The HTTP predictor: ``POST /predict``, ``GET /version``, ``GET /healthz``, ``GET /readyz``, ``GET /metrics``.

Every adapter the follower keeps loaded shares one base model. A request reads the follower's
current version once and answers entirely from it, so a swap never mixes two versions in one
answer. Bad input is always a 4xx with a message that says what to change; never a 500.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import threading
from contextlib import asynccontextmanager
from typing import Any, Callable

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from pipelines.encoder import bad_utf8_byte
from serving.follower import Follower
from serving.ops import Operations, ServingMetrics
from serving.schemas import (ErrorResponse, HealthResponse, Limits, Prediction, PredictRequest, PredictResponse,
                             ReadyResponse, VersionResponse)  # fmt: skip
from serving.traffic import TrafficRecorder

log = logging.getLogger(__name__)

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": why}
    for code, why in [(400, "malformed JSON"), (404, "unknown adapter"), (411, "no Content-Length"),
                      (413, "body too large"), (415, "not JSON"), (422, "invalid request")]  # fmt: skip
}
JSON_TYPES = {bool: "a boolean", int: "a number", float: "a number", type(None): "null", dict: "an object",
              list: "an array", str: "a string"}  # fmt: skip


class ApiError(Exception):
    """A request we refuse, with the status and the message the client sees."""

    def __init__(self, status: int, error: str, problems: list[str] | None = None) -> None:
        super().__init__(error)
        self.status, self.error, self.problems = status, error, problems or []


def _error(status: int, error: str, problems: list[str] | None = None) -> JSONResponse:
    return JSONResponse(ErrorResponse(error=error, problems=problems or []).model_dump(), status_code=status)


def _where(loc: tuple) -> str:
    out = ""
    for part in loc:
        if part == "body":
            continue
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


def _describe(err: dict[str, Any]) -> str:
    """One pydantic validation error in words a client can act on."""
    where, kind, given = _where(tuple(err["loc"])), err["type"], err.get("input")
    got = JSON_TYPES.get(type(given), type(given).__name__)
    if kind == "missing":
        return f"{where}: required" if where != "body" else 'the body is empty: send {"texts": ["..."]}'
    if kind == "extra_forbidden":
        return f"{where}: unknown field (accepted: texts, adapter)"
    if kind == "string_type":
        return f"{where}: must be a string, got {got}"
    if kind == "list_type":
        return f"{where}: must be an array of strings, got {got}"
    if kind in ("model_attributes_type", "dict_type"):
        return f'the body must be a JSON object like {{"texts": ["..."]}}, got {got}'
    return f"{where}: {err['msg']}"


class NumberTooLong(ValueError):
    """A JSON number with more digits than Python turns into an int (``sys.get_int_max_str_digits``)."""


def parse_body(body: bytes, **hooks: Any) -> Any:
    """``body`` as JSON read strictly as UTF-8; a leading UTF-8 BOM is taken as whitespace.

    ``json.loads`` of bytes would also guess UTF-16 and UTF-32, which the API does not accept.

    Raises:
        UnicodeDecodeError: the body is not UTF-8 (offsets count from the body's first byte).
        json.JSONDecodeError: the text is not JSON.
        NumberTooLong: a number has more digits than Python converts.
        RecursionError: arrays or objects nested too deeply.
    """
    text = body.decode("utf-8")
    if text.startswith("\ufeff"):
        text = " " + text[1:]  # a space, not nothing: JSON error positions still count the sender's characters
    try:
        return json.loads(text, **hooks)
    except json.JSONDecodeError:
        raise
    except ValueError as err:  # int() refusing a long number is the one other way json.loads of a str fails
        raise NumberTooLong(str(err)) from None


class Utf8JsonRequest(Request):
    """A request whose ``json()`` is ``parse_body``."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = parse_body(await self.body())
        return self._json


class Utf8JsonRoute(APIRoute):
    """A route whose JSON body FastAPI parses with ``parse_body`` (FastAPI's documented custom-request hook)."""

    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()

        async def utf8_handler(request: Request):
            return await handler(Utf8JsonRequest(request.scope, request.receive))

        return utf8_handler


def repeated_keys(body: bytes) -> list[str]:
    """Keys given more than once in one object of the JSON ``body``, in order of first repeat.

    JSON parsers keep the last of them without a word, so ``{"adapter": "a", "adapter": "b"}``
    would be answered by b while its sender may have meant a.
    """
    repeated: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: set[str] = set()
        for key, _ in items:
            if key in seen and key not in repeated:
                repeated.append(key)
            seen.add(key)
        return dict(items)

    try:
        parse_body(body, object_pairs_hook=pairs)
    except (ValueError, RecursionError):  # an empty or unparsable body: FastAPI's own checks say what is wrong
        return []
    return repeated


async def _each_key_once(request: Request) -> None:
    """Raises: ApiError: 422 naming the repeated keys."""
    repeated = repeated_keys(await request.body())
    if repeated:
        raise ApiError(422, f"the body gives {', '.join(map(repr, repeated))} more than once: give each key once",
                       [f"{key}: given more than once" for key in repeated])  # fmt: skip


def _unparsed_body(cause: BaseException | None) -> str | None:
    """What FastAPI's generic "error parsing the body" hides: the ways a JSON body fails besides bad syntax."""
    if isinstance(cause, UnicodeDecodeError):
        return f"the body is not UTF-8: {bad_utf8_byte(cause)}; send JSON encoded as UTF-8"
    if isinstance(cause, NumberTooLong):
        return (f"a number in the body has more than {sys.get_int_max_str_digits()} digits; "
                'send {"texts": ["..."]} with the texts as strings')  # fmt: skip
    if isinstance(cause, RecursionError):
        return 'the JSON is nested too deeply to parse: send {"texts": ["..."]}'
    return None


class PostGuard:
    """Refuse a POST that is not JSON, or larger than any valid request can be, before reading it;
    then read its body within ``body_seconds`` or answer 408 and close.

    Without a declared length the body would have to be read to learn its size, so a POST must
    declare it (every common HTTP client does for a JSON body).
    """

    def __init__(self, app, max_bytes: int, body_seconds: float) -> None:
        self.app, self.max_bytes, self.body_seconds = app, max_bytes, body_seconds

    def _refusal(self, headers: dict[bytes, bytes]) -> JSONResponse | None:
        kind = headers.get(b"content-type", b"").decode(errors="replace").split(";")[0].strip().lower()
        if kind != "application/json":
            return _error(415, f"send JSON with Content-Type: application/json (got '{kind or 'none'}')")
        declared = headers.get(b"content-length")
        if declared is None:
            return _error(411, "send a Content-Length header (chunked request bodies are not accepted)")
        if not declared.isdigit() or int(declared) > self.max_bytes:
            return _error(413, f"the body is {declared.decode(errors='replace')} bytes, the limit is "
                               f"{self.max_bytes}: send fewer or shorter texts")  # fmt: skip
        return None

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            refusal = self._refusal(dict(scope["headers"]))
            if refusal is not None:
                await refusal(scope, receive, send)
                return
            try:
                body = await asyncio.wait_for(_whole_body(receive), self.body_seconds)
            except asyncio.TimeoutError:
                late = _error(408, f"the body did not arrive within {self.body_seconds:g} s; send it at once")
                late.headers["Connection"] = "close"
                await late(scope, receive, send)
                return
            if body is None:
                return  # the client went away: there is no one to answer
            receive = _replay(body, receive)
        await self.app(scope, receive, send)


async def _whole_body(receive) -> bytes | None:
    """The request body, or None when the client disconnects first."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive):
    """A ``receive`` that hands the app the body already read, then waits on the connection as before."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replayed():
        return pending.pop() if pending else await receive()

    return replayed


def create_app(follower: Follower, limits: Limits = Limits(), *, allow_remote: bool = False,
               log_access: bool = False, recorder: TrafficRecorder | None = None) -> FastAPI:  # fmt: skip
    """The FastAPI app over a follower that has loaded its adapters (``Follower.load``).

    The app's lifespan starts the follower's polling thread and closes it on shutdown. Requests whose
    Host is not a loopback name are refused unless ``allow_remote``; ``log_access`` writes one JSON
    line per request to the ``tailor.access`` logger. With a ``recorder``, predictions are offered to
    it under the request's id (its ``X-Request-ID`` header, which feedback names them by).
    """
    metrics = ServingMetrics(follower)
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
        return _error(err.status, err.error, err.problems)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, err: RequestValidationError) -> JSONResponse:
        errors = list(err.errors())
        broken = next((e for e in errors if e["type"] == "json_invalid"), None)
        if broken is not None:
            reason, at = broken.get("ctx", {}).get("error", "cannot parse"), broken["loc"][-1]
            return _error(400, f"malformed JSON: {reason}" + (f" at character {at}" if isinstance(at, int) else ""))
        problems = [_describe(e) for e in errors]
        return _error(422, "; ".join(problems), problems)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, err: StarletteHTTPException) -> JSONResponse:
        return _error(err.status_code, _unparsed_body(err.__cause__) or str(err.detail))

    def _pick(adapter: str | None):
        if adapter is None:
            if len(follower.names) > 1:
                raise ApiError(422, f"adapter: required when several adapters are served ({', '.join(follower.names)})")
            adapter = follower.names[0]
        try:
            return follower.current(adapter)
        except KeyError:
            raise ApiError(404, f"adapter '{adapter}' is not served here; served: {', '.join(follower.names)}") from None

    @app.post("/predict", response_model=PredictResponse, dependencies=[Depends(_each_key_once)])
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
            recorder.offer(served.name, served.version, http.state.request_id, request.texts,
                           [labels[i] for i in probs.argmax(axis=1)], probs.max(axis=1))  # fmt: skip
        return PredictResponse(
            adapter=served.name,
            version=served.version,
            predictions=[
                Prediction(label=labels[int(row.argmax())], probabilities=dict(zip(labels, map(float, row))))
                for row in probs
            ],
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
        return HealthResponse(status="degraded" if degraded else "ok", alias=follower.alias,
                              poll_seconds=follower.poll_seconds, adapters=adapters)  # fmt: skip

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
