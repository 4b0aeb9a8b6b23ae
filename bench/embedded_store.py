"""A throw-away embedded SeaweedFS for benchmarks: temporary folder, free ports, stopped on exit."""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path
from typing import Iterator

from registry import embedded
from registry.embedded import EmbeddedStoreConfig


def _free_pair() -> int:
    """A port the OS calls free whose +10000 gRPC twin is free too (SeaweedFS takes both)."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port + 10000 > 65535:
            continue
        with socket.socket() as twin:
            try:
                twin.bind(("127.0.0.1", port + 10000))
                return port
            except OSError:
                continue


@contextlib.contextmanager
def temporary_store(home: Path, bucket: str) -> Iterator[EmbeddedStoreConfig]:
    """Start a store with data under ``home``/store; yield its config; stop it however the block ends."""
    ports: list[int] = []
    while len(ports) < 4:
        port = _free_pair()
        if port not in ports:
            ports.append(port)
    s3, master, volume, filer = ports
    cfg = EmbeddedStoreConfig(data_dir=Path(home) / "store", bucket=bucket, s3_port=s3, master_port=master,
                              volume_port=volume, filer_port=filer)  # fmt: skip
    embedded.start(cfg)
    try:
        yield cfg
    finally:
        embedded.stop(cfg)


def cli_env(cfg: EmbeddedStoreConfig, home: Path, **extra: str) -> dict[str, str]:
    """Environment that points the `tailor` CLI at ``cfg``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAILOR_", "AWS_"))}
    env.update(TAILOR_HOME=str(home), TAILOR_BUCKET=cfg.bucket, TAILOR_STORE_PORT=str(cfg.s3_port),
               TAILOR_STORE_MASTER_PORT=str(cfg.master_port), TAILOR_STORE_VOLUME_PORT=str(cfg.volume_port),
               TAILOR_STORE_FILER_PORT=str(cfg.filer_port), **extra)  # fmt: skip
    return env
