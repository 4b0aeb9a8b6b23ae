"""A throw-away embedded SeaweedFS for benchmarks and tests: temporary folder, free ports, stopped on
exit, and the environment that points a `tailor` subprocess at it."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

from pipelines.servers import seaweedfs
from pipelines.servers.seaweedfs import EmbeddedStoreConfig


@contextlib.contextmanager
def temporary_store(home: Path, bucket: str) -> Iterator[EmbeddedStoreConfig]:
    """Start a store with data under ``home``/store; yield its config; stop it however the block ends."""
    cfg = EmbeddedStoreConfig.on_free_ports(Path(home) / "store", bucket=bucket)
    seaweedfs.start(cfg)
    try:
        yield cfg
    finally:
        seaweedfs.stop(cfg)


def store_env(cfg: EmbeddedStoreConfig, home: Path, **extra: str) -> dict[str, str]:
    """This process's environment, repointed so a `tailor` subprocess uses the embedded store ``cfg``.

    ``cfg.data_dir`` must be ``<home>/store``. Other TAILOR_* and stray AWS_* variables are dropped
    so nothing from the caller's own configuration leaks into the child.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAILOR_", "AWS_"))}
    env.update(
        TAILOR_HOME=str(home),
        TAILOR_BUCKET=cfg.bucket,
        TAILOR_STORE_PORT=str(cfg.s3_port),
        TAILOR_STORE_MASTER_PORT=str(cfg.master_port),
        TAILOR_STORE_VOLUME_PORT=str(cfg.volume_port),
        TAILOR_STORE_FILER_PORT=str(cfg.filer_port),
        **extra,
    )
    return env
