"""The console's web application: server-rendered pages, no script, every asset served from here.

Safety of the pages themselves: every page needs a signed-in person (reads are made with their
store keys too); a POST needs the session's CSRF token and, when the browser sends one, an Origin
of this server; the Host header must name this server (no DNS rebinding); cookies are HttpOnly,
SameSite=Strict, and Secure under TLS; the Content-Security-Policy allows no script at all, so a
label such as ``<script>`` that slipped past escaping still would not run. A stored Evidently
report (HTML with scripts a trainer's tools wrote) is served sandboxed, in an origin of its own.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from pipelines.console import actions, i18n
from pipelines.console.accounts import Authenticator, SignInRefused
from pipelines.console.evidence import DRIFT_HTML, read_evidence
from pipelines.console.overview import adapters, waiting
from pipelines.console.render import environment, evidence_charts
from pipelines.console.sessions import Session, Sessions, SignInLimiter
from pipelines.context import Context
from registry.errors import AccessDeniedError, ConfigError, IntegrityError, NotFoundError, TailorError
from registry.people import Credentials
from registry.registry import Registry
from serving.ops import host_name, is_loopback

HERE = Path(__file__).parent
log = logging.getLogger("tailor.console")
MAX_FORM_BYTES = 16 * 1024
PAGE_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
# The stored Evidently report runs its own scripts, in an opaque origin: no cookie, no form, no fetch home.
REPORT_POLICY = (
    "sandbox allow-scripts; default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "img-src data:; font-src data:"
)


@dataclass(frozen=True)
class ConsoleOptions:
    secure: bool = False  # served over TLS: cookies get Secure and the __Host- prefix
    allowed_hosts: frozenset[str] = frozenset()  # Host names answered besides loopback ones


class Refused(Exception):
    """A request the console itself refuses (CSRF, a form too large), with its status and words."""

    def __init__(self, status: int, key: str) -> None:
        super().__init__(key)
        self.status, self.key = status, key


def _local_path(target: str | None) -> str:
    """``target`` when it is a path on this server, else the front page (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


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


def create_app(
    ctx: Context,
    authenticator: Authenticator,
    options: ConsoleOptions = ConsoleOptions(),
    *,
    sessions: Sessions | None = None,
    limiter: SignInLimiter | None = None,
) -> FastAPI:
    sessions = sessions or Sessions()
    limiter = limiter or SignInLimiter()
    settings = ctx.settings

    def fresh() -> Context:
        # Per request, as each CLI command does: an edited policy (and the gates re-judged under it) counts
        # at once, not only after the console restarts.
        return Context(settings)

    def registry_as(person: Credentials) -> Registry:
        return fresh().registry(acting=settings.store(person=person))

    session_cookie = "__Host-tailor_session" if options.secure else "tailor_session"
    signin_cookie = "__Host-tailor_signin" if options.secure else "tailor_signin"
    env = environment()
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    def set_cookie(response: Response, key: str, value: str, *, max_age: int | None = None) -> None:
        response.set_cookie(
            key, value, max_age=max_age, path="/", httponly=True, samesite="strict", secure=options.secure
        )

    def view(request: Request) -> dict[str, Any]:
        lang = i18n.negotiate(request.headers.get("accept-language"), request.cookies.get("tailor_lang"))
        where = i18n.zone(request.cookies.get("tailor_tz"))
        return {
            "lang": lang,
            "zone": where.key,
            "zones": i18n.ZONE_CHOICES,
            "t": lambda key, **v: i18n.word(lang, key, **v),
            "when": lambda s: i18n.local_time(s, where),
            "here": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
        }

    def page(request: Request, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        html = env.get_template(template).render(**view(request), **values)
        return HTMLResponse(html, status_code=status)

    def session_of(request: Request) -> Session | None:
        return sessions.get(request.cookies.get(session_cookie))

    async def form_of(request: Request) -> dict[str, str]:
        """The url-encoded form of a POST (one value per field), its CSRF token and Origin checked."""
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            raise Refused(413, "refused")
        origin = request.headers.get("origin")
        if origin is not None and urlsplit(origin).netloc.lower() != request.headers.get("host", "").lower():
            raise Refused(403, "csrf")
        if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
            raise Refused(403, "csrf")
        try:
            fields = {k: v[0] for k, v in parse_qs(body.decode("utf-8"), keep_blank_values=True).items()}
        except UnicodeDecodeError:
            raise Refused(400, "refused") from None
        session = session_of(request)
        expected = session.csrf if session else request.cookies.get(signin_cookie, "")
        if not expected or not hmac.compare_digest(fields.get("csrf", "").encode(), expected.encode()):
            raise Refused(403, "csrf")
        return fields

    def person_of(request: Request) -> Credentials:
        session = session_of(request)
        if session is None:
            raise _SignInFirst()
        request.state.session = session
        return session.person

    class _SignInFirst(Exception):
        pass

    @app.exception_handler(_SignInFirst)
    async def _to_sign_in(request: Request, _err: _SignInFirst) -> Response:
        if request.method != "GET":
            return page(request, "error.html", 403, message=i18n.word(view(request)["lang"], "csrf"))
        return RedirectResponse(f"/signin?next={quote(request.url.path)}", status_code=303)

    @app.exception_handler(Refused)
    async def _refused(request: Request, err: Refused) -> Response:
        return page(request, "error.html", err.status, message=i18n.word(view(request)["lang"], err.key))

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

    # ---- sign-in -----------------------------------------------------------------------------

    @app.get("/signin")
    def signin_page(request: Request, next: str = "/") -> Response:
        token = secrets.token_urlsafe(32)
        response = page(request, "signin.html", csrf=token, next=_local_path(next), error=None)
        set_cookie(response, signin_cookie, token, max_age=3600)
        return response

    @app.post("/signin")
    def sign_in(request: Request, form: dict[str, str] = Depends(form_of)) -> Response:
        name, client = form.get("name", "").strip(), request.client.host if request.client else "?"
        lang = view(request)["lang"]

        def refused(status: int, key: str, **values: object) -> Response:
            return page(
                request,
                "signin.html",
                status,
                csrf=form["csrf"],
                next=_local_path(form.get("next")),
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
        if (stale := key_problem(registry_as(person), person)) is not None:
            return refused(403, stale)
        session = sessions.start(person)
        response = RedirectResponse(_local_path(form.get("next")), status_code=303)
        set_cookie(response, session_cookie, session.token)
        response.delete_cookie(signin_cookie, path="/")
        return response

    @app.post("/signout")
    def sign_out(request: Request, _form: dict[str, str] = Depends(form_of)) -> Response:
        sessions.end(request.cookies.get(session_cookie))
        response = RedirectResponse("/signin", status_code=303)
        response.delete_cookie(session_cookie, path="/")
        return response

    @app.get("/prefs")
    def prefs(lang: str = "", tz: str = "", next: str = "/") -> Response:
        """The language and time zone switches: cookies of the browser only, nothing on the server changes."""
        response = RedirectResponse(_local_path(next), status_code=303)
        if lang in i18n.LANGUAGES:
            response.set_cookie(
                "tailor_lang", lang, max_age=365 * 86400, path="/", samesite="lax", httponly=True, secure=options.secure
            )
        if tz and i18n.zone(tz).key == tz:
            response.set_cookie(
                "tailor_tz", tz, max_age=365 * 86400, path="/", samesite="lax", httponly=True, secure=options.secure
            )
        return response

    @app.get("/static/console.css")
    def stylesheet() -> Response:
        return Response(
            (HERE / "static" / "console.css").read_bytes(),
            media_type="text/css",
            headers={"Cache-Control": "max-age=3600"},
        )

    # ---- pages -------------------------------------------------------------------------------

    def common(request: Request, person: Credentials) -> dict[str, Any]:
        session: Session = request.state.session
        notice, session.notice = session.notice, None
        return {"person": person, "csrf": session.csrf, "notice": notice}

    @app.get("/")
    def adapters_page(request: Request, person: Credentials = Depends(person_of)) -> Response:
        rows = adapters(registry_as(person))
        return page(request, "adapters.html", rows=rows, **common(request, person))

    @app.get("/queue")
    def queue_page(request: Request, person: Credentials = Depends(person_of)) -> Response:
        return page(request, "queue.html", rows=waiting(registry_as(person)), **common(request, person))

    @app.get("/adapters/{name}")
    def adapter_page(
        request: Request, name: str, at: str = "", verify: bool = False, person: Credentials = Depends(person_of)
    ) -> Response:
        return adapter_view(request, person, name, at, verify=verify)

    def adapter_view(
        request: Request,
        person: Credentials,
        name: str,
        at: str = "",
        refusal: str | None = None,
        status: int = 200,
        verify: bool = False,
    ) -> Response:
        """The adapter page; an action's ``refusal`` is shown on it (never taken from the URL: a link
        could otherwise put words of its own in the refusal box)."""
        registry = registry_as(person)
        try:
            listing = registry.listing(name)
            state = registry.state(name)
        except NotFoundError as err:
            return page(request, "error.html", 404, message=str(err), **common(request, person))
        events = registry.events(name)
        verified, problem = None, None
        if verify:  # `tailor audit verify`: every stored file of every version is read, so only when asked
            try:
                verified = registry.verify(name)
            except TailorError as err:
                problem = str(err)
        at_answer = None
        if at:
            try:
                at_answer = (at, *registry.alias_at(name, "production", _utc(at, request)))
            except TailorError as err:
                at_answer = (at, None, None, str(err))
        return page(
            request,
            "adapter.html",
            status,
            name=name,
            listing=listing,
            state=state,
            events=list(reversed(events)),
            verified=verified,
            problem=problem,
            at=at,
            at_answer=at_answer,
            refusal=refusal,
            translated=i18n.refusal(view(request)["lang"], refusal or ""),
            **common(request, person),
        )

    def _utc(local: str, request: Request) -> str:
        """A time typed in the viewer's zone (``2026-12-06T18:30``) as UTC; one with a zone is taken as given."""
        import datetime as dt

        try:
            moment = dt.datetime.fromisoformat(local.replace("Z", "+00:00"))
        except ValueError:
            return local  # the registry names what is wrong with it
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=i18n.zone(request.cookies.get("tailor_tz")))
        return moment.astimezone(dt.timezone.utc).isoformat()

    @app.get("/adapters/{name}/{version}")
    def version_page(request: Request, name: str, version: str, person: Credentials = Depends(person_of)) -> Response:
        return version_view(request, person, name, version)

    def version_view(
        request: Request, person: Credentials, name: str, version: str, refusal: str | None = None, status: int = 200
    ) -> Response:
        """The version page, with an action's ``refusal`` (see ``adapter_view``)."""
        registry = registry_as(person)
        try:
            evidence = read_evidence(registry, name, version)
        except (NotFoundError, IntegrityError) as err:
            return page(
                request,
                "error.html",
                404 if isinstance(err, NotFoundError) else 409,
                message=str(err),
                **common(request, person),
            )
        lang = view(request)["lang"]
        return page(
            request,
            "version.html",
            status,
            e=evidence,
            m=evidence.inputs.manifest,
            svg=evidence_charts(evidence, lang),
            drift_link=True,
            refusal=refusal,
            translated=i18n.refusal(lang, refusal or ""),
            **common(request, person),
        )

    @app.get("/adapters/{name}/{version}/drift")
    def drift_report(name: str, version: str, person: Credentials = Depends(person_of)) -> Response:
        registry = registry_as(person)
        manifest = registry.manifest(name, version)
        if DRIFT_HTML not in manifest.files:
            raise NotFoundError(f"{name} {version} stores no drift report")
        html = b"".join(data for _, data in registry.verified_files(manifest, only={DRIFT_HTML}))
        return Response(html, media_type="text/html", headers={"Content-Security-Policy": REPORT_POLICY})

    # ---- actions -----------------------------------------------------------------------------

    def after(request: Request, target: str, notice: str, missed: list[str] = ()) -> Response:
        """Back to ``target``, which shows once what the action did (and which webhooks it did not reach)."""
        if missed:
            notice += f"; {i18n.word(view(request)['lang'], 'webhook_missed')}: {', '.join(missed)}"
        request.state.session.notice = notice
        return RedirectResponse(target, status_code=303)

    @app.post("/adapters/{name}/{version}/promote")
    def promote(
        request: Request,
        name: str,
        version: str,
        form: dict[str, str] = Depends(form_of),
        person: Credentials = Depends(person_of),
    ) -> Response:
        to = form.get("to", "production")
        try:
            event, missed = actions.promote(fresh(), person, name, version, to, reason=form.get("reason", ""))
        except TailorError as err:
            return version_view(request, person, name, version, refusal=str(err), status=409)
        return after(
            request,
            f"/adapters/{quote(name)}/{quote(version)}",
            f"{name} {version} → {to} ({event.alias_before or '-'} → {event.alias_after}), #{event.key_name}",
            missed,
        )

    @app.post("/adapters/{name}/{version}/archive")
    def archive(
        request: Request,
        name: str,
        version: str,
        form: dict[str, str] = Depends(form_of),
        person: Credentials = Depends(person_of),
    ) -> Response:
        try:
            event = actions.archive(fresh(), person, name, version, reason=form.get("reason", ""))
        except TailorError as err:
            return version_view(request, person, name, version, refusal=str(err), status=409)
        return after(
            request, f"/adapters/{quote(name)}/{quote(version)}", f"{name} {version}: archive, #{event.key_name}"
        )

    @app.post("/adapters/{name}/rollback")
    def rollback(
        request: Request, name: str, form: dict[str, str] = Depends(form_of), person: Credentials = Depends(person_of)
    ) -> Response:
        try:
            event, missed = actions.rollback(
                fresh(),
                person,
                name,
                alias="production",
                reason=form.get("reason", ""),
                expect=form.get("expect") or None,
            )
        except TailorError as err:
            return adapter_view(request, person, name, refusal=str(err), status=409)
        return after(
            request,
            f"/adapters/{quote(name)}",
            f"{name} production {event.alias_before} → {event.alias_after}, #{event.key_name}",
            missed,
        )

    @app.exception_handler(TailorError)
    async def _tailor_error(request: Request, err: TailorError) -> Response:
        status = 404 if isinstance(err, NotFoundError) else 409
        return page(request, "error.html", status, message=str(err))

    return app
