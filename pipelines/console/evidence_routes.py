"""The console's reading pages: adapters, the approval queue, an adapter's history, a version's
evidence and its stored drift report."""

from __future__ import annotations

import datetime as dt

from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response

from pipelines.console import i18n
from pipelines.console.evidence import DRIFT_HTML, read_evidence
from pipelines.console.overview import adapters, waiting
from pipelines.console.render import evidence_charts
from pipelines.console.web import Web
from registry.errors import IntegrityError, NotFoundError, TailorError
from registry.people import Credentials

# The stored Evidently report runs its own scripts, in an opaque origin: no cookie, no form, no fetch home.
REPORT_POLICY = (
    "sandbox allow-scripts; default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "img-src data:; font-src data:"
)


def adapter_view(
    web: Web,
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
    registry = web.registry_as(person)
    try:
        listing = registry.listing(name)
        state = registry.state(name)
    except NotFoundError as err:
        return web.page(request, "error.html", 404, message=str(err), **web.common(request, person))
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
    return web.page(
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
        translated=i18n.refusal(web.view(request)["lang"], refusal or ""),
        **web.common(request, person),
    )


def _utc(local: str, request: Request) -> str:
    """A time typed in the viewer's zone (``2026-12-06T18:30``) as UTC; one with a zone is taken as given."""
    try:
        moment = dt.datetime.fromisoformat(local.replace("Z", "+00:00"))
    except ValueError:
        return local  # the registry names what is wrong with it
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=i18n.zone(request.cookies.get("tailor_tz")))
    return moment.astimezone(dt.timezone.utc).isoformat()


def version_view(
    web: Web,
    request: Request,
    person: Credentials,
    name: str,
    version: str,
    refusal: str | None = None,
    status: int = 200,
) -> Response:
    """The version page, with an action's ``refusal`` (see ``adapter_view``)."""
    registry = web.registry_as(person)
    try:
        evidence = read_evidence(registry, name, version)
    except (NotFoundError, IntegrityError) as err:
        return web.page(
            request,
            "error.html",
            404 if isinstance(err, NotFoundError) else 409,
            message=str(err),
            **web.common(request, person),
        )
    lang = web.view(request)["lang"]
    return web.page(
        request,
        "version.html",
        status,
        e=evidence,
        m=evidence.inputs.manifest,
        svg=evidence_charts(evidence, lang),
        drift_link=True,
        refusal=refusal,
        translated=i18n.refusal(lang, refusal or ""),
        **web.common(request, person),
    )


def add_evidence_routes(app: FastAPI, web: Web) -> None:
    @app.get("/")
    def adapters_page(request: Request, person: Credentials = Depends(web.person_of)) -> Response:
        rows = adapters(web.registry_as(person))
        return web.page(request, "adapters.html", rows=rows, **web.common(request, person))

    @app.get("/queue")
    def queue_page(request: Request, person: Credentials = Depends(web.person_of)) -> Response:
        return web.page(request, "queue.html", rows=waiting(web.registry_as(person)), **web.common(request, person))

    @app.get("/adapters/{name}")
    def adapter_page(
        request: Request, name: str, at: str = "", verify: bool = False, person: Credentials = Depends(web.person_of)
    ) -> Response:
        return adapter_view(web, request, person, name, at, verify=verify)

    @app.get("/adapters/{name}/{version}")
    def version_page(
        request: Request, name: str, version: str, person: Credentials = Depends(web.person_of)
    ) -> Response:
        return version_view(web, request, person, name, version)

    @app.get("/adapters/{name}/{version}/drift")
    def drift_report(name: str, version: str, person: Credentials = Depends(web.person_of)) -> Response:
        registry = web.registry_as(person)
        manifest = registry.manifest(name, version)
        if DRIFT_HTML not in manifest.files:
            raise NotFoundError(f"{name} {version} stores no drift report")
        html = b"".join(data for _, data in registry.verified_files(manifest, only={DRIFT_HTML}))
        return Response(html, media_type="text/html", headers={"Content-Security-Policy": REPORT_POLICY})
