"""A throw-away embedded SeaweedFS for benchmarks: temporary folder, free ports, stopped on exit."""

from __future__ import annotations

import contextlib
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
