"""The console's actions on the registry: promote, archive and roll back, each signed as the person
signed in; a refusal is shown on the page the action was taken from."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import Depends, FastAPI, Request
from fastapi.responses import RedirectResponse, Response

from pipelines.console import actions, i18n
from pipelines.console.evidence_routes import adapter_view, version_view
from pipelines.console.web import Web
from registry.errors import TailorError
from registry.people import Credentials


def _after(web: Web, request: Request, target: str, notice: str, missed: list[str] = ()) -> Response:
    """Back to ``target``, which shows once what the action did (and which webhooks it did not reach)."""
    if missed:
        notice += f"; {i18n.word(web.view(request)['lang'], 'webhook_missed')}: {', '.join(missed)}"
    request.state.session.notice = notice
    return RedirectResponse(target, status_code=303)


def add_review_routes(app: FastAPI, web: Web) -> None:
    @app.post("/adapters/{name}/{version}/promote")
    def promote(
        request: Request,
        name: str,
        version: str,
        form: dict[str, str] = Depends(web.form_of),
        person: Credentials = Depends(web.person_of),
    ) -> Response:
        to = form.get("to", "production")
        try:
            event, missed = actions.promote(web.fresh(), person, name, version, to, reason=form.get("reason", ""))
        except TailorError as err:
            return version_view(web, request, person, name, version, refusal=str(err), status=409)
        return _after(
            web,
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
        form: dict[str, str] = Depends(web.form_of),
        person: Credentials = Depends(web.person_of),
    ) -> Response:
        try:
            event = actions.archive(web.fresh(), person, name, version, reason=form.get("reason", ""))
        except TailorError as err:
            return version_view(web, request, person, name, version, refusal=str(err), status=409)
        return _after(
            web, request, f"/adapters/{quote(name)}/{quote(version)}", f"{name} {version}: archive, #{event.key_name}"
        )

    @app.post("/adapters/{name}/rollback")
    def rollback(
        request: Request,
        name: str,
        form: dict[str, str] = Depends(web.form_of),
        person: Credentials = Depends(web.person_of),
    ) -> Response:
        try:
            event, missed = actions.rollback(
                web.fresh(),
                person,
                name,
                alias="production",
                reason=form.get("reason", ""),
                expect=form.get("expect") or None,
            )
        except TailorError as err:
            return adapter_view(web, request, person, name, refusal=str(err), status=409)
        return _after(
            web,
            request,
            f"/adapters/{quote(name)}",
            f"{name} production {event.alias_before} → {event.alias_after}, #{event.key_name}",
            missed,
        )
