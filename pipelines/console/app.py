"""The console's web application: server-rendered pages, no script, every asset served from here.

Safety of the pages themselves: every page needs a signed-in person (reads are made with their
store keys too); a POST needs the session's CSRF token and, when the browser sends one, an Origin
of this server; the Host header must name this server (no DNS rebinding); cookies are HttpOnly,
SameSite=Strict, and Secure under TLS; the Content-Security-Policy allows no script at all, so a
label such as ``<script>`` that slipped past escaping still would not run. A stored Evidently
report (HTML with scripts a trainer's tools wrote) is served sandboxed, in an origin of its own.

The routes live by area (``signin_routes``, ``evidence_routes``, ``review_routes``, sharing ``web``);
this module puts them together behind the host check, the security headers and the error pages.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response

from pipelines.console import i18n
from pipelines.console.accounts import Authenticator
from pipelines.console.evidence_routes import add_evidence_routes
from pipelines.console.review_routes import add_review_routes
from pipelines.console.sessions import Sessions, SignInLimiter
from pipelines.console.signin_routes import add_signin_routes
from pipelines.console.web import ConsoleOptions, Refused, SignInFirst, Web
from pipelines.context import Context
from registry.errors import NotFoundError, TailorError
from serving.ops import host_name, is_loopback

PAGE_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


def create_app(
    ctx: Context,
    authenticator: Authenticator,
    options: ConsoleOptions = ConsoleOptions(),
    *,
    sessions: Sessions | None = None,
    limiter: SignInLimiter | None = None,
) -> FastAPI:
    web = Web(ctx, sessions or Sessions(), options)
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(SignInFirst)
    async def _to_sign_in(request: Request, _err: SignInFirst) -> Response:
        if request.method != "GET":
            return web.page(request, "error.html", 403, message=i18n.word(web.view(request)["lang"], "csrf"))
        return RedirectResponse(f"/signin?next={quote(request.url.path)}", status_code=303)

    @app.exception_handler(Refused)
    async def _refused(request: Request, err: Refused) -> Response:
        return web.page(request, "error.html", err.status, message=i18n.word(web.view(request)["lang"], err.key))

    @app.exception_handler(TailorError)
    async def _tailor_error(request: Request, err: TailorError) -> Response:
        status = 404 if isinstance(err, NotFoundError) else 409
        return web.page(request, "error.html", status, message=str(err))

    @app.middleware("http")
    async def _guard(request: Request, call_next):
        host = host_name(request.headers.get("host", ""))
        if not (is_loopback(host) or host in options.allowed_hosts):
            return Response("421 this is not this server's host name\n", status_code=421, media_type="text/plain")
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", PAGE_POLICY)
        response.headers["X-Content-Type-Options"] = "nosniff"
        # not no-referrer: under it Chromium sends "Origin: null" with the console's own forms
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers.setdefault("Cache-Control", "no-store")
        if options.secure:
            response.headers["Strict-Transport-Security"] = "max-age=31536000"
        return response

    add_signin_routes(app, web, authenticator, limiter or SignInLimiter())
    add_evidence_routes(app, web)
    add_review_routes(app, web)
    return app
