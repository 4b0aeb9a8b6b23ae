"""`tailor console`: the approvers' and reviewers' web console, on loopback unless told otherwise."""

from __future__ import annotations

from pathlib import Path

import typer

from pipelines.cli.output import emit
from pipelines.cli.serve import _listen
from pipelines.cli.state import state
from registry.errors import ConfigError, RefusedError
from registry.files import require_file


def accounts_folder(home: Path) -> Path:
    """Where `tailor user passwd` keeps each person's console account (their sealed credentials)."""
    return Path(home) / "console" / "people"


def console(
    host: str = typer.Option("127.0.0.1", help="address to listen on"),
    port: int = typer.Option(8900, min=1, max=65535),
    cert: Path = typer.Option(None, "--cert", help="TLS certificate (PEM): needed to listen beyond loopback"),
    key: Path = typer.Option(None, "--key", help="the certificate's private key (PEM)"),
    allow_hosts: list[str] = typer.Option(
        [], "--allow-host", help="a host name people type to reach it (repeat); loopback names always"
    ),
    as_json: bool = typer.Option(False, "--json", help="print the start-up record as JSON"),
) -> None:
    """Serve the console: all adapters, each version's evidence, the approvals queue, the audit log,
    and promote / roll back / archive signed as the person signed in (`tailor user passwd` first)."""
    from serving.ops import is_loopback

    if (cert is None) != (key is None):
        raise ConfigError("--cert and --key go together: the certificate and its private key")
    for path, what in ((cert, "--cert"), (key, "--key")):
        if path is not None:
            require_file(path, what, ConfigError)
    if not is_loopback(host) and cert is None:
        raise RefusedError(
            f"--host {host} is not a loopback address: passphrases and session cookies would cross the "
            "network in clear text; give --cert and --key (TLS), or keep the default 127.0.0.1"
        )
    allowed = {h.strip().lower() for h in allow_hosts}
    if not is_loopback(host) and host not in ("0.0.0.0", "::"):
        allowed.add(host.lower())
    if not is_loopback(host) and not allowed:
        raise ConfigError(
            f"--host {host}: give --allow-host NAME for each name people type to reach the console "
            "(requests for any other Host are refused, against DNS rebinding)"
        )
    import uvicorn

    from pipelines.console.accounts import PassphraseAccounts
    from pipelines.console.app import create_app
    from pipelines.console.web import ConsoleOptions

    ctx = state.context()
    settings = ctx.settings
    if settings.actor:
        raise ConfigError(
            f"actor: TAILOR_ACTOR is {settings.actor!r}, but the console acts as whoever signs in; "
            "unset it for `tailor console`"
        )
    folder = accounts_folder(settings.home)
    people = PassphraseAccounts(folder)
    listening = _listen(host, port)
    app = create_app(ctx, people, ConsoleOptions(secure=cert is not None, allowed_hosts=frozenset(allowed)))
    scheme = "https" if cert else "http"
    shown = f"[{host}]" if ":" in host else host
    record = {"url": f"{scheme}://{shown}:{port}/", "people": people.names(), "accounts": str(folder)}
    emit(
        record,
        as_json=as_json,
        text=f"console on {record['url']} ({len(record['people'])} people can sign in: "
        f"{', '.join(record['people']) or 'none yet; `tailor user passwd`'})",
    )
    uvicorn.Server(
        uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            ssl_certfile=str(cert) if cert else None,
            ssl_keyfile=str(key) if key else None,
        )
    ).run(sockets=[listening])


def attach(app: typer.Typer) -> None:
    app.command("console")(console)
