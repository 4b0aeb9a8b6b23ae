"""A local server run as a background process: pid file, port check, health wait, stop.

The embedded SeaweedFS and the local Prefect server both run this way, always bound to loopback.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from registry.errors import TailorError

HOST = "127.0.0.1"


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((HOST, port)) == 0


def _alive(pid: int) -> bool:
    """Reap the process if it is our own exited child, then say whether it still runs."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


@dataclass(frozen=True)
class Daemon:
    """One background server, known by its pid file and by words its command line must hold.

    Args:
        label: how messages name it ("SeaweedFS").
        pid_file: where its pid is recorded.
        log_file: where its output goes.
        cmdline_marks: byte strings the process's command line must contain, so a recycled pid
            that now belongs to another program is never taken for (or signalled as) the server.
        error: the TailorError subclass raised when it cannot be started.
    """

    label: str
    pid_file: Path
    log_file: Path
    cmdline_marks: tuple[bytes, ...]
    error: type[TailorError]

    def pid(self) -> int | None:
        """The recorded pid, if that process is alive and is this server."""
        try:
            pid = int(self.pid_file.read_text(encoding="utf-8").strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return None
        if not _alive(pid) or not all(mark in cmdline for mark in self.cmdline_marks):
            return None
        return pid

    def refuse_busy_ports(self, ports: list[int], hint: str) -> None:
        """Raises ``error`` naming the first port another process holds."""
        busy = [p for p in ports if port_in_use(p)]
        if busy:
            raise self.error(
                f"port {busy[0]} on {HOST} is in use by another process, not Tailor's {self.label}; {hint}"
            )

    def spawn(
        self,
        args: list[str],
        *,
        env: dict[str, str],
        cwd: Path,
        healthy: Callable[[], bool],
        timeout: float,
        poll: float = 0.3,
    ) -> int:
        """Start the server in its own session, record its pid, and wait until ``healthy()``.

        Raises:
            error: it exited during start-up, or did not become healthy in ``timeout`` seconds
                (it is stopped again then).
        """
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as log:
            proc = subprocess.Popen(
                args,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=cwd,
                start_new_session=True,
            )
        self.pid_file.write_text(str(proc.pid))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                raise self.error(f"{self.label} exited with code {proc.returncode} at start; see {self.log_file}")
            if healthy():
                return proc.pid
            time.sleep(poll)
        self.stop()
        raise self.error(f"{self.label} did not answer within {timeout:.0f}s; see {self.log_file}")

    def stop(self, timeout: float = 30.0) -> bool:
        """SIGTERM the server's process group and wait; SIGKILL if it lingers. False when not running."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        # Started in its own session: signalling the group leaves no child (uvicorn, volume server) orphaned.
        self._signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.1)
        if _alive(pid):
            self._signal_group(pid, signal.SIGKILL)
            time.sleep(0.5)
            _alive(pid)  # reaps it
        self.pid_file.unlink(missing_ok=True)
        return True

    @staticmethod
    def _signal_group(pid: int, sig: int) -> None:
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            pass
