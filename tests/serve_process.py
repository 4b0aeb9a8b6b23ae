"""`tailor serve` started as a real process for a test, waited on until /healthz answers."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx
import pytest


def start_serve(args: list[str], url: str, env: dict[str, str], logs: Path, limit_s: float = 120) -> subprocess.Popen:
    """Start ``args`` with stdout and stderr in ``logs``; fail the test if it exits or is not ready within ``limit_s``."""
    started = time.monotonic()
    with open(logs / "stdout", "wb") as out, open(logs / "stderr", "wb") as err:
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=err)
    while True:
        if proc.poll() is not None:
            pytest.fail(
                f"tailor serve exited {proc.returncode}: {(logs / 'stderr').read_text(encoding='utf-8')[-3000:]}"
            )
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        if time.monotonic() - started > limit_s:
            proc.kill()
            pytest.fail(
                f"tailor serve not ready after {limit_s:.0f} s: {(logs / 'stderr').read_text(encoding='utf-8')[-3000:]}"
            )
        time.sleep(0.2)
