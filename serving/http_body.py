"""The body of a POST, guarded and parsed strictly: declared JSON of a bounded size that arrives in
time (``PostGuard``), read as UTF-8 only (``parse_body``, ``Utf8JsonRoute``), each key once
(``repeated_keys``), and every refusal a JSON error a client can act on.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any, Callable

from fastapi import Request
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from registry.text import bad_utf8_byte
from serving.schemas import ErrorResponse


class ApiError(Exception):
    """A request we refuse, with the status and the message the client sees."""

    def __init__(
        self, status: int, error: str, problems: list[str] | None = None, *, retry_after: int | None = None
    ) -> None:
        super().__init__(error)
        self.status, self.error, self.problems, self.retry_after = status, error, problems or [], retry_after


def error_response(status: int, error: str, problems: list[str] | None = None) -> JSONResponse:
    return JSONResponse(ErrorResponse(error=error, problems=problems or []).model_dump(), status_code=status)


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


async def each_key_once(request: Request) -> None:
    """Raises: ApiError: 422 naming the repeated keys."""
    repeated = repeated_keys(await request.body())
    if repeated:
        raise ApiError(
            422,
            f"the body gives {', '.join(map(repr, repeated))} more than once: give each key once",
            [f"{key}: given more than once" for key in repeated],
        )


def unparsed_body(cause: BaseException | None, example: str) -> str | None:
    """What FastAPI's generic "error parsing the body" hides: the ways a JSON body fails besides bad syntax.

    ``example`` is a body the route the request was sent to accepts, shown as the fix.
    """
    if isinstance(cause, UnicodeDecodeError):
        return f"the body is not UTF-8: {bad_utf8_byte(cause)}; send JSON encoded as UTF-8"
    if isinstance(cause, NumberTooLong):
        return (
            f"a number in the body has more than {sys.get_int_max_str_digits()} digits; "
            f"send {example} with the text as JSON strings"
        )
    if isinstance(cause, RecursionError):
        return f"the JSON is nested too deeply to parse: send {example}"
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
            return error_response(415, f"send JSON with Content-Type: application/json (got '{kind or 'none'}')")
        declared = headers.get(b"content-length")
        if declared is None:
            return error_response(411, "send a Content-Length header (chunked request bodies are not accepted)")
        if not declared.isdigit() or int(declared) > self.max_bytes:
            return error_response(
                413,
                f"the body is {declared.decode(errors='replace')} bytes, the limit is "
                f"{self.max_bytes}: send fewer or shorter texts",
            )
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
                late = error_response(408, f"the body did not arrive within {self.body_seconds:g} s; send it at once")
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
