"""Track accepted batches with DVC, its remote on the project's object store.

The data version written into reports and manifests is DVC's md5 of the file. The remote is named
`REMOTE` (``s3://<bucket>/dvc``); its endpoint and credentials come from the settings and are written
with DVC's ``local`` config level (``.dvc/config.local``, git-ignored by DVC itself), so secrets and
per-machine endpoints never land in git.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from pipelines.servers.seaweedfs_identities import may_write
from registry.errors import ConfigError, RefusedError, StoreError, TailorError
from registry.settings import StoreSettings

REMOTE = "tailor"
PREFIX = "dvc/"  # the remote's folder in the bucket


@dataclass(frozen=True)
class TrackedBatch:
    """The outcome of tracking one file."""

    md5: str  # DVC's md5 of the file: the data version
    dvc_file: Path | None  # the .dvc file written next to the batch; None when DVC could not track it
    pushed: bool
    note: str | None = None  # why it is not tracked or not pushed


def dvc_md5(path: Path) -> str:
    """The md5 DVC 3 records for a single file (of its raw bytes)."""
    digest = hashlib.md5(usedforsecurity=False)
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def find_dvc_root(path: Path) -> Path | None:
    """The closest folder at or above ``path`` holding a ``.dvc/`` folder, or None."""
    for folder in [Path(path).resolve(), *Path(path).resolve().parents]:
        if (folder / ".dvc").is_dir():
            return folder
    return None


def configure_remote(root: Path, store: StoreSettings) -> None:
    """Point remote `REMOTE` at ``s3://<bucket>/dvc`` on the configured store and make it the default.

    Written at the ``local`` level only where it differs, so the committed ``.dvc/config`` stays as is.

    Raises:
        ConfigError: the DVC config cannot be read or written, or DVC cannot open the repository
            (e.g. a copy of the project without its ``.git``).
    """
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    wanted = {
        "url": f"s3://{store.bucket}/{PREFIX.rstrip('/')}",
        "access_key_id": store.access_key,
        "secret_access_key": store.secret_key,
        "region": store.region,
    }
    optional = {"endpointurl": store.endpoint, "session_token": store.session_token, "ssl_verify": store.ca_bundle}
    wanted.update({k: v for k, v in optional.items() if v})
    try:
        with Repo(str(root)) as repo:
            current = repo.config["remote"].get(REMOTE, {})
            changes = {k: v for k, v in wanted.items() if current.get(k) != v}
            # an expired session token or a CA no longer configured must not linger in the remote
            stale = [k for k in optional if k in current and k not in wanted]
            if not changes and not stale and repo.config["core"].get("remote") == REMOTE:
                _keep_private(root / ".dvc" / "config.local")
                return
            _private_file(root / ".dvc" / "config.local")
            with repo.config.edit("local") as local:
                remote = local.setdefault("remote", {}).setdefault(REMOTE, {})
                remote.update(changes)
                for key in stale:
                    remote.pop(key, None)
                local.setdefault("core", {})["remote"] = REMOTE
    except (DvcException, OSError) as err:
        raise ConfigError(f"DVC config in {root}/.dvc: {type(err).__name__}: {err}") from None


def _require_bucket(store: StoreSettings) -> None:
    """Raise the registry's NotFoundError for a missing bucket: DVC's push would silently create it."""
    from registry.store import S3ObjectStore

    next(iter(S3ObjectStore(store).list(PREFIX)), None)


def _keep_private(path: Path) -> None:
    """Take other users' access to ``path`` away, if it exists and they have any: a Tailor older than
    the 0600 rule left the keys it holds readable by all."""
    if path.is_file() and path.stat().st_mode & 0o077:
        os.chmod(path, 0o600)


def _private_file(path: Path) -> None:
    """Make ``path`` readable by its owner only, creating it empty if missing, before a secret goes in.

    DVC rewrites the file in place, so the mode set here holds for what it writes.
    """
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    os.chmod(path, 0o600)


def track(path: Path, store: StoreSettings, *, project: Path, push: bool = True) -> TrackedBatch:
    """``dvc add`` the file and ``dvc push`` it to the object store; return its data version.

    Only a file in the project's own DVC repository (the one holding ``project``, e.g. its data
    folder) is tracked: another repository must not get this project's remote and credentials. A
    file outside it, or already tracked by git (e.g. the shipped samples), still gets its md5 as
    data version, with a note saying why DVC does not track it.

    Raises:
        RefusedError: the role cannot write the remote (nothing is tracked, its keys are not saved),
            or ``dvc add`` refused the file (git-ignored folder, inside ``.dvc/``, unwritable).
        NotFoundError: the bucket does not exist (DVC would create it); the file stays tracked locally.
        StoreError: ``dvc push`` failed (store down, credentials refused); the file stays tracked
            locally and ``dvc push`` can be rerun.
        ConfigError: the DVC config cannot be read or written.
    """
    path = Path(path).resolve()
    md5 = dvc_md5(path)
    root = find_dvc_root(path.parent)
    if root is None:
        return TrackedBatch(md5, None, False, f"{path} is not inside a DVC repository (run `dvc init`); not tracked")
    own = find_dvc_root(project)
    if root != own:
        return TrackedBatch(
            md5,
            None,
            False,
            f"{path} is inside another DVC repository ({root}), not this "
            f"project's ({own or 'none'}); not tracked there",
        )
    if not may_write(store.role, store.bucket, PREFIX):
        raise RefusedError(
            f"role '{store.role}' cannot write s3://{store.bucket}/{PREFIX}, so it cannot track "
            f"{path.name} with DVC: act as a trainer or admin (TAILOR_ROLE), or pass --no-track"
        )
    # DVC reads this at import and on every command; it must never phone home from a pipeline.
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")
    # Imported only for a batch DVC tracks: DVC's import alone is about a second.
    from botocore.exceptions import BotoCoreError, ClientError
    from dvc.exceptions import DvcException
    from dvc.output import OutputAlreadyTrackedError
    from dvc.repo import Repo

    configure_remote(root, store)
    try:
        with Repo(str(root)) as repo:
            # DVC would print its "git add …" hint on stdout, breaking --json; the report names the .dvc file.
            repo.scm_context.quiet = True
            repo.add(str(path))
    except OutputAlreadyTrackedError:
        return TrackedBatch(md5, None, False, f"{path} is tracked by git, not DVC; data version is its md5")
    except (DvcException, OSError) as err:
        raise RefusedError(f"`dvc add` refused batch {path} in {root}: {type(err).__name__}: {err}") from None
    dvc_file = path.with_name(path.name + ".dvc")
    if not push:
        return TrackedBatch(md5, dvc_file, False, "not pushed (push disabled)")
    failed = (
        f"batch {path.name} is tracked by DVC ({dvc_file.name}, md5 {md5}) but `dvc push` to remote "
        f"'{REMOTE}' ({store.endpoint}) failed"
    )
    try:
        _require_bucket(store)
        with Repo(str(root)) as repo:
            repo.push(targets=[str(dvc_file)], remote=REMOTE)
    except TailorError as err:
        raise type(err)(f"{failed}: {err}; rerun `dvc push` once that is fixed") from None
    # DVC lets boto's connection errors through, and s3fs's refusals come as OSError (PermissionError).
    except (DvcException, BotoCoreError, ClientError, OSError) as err:
        raise StoreError(f"{failed}: {type(err).__name__}: {err}; rerun `dvc push` once that is fixed") from None
    return TrackedBatch(md5, dvc_file, True)
