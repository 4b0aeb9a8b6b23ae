"""`tailor store start|stop|status`: the embedded SeaweedFS object store."""

from __future__ import annotations

import typer

from pipelines.cli.output import JSON, emit
from pipelines.cli.state import state
from pipelines.servers import seaweedfs

app = typer.Typer(
    help="Run the embedded S3 object store (SeaweedFS) on 127.0.0.1; check any configured one.", no_args_is_help=True
)


@app.command()
def start(as_json: bool = JSON, timeout: float = typer.Option(60.0, min=1, help="seconds to wait for S3")) -> None:
    """Start the store (idempotent), wait until S3 answers, create the bucket."""
    status, started = seaweedfs.start(state.settings().embedded_store(), timeout=timeout)
    text = (
        f"started SeaweedFS (pid {status.pid}) at {status.endpoint}, bucket '{status.bucket}'\n"
        f"credentials: {status.credentials_file}"
        if started
        else f"already running (pid {status.pid}) at {status.endpoint}"
    )
    emit({**vars(status), "started": started}, as_json=as_json, text=text)
    _say_if_disk_low(status)


@app.command()
def stop(as_json: bool = JSON) -> None:
    """Stop the store (SIGTERM, then wait). Data stays on disk."""
    stopped = seaweedfs.stop(state.settings().embedded_store())
    emit({"stopped": stopped}, as_json=as_json, text="stopped" if stopped else "not running")


@app.command()
def status(as_json: bool = JSON) -> None:
    """Show endpoint, bucket, pid, health, data folder, its free disk space and the credentials file.
    Exit 1 when not healthy or the disk is nearly full (under 1 GiB or 2 % free)."""
    current = seaweedfs.status(state.settings().embedded_store())
    emit(current, as_json=as_json)
    _say_if_disk_low(current)
    if not current.healthy or current.disk_low:
        raise typer.Exit(1)


def _say_if_disk_low(current: seaweedfs.StoreStatus) -> None:
    if current.disk_low:
        typer.echo(
            f"problem: only {current.disk_free_bytes / 2**20:.0f} MiB free under {current.data_dir}; the "
            "store's writes hang when its disk fills: free space or move the store",
            err=True,
        )


@app.command()
def check(as_json: bool = JSON) -> None:
    """Check that the configured store (embedded or any S3 endpoint) honours create-only writes and
    has Object Lock where retention is configured. Exit 1 when it falls short."""
    from registry.store import S3ObjectStore
    from registry.store_check import check_store

    result = check_store(S3ObjectStore(state.settings().store()))
    lines = [
        f"{result.endpoint}, bucket '{result.bucket}', as {result.role}:",
        f"  create-only writes: {result.create_only_writes}",
        f"  Object Lock: {result.object_lock}",
        *(f"  problem: {p}" for p in result.problems),
        *(f"  note: {n}" for n in result.notes),
    ]
    emit(result, as_json=as_json, text="\n".join(lines))
    if result.problems:
        raise typer.Exit(1)


def attach(parent: typer.Typer) -> None:
    parent.add_typer(app, name="store")
