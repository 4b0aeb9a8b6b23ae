"""The object store's settings, as a record. ``pipelines.settings`` builds it from file and environment."""

from dataclasses import dataclass, field
from typing import Literal

Role = Literal["admin", "trainer", "approver", "reader"]
ROLES: tuple[Role, ...] = ("admin", "trainer", "approver", "reader")


@dataclass(frozen=True)
class StoreSettings:
    """Where the store is, which bucket, and who we act as.

    Any S3 endpoint works: SeaweedFS, MinIO, Ceph RGW or AWS S3 (``endpoint=None`` means AWS's own).
    """

    endpoint: str | None
    bucket: str
    access_key: str = field(repr=False)
    secret_key: str = field(repr=False)
    role: Role = "admin"
    actor: str = "unknown"
    region: str = "us-east-1"
    # Path-style addressing is what on-prem servers (SeaweedFS, MinIO, Ceph) expect by default.
    addressing_style: Literal["path", "virtual", "auto"] = "path"
    # Retention mode for audit events where the bucket has Object Lock; None disables retention.
    object_lock_mode: Literal["GOVERNANCE", "COMPLIANCE"] | None = "GOVERNANCE"
    object_lock_days: int = 3650
    session_token: str | None = field(default=None, repr=False)  # temporary keys (AWS STS)
    ca_bundle: str | None = None  # PEM file verifying an https endpoint; None = the system's CAs
    # A person's or service's Ed25519 key (base64), from their credentials file: signs their audit events.
    signing_key: str | None = field(default=None, repr=False)
    # The sha256 of the keyring's first event: pins whose keys this machine trusts.
    trust_root: str | None = None
