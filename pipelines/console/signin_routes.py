"""The console's door: sign-in and sign-out, the language and zone switches, and the stylesheet."""

from __future__ import annotations

import logging
import secrets
from pathlib import Path

from fastapi import Depends, FastAPI, Request
from fastapi.responses import RedirectResponse, Response

from pipelines.console import i18n
from pipelines.console.accounts import Authenticator, SignInRefused
from pipelines.console.sessions import SignInLimiter
from pipelines.console.web import Web, local_path
from registry.errors import AccessDeniedError, ConfigError
from registry.people import Credentials
from registry.registry import Registry

HERE = Path(__file__).parent
log = logging.getLogger("tailor.console")


def key_problem(registry: Registry, person: Credentials) -> str | None:
    """Why ``person``'s sealed key can no longer sign (the words' key), if it cannot: they were
    disabled, or their key was rotated since `tailor user passwd` sealed it."""
    from registry.signing import key_id, public_key_of

    try:
        ring = registry.keyring()
    except AccessDeniedError:
        return "store_refused"  # their store identity is gone: disabled, or keys rotated
    if ring is None:
        return None  # a store without a keyring signs nothing
    if person.name in ring.disabled:
        return "disabled"
    if ring.people.get(person.name) != key_id(public_key_of(person.signing_key)):
        return "key_rotated"
    return None


def add_signin_routes(app: FastAPI, web: Web, authenticator: Authenticator, limiter: SignInLimiter) -> None:
    @app.get("/signin")
    def signin_page(request: Request, next: str = "/") -> Response:
        token = secrets.token_urlsafe(32)
        response = web.page(request, "signin.html", csrf=token, next=local_path(next), error=None)
        web.set_cookie(response, web.signin_cookie, token, max_age=3600)
        return response

    @app.post("/signin")
    def sign_in(request: Request, form: dict[str, str] = Depends(web.form_of)) -> Response:
        name, client = form.get("name", "").strip(), request.client.host if request.client else "?"
        lang = web.view(request)["lang"]

        def refused(status: int, key: str, **values: object) -> Response:
            return web.page(
                request,
                "signin.html",
                status,
                csrf=form["csrf"],
                next=local_path(form.get("next")),
                error=i18n.word(lang, key, **values),
            )

        wait = limiter.wait_seconds(client, name)
        if wait:
            return refused(429, "too_many", seconds=wait)
        try:
            person = authenticator.sign_in(name, form.get("passphrase", ""))
        except ConfigError as err:  # a damaged account file: for the admin's log, not for whoever is at the door
            log.warning("sign-in of %r refused: %s", name, err)
            return refused(500, "account_damaged")
        except SignInRefused:
            limiter.failed(client, name)
            return refused(401, "sign_in_failed")
        if (stale := key_problem(web.registry_as(person), person)) is not None:
            return refused(403, stale)
        session = web.sessions.start(person)
        response = RedirectResponse(local_path(form.get("next")), status_code=303)
        web.set_cookie(response, web.session_cookie, session.token)
        response.delete_cookie(web.signin_cookie, path="/")
        return response

    @app.post("/signout")
    def sign_out(request: Request, _form: dict[str, str] = Depends(web.form_of)) -> Response:
        web.sessions.end(request.cookies.get(web.session_cookie))
        response = RedirectResponse("/signin", status_code=303)
        response.delete_cookie(web.session_cookie, path="/")
        return response

    @app.get("/prefs")
    def prefs(lang: str = "", tz: str = "", next: str = "/") -> Response:
        """The language and time zone switches: cookies of the browser only, nothing on the server changes."""
        response = RedirectResponse(local_path(next), status_code=303)
        secure = web.options.secure
        if lang in i18n.LANGUAGES:
            response.set_cookie(
                "tailor_lang", lang, max_age=365 * 86400, path="/", samesite="lax", httponly=True, secure=secure
            )
        if tz and i18n.zone(tz).key == tz:
            response.set_cookie(
                "tailor_tz", tz, max_age=365 * 86400, path="/", samesite="lax", httponly=True, secure=secure
            )
        return response

    @app.get("/static/console.css")
    def stylesheet() -> Response:
        return Response(
            (HERE / "static" / "console.css").read_bytes(),
            media_type="text/css",
            headers={"Cache-Control": "max-age=3600"},
        )
