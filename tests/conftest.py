"""Fixtures shared by every test layer, and the marks that name each layer.

Tests mirror the packages in three layers: tests/unit (no processes, no sockets: tests/unit/conftest.py
refuses them), tests/integration (real SeaweedFS, Prefect, git, dvc, the `tailor` command, real models) and
tests/e2e (the README commands). The integration and e2e layers talk to one real SeaweedFS started once for
the whole run, on free ports, in a temporary folder, and stopped at the end; it lives here because both use it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench.embedded_store import store_env
from pipelines.servers import seaweedfs
from pipelines.servers.seaweedfs import EmbeddedStoreConfig
from registry.settings import Role, StoreSettings

REPO = Path(__file__).resolve().parents[1]
TAILOR = str(Path(sys.executable).parent / "tailor")
# Load limits no adapter fails on a shared 2-core test machine, for policies of tests about something else:
# latency there says nothing about production hardware, and a tiny random base's ratios are not a real model's.
ANY_MACHINE_LOAD = {"max_p95_ratio": 100, "min_throughput_ratio": 0.01, "max_base_spread": 1000}

# Nothing in the test run may reach the network or phone home.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# Training yields to other work by default (nice 10): on a test machine shared with other test runs
# that starves the `tailor train` processes tests start into their timeouts.
# tests/integration/pipelines/training/test_cpu_share_processes.py tests the lowering itself.
os.environ.setdefault("TAILOR_TRAIN_NICENESS", "0")
# Every `tailor evaluate` explains holdout rows (12 by default, seconds each on the real base model); two
# prove the path, tests/integration/pipelines/evaluation/test_explain_evaluate.py checks the budget and the
# report itself.
os.environ.setdefault("TAILOR_EXPLAIN_ROWS", "2")


def layer_of(path: Path) -> str | None:
    """The layer a test file belongs to by its folder under tests/: unit, integration or e2e."""
    path = path.resolve()
    if not path.is_relative_to(REPO / "tests"):  # a test collected from elsewhere, e.g. a doctest under bench/
        return None
    parts = path.relative_to(REPO / "tests").parts
    return parts[0] if len(parts) > 1 and parts[0] in ("unit", "integration", "e2e") else None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The folder is the mark, so `-m "not integration"` and the folder agree without a mark in every file.
    for item in items:
        layer = layer_of(item.path)
        if layer in ("integration", "e2e"):
            item.add_marker(layer)


@dataclass(frozen=True)
class RunningStore:
    cfg: EmbeddedStoreConfig
    home: Path

    def settings(self, role: Role = "admin", actor: str = "tester") -> StoreSettings:
        return seaweedfs.admin_settings(self.cfg, role=role, actor=actor)

    def env(self, **extra: str) -> dict[str, str]:
        return store_env(self.cfg, self.home, **extra)


# What a whole run writes, measured on 2026-12-07 (4.4 GB: the store's volumes, the extras test's environments,
# models and reports), with room to spare.
RUN_WRITES_BYTES = 6 << 30


def disk_short_for_a_run(free: int, total: int) -> str | None:
    """Why a disk with ``free`` of its ``total`` bytes free cannot hold a test run; None when it can.

    SeaweedFS turns its volumes read-only below 1 % free, and sizes how many it may create by the free space it
    starts with. A CI run begun on a nearly full disk failed its store writes one by one with "internal error"
    for 74 minutes: the store fixture stops the run before the first, saying why.
    """
    need = RUN_WRITES_BYTES + total // 100
    if free >= need:
        return None
    return (
        f"the tests need about {need / 2**30:.1f} GiB free (a run writes up to {RUN_WRITES_BYTES / 2**30:.0f} GiB, "
        f"and the test store turns read-only below 1 % free); {free / 2**30:.1f} GiB is free. Free space first: "
        "earlier test runs' folders, old caches (`uv cache clean unidic-lite antlr4-python3-runtime` removes the "
        "builds that setups before 2026-12-07 left in uv's)"
    )


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory) -> RunningStore:
    """One real SeaweedFS for the whole run, as `tailor store start` runs it."""
    home = tmp_path_factory.mktemp("tailor-home")
    disk = shutil.disk_usage(home)
    short = disk_short_for_a_run(disk.free, disk.total)
    if short:
        pytest.exit(f"{home}: {short}")
    cfg = EmbeddedStoreConfig.on_free_ports(home / "store", bucket="tailor-test")
    seaweedfs.start(cfg)
    yield RunningStore(cfg=cfg, home=home)
    seaweedfs.stop(cfg)


@pytest.fixture(scope="session")
def banking77() -> Path:
    """Banking77's folder, read in place beside the checkout; a test that needs it skips where it is absent."""
    from bench.banking77 import FOLDER

    if not (FOLDER / "train.csv").is_file():
        pytest.skip(f"Banking77 not found at {FOLDER}")
    return FOLDER


@pytest.fixture
def unique_name() -> str:
    """An adapter name no other test uses, so tests share the server without sharing state."""
    return f"t{uuid.uuid4().hex[:10]}"


def run_cli(
    *args: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 300,
    input: str | None = None,
) -> subprocess.CompletedProcess:
    """Run the installed `tailor` console script as a user would."""
    return subprocess.run(
        [TAILOR, *args], env=env, cwd=cwd or REPO, capture_output=True, text=True, timeout=timeout, input=input
    )
