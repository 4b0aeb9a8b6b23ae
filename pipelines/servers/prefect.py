"""Start, stop and inspect a persistent local Prefect server, and point Prefect clients at it.

Schedules only fire against a persistent server (Prefect's temporary per-run server cannot
schedule and costs ~8 s per run to start), so `tailor prefect start` runs one on 127.0.0.1 with
its home (SQLite database, logs) in the project folder and analytics off.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from pipelines.servers.daemon import HOST, Daemon
from registry.errors import NotFoundError, TailorError, first_line

# Prefect's temporary server has a 20 s start-up limit that a loaded 2-core machine can hit.
EPHEMERAL_STARTUP_TIMEOUT_S = "90"


class PrefectServerError(TailorError):
    """The Prefect server could not be started, or its port belongs to another process."""


@dataclass(frozen=True)
class PrefectServerConfig:
    """Where the server keeps its state and which port it answers on."""

    home: Path
    port: int = 4200

    def __post_init__(self) -> None:
        # The server runs with its own working directory: its home must be absolute.
        object.__setattr__(self, "home", Path(self.home).resolve())

    @property
    def api_url(self) -> str:
        return f"http://{HOST}:{self.port}/api"

    @property
    def pid_file(self) -> Path:
        return self.home / "server.pid"

    @property
    def log_file(self) -> Path:
        return self.home / "server.log"


@dataclass(frozen=True)
class PrefectServerStatus:
    api_url: str
    ui_url: str
    pid: int | None
    healthy: bool
    home: str
    log_file: str


def base_env(cfg: PrefectServerConfig) -> dict[str, str]:
    """Prefect settings every Tailor process uses: project-local home, no phoning home."""
    return {
        "PREFECT_HOME": str(cfg.home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": EPHEMERAL_STARTUP_TIMEOUT_S,
    }


def use_server(cfg: PrefectServerConfig) -> str | None:
    """Point this process's Prefect client at the persistent server when it is up.

    Call before Prefect is imported. An explicit ``PREFECT_API_URL`` in the environment wins
    (a remote server, or a test harness). Without a running server, flows run on Prefect's
    temporary local server (slower, no schedules). Returns the API URL in use, or None.
    """
    for key, value in base_env(cfg).items():
        os.environ.setdefault(key, value)
    # Prefect creates its home without parents and only warns when it cannot.
    Path(os.environ["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)
    if os.environ.get("PREFECT_API_URL"):
        return os.environ["PREFECT_API_URL"]
    if _healthy(cfg):
        os.environ["PREFECT_API_URL"] = cfg.api_url
        return cfg.api_url
    return None


def prefect_binary() -> Path:
    """The `prefect` executable installed beside this interpreter.

    Raises:
        NotFoundError: Prefect is not installed in this environment.
    """
    beside = Path(sys.executable).parent / "prefect"
    if not beside.exists():
        raise NotFoundError(f"`prefect` not found beside {sys.executable}: install the project (make setup)")
    return beside


def _daemon(cfg: PrefectServerConfig) -> Daemon:
    return Daemon(
        label="Prefect server",
        pid_file=cfg.pid_file,
        log_file=cfg.log_file,
        cmdline_marks=(b"prefect", b"server", str(cfg.port).encode()),
        error=PrefectServerError,
    )


def _healthy(cfg: PrefectServerConfig) -> bool:
    import httpx

    try:
        return httpx.get(f"{cfg.api_url}/health", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def status(cfg: PrefectServerConfig) -> PrefectServerStatus:
    pid = _daemon(cfg).pid()
    return PrefectServerStatus(
        api_url=cfg.api_url,
        ui_url=f"http://{HOST}:{cfg.port}",
        pid=pid,
        healthy=pid is not None and _healthy(cfg),
        home=str(cfg.home),
        log_file=str(cfg.log_file),
    )


def start(cfg: PrefectServerConfig, timeout: float = 90.0) -> tuple[PrefectServerStatus, bool]:
    """Start the server unless it runs already and wait until its API answers.

    Returns the status and whether this call started it.

    Raises:
        PrefectServerError: the port belongs to another process, the server exited, or it did
            not answer within ``timeout`` seconds (it is stopped again then).
        NotFoundError: Prefect is not installed.
    """
    daemon = _daemon(cfg)
    if daemon.pid() is not None:
        return status(cfg), False
    daemon.refuse_busy_ports([cfg.port], "free it or set TAILOR_PREFECT_PORT")
    binary = prefect_binary()
    cfg.home.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update(base_env(cfg))
    args = [str(binary), "server", "start", "--host", HOST, "--port", str(cfg.port), "--analytics-off"]
    daemon.spawn(args, env=env, cwd=cfg.home, healthy=lambda: _healthy(cfg), timeout=timeout, poll=0.5)
    return status(cfg), True


CRASH_AUTOMATION = "tailor: mark flow runs that stopped sending heartbeats as Crashed"
MISSED_HEARTBEATS = 3


def ensure_crash_detection(cfg: PrefectServerConfig) -> bool:
    """Create, or bring up to date, the automation that marks a silent flow run Crashed.

    A run whose process was killed (kill -9, a reboot, an out-of-memory kill) reports nothing, and
    the server would show it Running for ever. Every flow run sends a heartbeat event each
    ``PREFECT_FLOWS_HEARTBEAT_FREQUENCY`` seconds (Prefect's default 180); after
    ``MISSED_HEARTBEATS`` missed ones this automation marks the run Crashed (Prefect's documented
    recipe for a self-hosted server). The window follows the frequency this process sees, and an
    automation with another window is updated: kept at 3 × 180 s, runs sending a heartbeat every
    600 s would be marked Crashed while alive. Returns True when it was created or updated now.

    Raises:
        PrefectServerError: the server refused or did not answer (another Prefect at the port?).
    """
    from datetime import timedelta

    for key, value in base_env(cfg).items():  # before Prefect is imported: its home is the project's
        os.environ.setdefault(key, value)
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture
    from prefect.events.schemas.events import ResourceSpecification
    from prefect.settings import PREFECT_API_URL, get_current_settings, temporary_settings

    beat = get_current_settings().flows.heartbeat_frequency
    if beat is None:  # heartbeats switched off: nothing to miss
        return False
    window = MISSED_HEARTBEATS * beat
    ended = {f"prefect.flow-run.{state}" for state in ("Completed", "Failed", "Cancelled", "Crashed")}
    automation = AutomationCore(
        name=CRASH_AUTOMATION,
        description=f"no heartbeat for {window} s: the run's process is gone",
        trigger=EventTrigger(
            after={"prefect.flow-run.heartbeat"},
            expect={"prefect.flow-run.heartbeat", *ended},
            match=ResourceSpecification({"prefect.resource.id": ["prefect.flow-run.*"]}),
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=window),
        ),
        actions=[
            ChangeFlowRunState(state=StateType.CRASHED, message=f"no heartbeat for {window} s: its process was killed")
        ],
    )
    try:
        with temporary_settings({PREFECT_API_URL: cfg.api_url}), get_client(sync_client=True) as client:
            existing = client.read_automations_by_name(CRASH_AUTOMATION)
            if existing and existing[0].trigger.within == automation.trigger.within:
                return False
            if existing:
                client.update_automation(existing[0].id, automation)
            else:
                client.create_automation(automation)
    except Exception as err:  # noqa: BLE001 - httpx and Prefect raise many kinds; all mean the same here
        raise PrefectServerError(
            f"the Prefect server at {cfg.api_url} refused the crash-detection automation: "
            f"{type(err).__name__}: {first_line(err)}"
        ) from None
    return True


def stop(cfg: PrefectServerConfig, timeout: float = 30.0) -> bool:
    """SIGTERM the server's process group and wait for it to exit. Returns False when not running."""
    return _daemon(cfg).stop(timeout)
