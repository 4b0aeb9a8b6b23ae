"""Fixtures shared by every test layer.

The integration layer talks to a real SeaweedFS started once for the whole run, on free ports, in
a temporary folder, and stopped at the end.
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from registry import embedded
from registry.embedded import EmbeddedStoreConfig
from registry.settings import Role, StoreSettings

REPO = Path(__file__).resolve().parents[1]
TAILOR = str(Path(sys.executable).parent / "tailor")

# Nothing in the test run may reach the network or phone home.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def free_store_ports(count: int = 4) -> list[int]:
    """Ports that are free together with their +10000 gRPC twins, as SeaweedFS needs."""
    rng = random.Random()
    ports: list[int] = []
    while len(ports) < count:
        port = rng.randrange(20000, 29999)
        if port not in ports and port + 10000 not in ports and _free(port) and _free(port + 10000):
            ports.append(port)
    return ports


def store_config(data_dir: Path, bucket: str = "tailor-test") -> EmbeddedStoreConfig:
    s3, master, volume, filer = free_store_ports()
    return EmbeddedStoreConfig(
        data_dir=data_dir, bucket=bucket, s3_port=s3, master_port=master, volume_port=volume, filer_port=filer
    )


def env_for(cfg: EmbeddedStoreConfig, home: Path, **extra: str) -> dict[str, str]:
    """Environment that points the `tailor` CLI at ``cfg`` (its data dir is <home>/store)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAILOR_", "AWS_"))}
    env.update(
        TAILOR_HOME=str(home),
        TAILOR_BUCKET=cfg.bucket,
        TAILOR_STORE_PORT=str(cfg.s3_port),
        TAILOR_STORE_MASTER_PORT=str(cfg.master_port),
        TAILOR_STORE_VOLUME_PORT=str(cfg.volume_port),
        TAILOR_STORE_FILER_PORT=str(cfg.filer_port),
    )
    env.update(extra)
    return env


@dataclass(frozen=True)
class RunningStore:
    cfg: EmbeddedStoreConfig
    home: Path

    def settings(self, role: Role = "admin", actor: str = "tester") -> StoreSettings:
        return embedded.admin_settings(self.cfg, role=role, actor=actor)

    def env(self, **extra: str) -> dict[str, str]:
        return env_for(self.cfg, self.home, **extra)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory) -> RunningStore:
    """One real SeaweedFS for the whole run, as `tailor store start` runs it."""
    home = tmp_path_factory.mktemp("tailor-home")
    cfg = store_config(home / "store")
    embedded.start(cfg)
    yield RunningStore(cfg=cfg, home=home)
    embedded.stop(cfg)


@pytest.fixture
def unique_name() -> str:
    """An adapter name no other test uses, so tests share the server without sharing state."""
    return f"t{uuid.uuid4().hex[:10]}"


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 300,
            input: str | None = None) -> subprocess.CompletedProcess:
    """Run the installed `tailor` console script as a user would."""
    return subprocess.run(
        [TAILOR, *args], env=env, cwd=cwd or REPO, capture_output=True, text=True, timeout=timeout, input=input
    )
