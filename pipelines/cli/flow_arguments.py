"""The arguments `tailor retrain` and `tailor schedule` hand to Prefect flows, checked before any flow runs."""

from __future__ import annotations

import os
from pathlib import Path

from pipelines.cli.state import state


def check_flow_arguments(
    name: str,
    holdout: Path,
    labels: Path | None,
    policy: Path | None,
    *,
    data: Path | None = None,
    device: str | None = None,
) -> None:
    """Refuse a bad argument now, not inside a flow: there it surfaces only after a Prefect server
    has started and tasks have retried against the store, or, on a schedule, at every run.

    Raises:
        NotFoundError, ConfigError, RefusedError: the first bad argument, named.
    """
    from registry.files import require_file
    from registry.manifest import validate_name

    validate_name(name)
    if data is not None:
        require_file(data, "batch file")
    require_file(holdout, "--holdout:")
    if labels is not None:
        require_file(labels, "labels file")
    state.context().policy_or(policy)
    if device is not None:
        from serving.model import resolve_device

        resolve_device(device)


def require_store(name: str) -> None:
    """Check that the role may register and read ``name``'s audit log head once: inside a flow, a
    role that cannot, or a store that is down, surfaces only after validation (or every task's
    retries), as screens of Prefect logs.

    Raises:
        RefusedError: the configured role may not register (reader, approver).
        StoreError, AccessDeniedError: the object store does not answer, or refuses these credentials.
    """
    registry = state.context().registry()
    registry.require_role("register")
    registry.head_seq(name)


def configure_policy(policy: Path | None) -> None:
    """Make ``--policy`` the policy of this process and of the flow runs it starts, which read the
    configured one only (see ``pipelines.orchestration.flows``)."""
    if policy is not None:
        os.environ["TAILOR_POLICY"] = str(policy.resolve())
