"""What every console route needs: the viewer's language and zone, rendered pages, sessions, and
POST forms whose size, origin and CSRF token are checked before a route sees them."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from pipelines.console import i18n
from pipelines.console.render import environment
from pipelines.console.sessions import Session, Sessions
from pipelines.context import Context
from registry.people import Credentials
from registry.registry import Registry

MAX_FORM_BYTES = 16 * 1024


@dataclass(frozen=True)
class ConsoleOptions:
    secure: bool = False  # served over TLS: cookies get Secure and the __Host- prefix
    allowed_hosts: frozenset[str] = frozenset()  # Host names answered besides loopback ones


class Refused(Exception):
    """A request the console itself refuses (CSRF, a form too large), with its status and words."""

    def __init__(self, status: int, key: str) -> None:
        super().__init__(key)
        self.status, self.key = status, key


class SignInFirst(Exception):
    """A page that needs a signed-in person was asked for without a session."""


def local_path(target: str | None) -> str:
    """``target`` when it is a path on this server, else the front page (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


class Web:
    """The helpers the routes share, bound to one console's settings, sessions and options."""

    def __init__(self, ctx: Context, sessions: Sessions, options: ConsoleOptions) -> None:
        self.settings, self.sessions, self.options = ctx.settings, sessions, options
        self.session_cookie = "__Host-tailor_session" if options.secure else "tailor_session"
        self.signin_cookie = "__Host-tailor_signin" if options.secure else "tailor_signin"
        self.env = environment()

    def fresh(self) -> Context:
        # Per request, as each CLI command does: an edited policy (and the gates re-judged under it) counts
        # at once, not only after the console restarts.
        return Context(self.settings)

    def registry_as(self, person: Credentials) -> Registry:
        return self.fresh().registry(acting=self.settings.store(person=person))

    def set_cookie(self, response: Response, key: str, value: str, *, max_age: int | None = None) -> None:
        response.set_cookie(
            key, value, max_age=max_age, path="/", httponly=True, samesite="strict", secure=self.options.secure
        )

    def view(self, request: Request) -> dict[str, Any]:
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

    def page(self, request: Request, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        html = self.env.get_template(template).render(**self.view(request), **values)
        return HTMLResponse(html, status_code=status)

    def session_of(self, request: Request) -> Session | None:
        return self.sessions.get(request.cookies.get(self.session_cookie))

    async def form_of(self, request: Request) -> dict[str, str]:
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
        session = self.session_of(request)
        expected = session.csrf if session else request.cookies.get(self.signin_cookie, "")
        if not expected or not hmac.compare_digest(fields.get("csrf", "").encode(), expected.encode()):
            raise Refused(403, "csrf")
        return fields

    def person_of(self, request: Request) -> Credentials:
        session = self.session_of(request)
        if session is None:
            raise SignInFirst()
        request.state.session = session
        return session.person

    def common(self, request: Request, person: Credentials) -> dict[str, Any]:
        """What every signed-in page shows: who, the form token, and once the last action's notice."""
        session: Session = request.state.session
        notice, session.notice = session.notice, None
        return {"person": person, "csrf": session.csrf, "notice": notice}
