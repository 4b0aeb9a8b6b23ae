"""`tailor serve`: answer predictions over HTTP with the adapters an alias names, following the registry."""

from __future__ import annotations

import functools
import importlib.util
import logging
import socket
import time
from pathlib import Path
from typing import Literal

import typer

from pipelines.cli.choices import Alias
from pipelines.cli.output import emit
from pipelines.cli.state import state
from registry.errors import ConfigError, RefusedError


def _check_host(host: str, allow_remote: bool) -> None:
    from serving.ops import is_loopback

    if not is_loopback(host) and not allow_remote:
        raise RefusedError(
            f"--host {host} is not a loopback address and the predictor has no authentication: "
            "put it behind a proxy that authenticates, then pass --allow-remote"
        )


def _listen(host: str, port: int) -> socket.socket:
    """Take the port before the slow start-up, so a port in use fails at once, not after loading models."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise RefusedError(f"cannot listen on {host} port {port}: {err.strerror or err}") from None
    return sock


def serve(
    names: list[str] = typer.Option(..., "--name", help="adapter to serve; repeat for several (one base model)"),
    alias: Alias = typer.Option("production", help="alias to follow"),
    host: str = typer.Option("127.0.0.1", help="address to listen on"),
    port: int = typer.Option(8080, min=1, max=65535),
    poll_seconds: float = typer.Option(2.0, min=0.1, help="seconds between checks of the registry's audit log"),
    max_batch: int = typer.Option(64, min=1, help="most texts in one request"),
    max_chars: int = typer.Option(2000, min=1, help="most characters in one text"),
    body_seconds: float = typer.Option(10.0, min=0.1, help="seconds a client has to send a request body (else 408)"),
    allow_remote: bool = typer.Option(
        False, "--allow-remote", help="listen on a non-loopback address and answer requests for any Host name"
    ),
    access_log: bool = typer.Option(False, "--access-log", help="one JSON line per request on stderr"),
    backend: Literal["torch", "onnx"] = typer.Option(
        "torch",
        "--backend",
        help="torch: adapters unmerged over one shared base (many adapters); onnx: each version merged into a "
        "private copy of the base and run by ONNX Runtime (faster; needs the serve-onnx extra)",
    ),
    int8: bool = typer.Option(False, "--int8", help="with --backend onnx: dynamic int8 quantisation of the weights"),
    explain: bool = typer.Option(
        False,
        "--explain",
        help="answer POST /explain (which words decided; costs many forward passes, so off unless asked)",
    ),
    explain_per_minute: int | None = typer.Option(
        None, min=1, show_default=False, help="with --explain: most explanations answered a minute [default: 6]"
    ),
    explain_steps: int | None = typer.Option(
        None, min=2, show_default=False, help="with --explain: integration steps per explanation [default: 32]"
    ),
    record_traffic: bool = typer.Option(
        False,
        "--record-traffic",
        help="record a sample of requests and predictions in the store (opt-in; personal data: see docs/monitoring.md)",
    ),
    monitoring: Path | None = typer.Option(
        None, "--monitoring", help="monitoring file with the recording limits (default: monitoring.yaml)"
    ),
    as_json: bool = typer.Option(False, "--json", help="print the start-up record as JSON"),
) -> None:
    """Serve predictions for the adapters an alias names; swap to a new version when the alias moves.

    Loads the base model once and every adapter beside it (hashes
    verified), then polls the registry every few seconds. A version that
    fails to load is not swapped in: the old one keeps answering and GET
    /healthz says why.
    """
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ConfigError(f"--name {', '.join(repeated)} is given more than once; name each adapter once")
    _check_host(host, allow_remote)
    if not explain and (explain_per_minute, explain_steps) != (None, None):
        raise ConfigError(
            "--explain-per-minute and --explain-steps set how POST /explain answers: give them with --explain"
        )
    if monitoring is not None and not record_traffic:
        raise ConfigError("--monitoring sets the recording limits: give it with --record-traffic")
    if int8 and backend != "onnx":
        raise ConfigError("--int8 quantises the ONNX graph: give it with --backend onnx")
    if backend == "onnx" and importlib.util.find_spec("onnxruntime") is None:
        raise ConfigError("--backend onnx needs ONNX Runtime: pip install -c infra/constraints.txt '.[serve-onnx]'")
    listening = _listen(host, port)
    import psutil
    import uvicorn

    from registry.registry import Registry
    from registry.store import S3ObjectStore
    from serving.app import create_app
    from serving.follower import Follower
    from serving.schemas import Explaining, Limits

    ctx = state.context()
    settings = ctx.settings
    store_settings = settings.store()
    # Without the policy's rules: serving only reads, and a policy being edited must not stop it.
    # With the state cache other commands keep, a start reads the events since then, not the whole log
    # (2,114 GETs, 7.4 s of a 16 s start at 2,185 events).
    registry = Registry(
        S3ObjectStore(store_settings), store_settings, base_model=ctx.base_fingerprint, cache_dir=settings.home
    )
    registry.require_alias(alias)

    @functools.cache
    def base():
        # Imported and loaded on the first adapter, after every alias resolved: a missing one
        # fails fast, without the ~15 s of torch, transformers and peft imports.
        from serving.model import load_base

        return load_base(settings.base_model_dir, model_id=settings.model_id_of(None), cache_dir=settings.home)

    def load(folder):
        if backend == "onnx":
            from serving.onnx_backend import load_onnx_classifier

            return load_onnx_classifier(folder, base(), settings.home / "onnx", int8=int8)
        from serving.model import load_classifier

        return load_classifier(folder, base())

    recorder = None
    if record_traffic:  # before loading models: a bad monitoring file or missing keys fail fast
        from pipelines.monitoring.recording import build_recorder

        recorder = build_recorder(settings, monitoring)
    follower = Follower(registry, load, names, alias=alias, poll_seconds=poll_seconds)
    served = follower.load()
    explaining = None
    if explain:
        given = {"per_minute": explain_per_minute, "steps": explain_steps}
        explaining = Explaining(**{key: value for key, value in given.items() if value is not None})
    app = create_app(
        follower,
        Limits(max_batch=max_batch, max_chars=max_chars, body_seconds=body_seconds),
        allow_remote=allow_remote,
        log_access=access_log,
        explaining=explaining,
        recorder=recorder,
    )
    record = {
        "url": f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}",
        "alias": alias,
        "adapters": [s.describe() for s in served],
        "explain": explaining,
        # From process start, interpreter and imports included: what a restart costs.
        "startup_seconds": round(time.time() - psutil.Process().create_time(), 2),
        "rss_mb": round(psutil.Process().memory_info().rss / 2**20, 1),
        "record_traffic": record_traffic,
    }
    text = (
        f"serving {', '.join(f'{s.name} {s.version}' for s in served)} ({alias}) on {record['url']} "
        f"(ready in {record['startup_seconds']} s, {record['rss_mb']} MB)"
    )
    emit(record, as_json=as_json, text=text)
    # Swaps and load failures are worth a line in the server log.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("serving").setLevel(logging.INFO)
    if access_log:
        lines = logging.StreamHandler()
        lines.setFormatter(logging.Formatter("%(message)s"))  # each line is one JSON object
        logging.getLogger("tailor.access").addHandler(lines)
        logging.getLogger("tailor.access").setLevel(logging.INFO)
        logging.getLogger("tailor.access").propagate = False
    uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)).run(
        sockets=[listening]
    )


def attach(app: typer.Typer) -> None:
    app.command("serve")(serve)
