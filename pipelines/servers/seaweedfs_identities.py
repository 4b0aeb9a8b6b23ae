"""The embedded SeaweedFS server's identities file: one identity per role (and per person), each with
the store actions its role may take, scoped to the configured bucket.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

from registry.errors import ConfigError
from registry.files import require_private_file, write_atomic
from registry.settings import ROLES, Role

# A store identity with no registry role: `tailor serve --record-traffic` writes sampled traffic
# with it, and it may write nothing else (not even read what it wrote: recorded texts are personal data).
RECORDER = "recorder"
STORE_IDENTITIES = (*ROLES, RECORDER)


def role_actions(role: str, bucket: str) -> list[str]:
    """Store-enforced limits per role; the registry enforces the finer rules (who moves production)."""
    if role == RECORDER:
        # Retention too: each traffic batch carries its own retention period, not the bucket's 10 years.
        return [f"Write:{bucket}/traffic/*", f"PutObjectRetention:{bucket}/traffic/*"]
    if role == "admin":
        return ["Admin", "Read", "List", "Tagging", "Write"]
    # Object Lock retention (audit events, version files) needs its own permission besides Write.
    retain_audit = f"PutObjectRetention:{bucket}/audit/*"
    if role == "trainer":
        # Only what registering, data versioning, webhook records and a scheduled monitor (its results,
        # expiring traffic past its retention) write: never keys/ (the keyring).
        writes = [
            f"Write:{bucket}/{prefix}*"
            for prefix in ("adapters/", "audit/", "checkpoints/", "deliveries/", "dvc/", "monitoring/", "traffic/")
        ]
        return [
            f"Read:{bucket}",
            f"List:{bucket}",
            f"Tagging:{bucket}",
            *writes,
            retain_audit,
            f"PutObjectRetention:{bucket}/adapters/*",
        ]
    if role == "approver":
        return [
            f"Read:{bucket}",
            f"List:{bucket}",
            f"Write:{bucket}/audit/*",
            f"Write:{bucket}/checkpoints/*",  # signed checkpoints of the audit logs (registry.audit.checkpoints)
            f"Write:{bucket}/deliveries/*",
            retain_audit,
        ]
    return [f"Read:{bucket}", f"List:{bucket}"]


def scoped_bucket(path: Path) -> str | None:
    """The bucket the roles of an identities file are scoped to (None when no role is scoped)."""
    for ident in json.loads(path.read_text(encoding="utf-8"))["identities"]:
        for action in ident.get("actions", []):
            if action.startswith("Read:"):
                return action.split(":", 1)[1]
    return None


def may_write(role: Role, bucket: str, prefix: str) -> bool:
    """Whether ``role`` is granted writes under ``prefix`` (e.g. ``dvc/``) of ``bucket``."""
    for action in role_actions(role, bucket):
        if action in ("Write", f"Write:{bucket}"):
            return True
        scope = action.removeprefix(f"Write:{bucket}/")
        if scope != action and scope.endswith("*") and prefix.startswith(scope[:-1]):
            return True
    return False


def ensure_identities(path: Path, bucket: str) -> Path:
    """Write the identities file with fresh random secrets unless it exists already (mode 0600).

    An existing file keeps its keys, and its roles get the permissions this version gives them for
    the configured bucket: scoped again when the bucket setting changed (or every role but admin
    would be refused), and widened where a permission came later (a trainer's retention of version
    files: without it they were stored with no Object Lock, silently).
    """
    if path.exists():
        read_identities(path)  # refuse a damaged file now rather than start an open server
        doc = json.loads(path.read_text(encoding="utf-8"))
        roles = [ident for ident in doc["identities"] if ident.get("name") in STORE_IDENTITIES]
        missing = [role for role in STORE_IDENTITIES if role not in {ident["name"] for ident in roles}]
        if missing or any(ident.get("actions") != role_actions(ident["name"], bucket) for ident in roles):
            for ident in roles:
                ident["actions"] = role_actions(ident["name"], bucket)  # people keep theirs: scoped when added
            doc["identities"] += [_identity(role, bucket) for role in missing]  # an identity that came later
            write_atomic(path, json.dumps(doc, indent=2), private=True)
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    identities = [_identity(role, bucket) for role in STORE_IDENTITIES]
    return write_atomic(path, json.dumps({"identities": identities}, indent=2), private=True)


def _identity(role: str, bucket: str) -> dict:
    return {
        "name": role,
        "actions": role_actions(role, bucket),
        "credentials": [{"accessKey": f"tailor-{role}-{secrets.token_hex(4)}", "secretKey": secrets.token_urlsafe(30)}],
    }


PERSON_PREFIX = "person:"


def set_person_identity(path: Path, bucket: str, person: str, role: Role | None) -> tuple[str, str] | None:
    """Give ``person`` a store identity of their own with ``role``'s permissions (new random keys,
    replacing any they had), or with ``role`` None remove it. Returns the new (access, secret) keys.

    The server reads its identities when it starts: ``seaweedfs.restart_if_running`` makes the change count.
    """
    ensure_identities(path, bucket)
    doc = json.loads(path.read_text(encoding="utf-8"))
    name = PERSON_PREFIX + person
    doc["identities"] = [ident for ident in doc["identities"] if ident.get("name") != name]
    keys = None
    if role is not None:
        keys = (f"tailor-{role}-{secrets.token_hex(6)}", secrets.token_urlsafe(30))
        doc["identities"].append(
            {
                "name": name,
                "credentials": [{"accessKey": keys[0], "secretKey": keys[1]}],
                "actions": role_actions(role, bucket),
            }
        )
    write_atomic(path, json.dumps(doc, indent=2), private=True)
    return keys


def read_identities(path: Path) -> dict[str, tuple[str, str]]:
    """Role name → (access key, secret key) from a SeaweedFS identities file.

    Raises:
        ConfigError: the file is missing, not a regular file, open to the group or to others (like a
            person's credentials file: it holds every role's secret keys), not JSON, or not in
            SeaweedFS's identities format.
    """
    path = require_private_file(
        path, "credentials_file", "the secret store keys of every role", hint=" (run `tailor store start` once)"
    )
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ConfigError(f"credentials_file: {path} is not a readable JSON identities file: {err}") from None
    out: dict[str, tuple[str, str]] = {}
    try:
        for ident in doc["identities"]:
            cred = ident["credentials"][0]
            out[ident["name"]] = (cred["accessKey"], cred["secretKey"])
    except (KeyError, IndexError, TypeError) as err:
        raise ConfigError(f"credentials_file: {path} is not in SeaweedFS identities format (missing {err})") from None
    return out
