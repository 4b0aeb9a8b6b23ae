#!/usr/bin/env python3
"""Check a Tailor audit log without Tailor: hash chains, signatures, signers and the main rules.

Needs Python 3.9+ and the `cryptography` package only. Copy the objects first with any S3 tool:

    aws --endpoint-url URL s3 cp --recursive s3://BUCKET/keys/ copy/keys/
    aws --endpoint-url URL s3 cp --recursive s3://BUCKET/audit/NAME/ copy/audit/NAME/
    python3 verify_audit_log.py copy NAME TRUST_ROOT

TRUST_ROOT is the sha256 `tailor user init` printed. Exit 0 when every check holds, else 1 with
the first failing object named. See docs/security.md for what each check proves.
"""

import base64
import hashlib
import json
import sys
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


def canonical(value) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def key_id(public_key: str) -> str:
    return hashlib.sha256(base64.b64decode(public_key)).hexdigest()[:16]


def signature_holds(public_key: str, signature: str, event: dict) -> bool:
    message = canonical({k: v for k, v in event.items() if k not in ("signature", "sha256")})
    try:
        Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key)).verify(base64.b64decode(signature), message)
        return True
    except (InvalidSignature, ValueError):
        return False


def chain(folder: Path):
    """The events of a folder, in order, each proven to hash and link correctly."""
    files = sorted(folder.glob("*.json"))
    previous = "0" * 64
    for number, path in enumerate(files, start=1):
        event = json.loads(path.read_bytes())
        if path.name != f"{number:012d}.json" or event["seq"] != number:
            sys.exit(f"FAIL {path}: out of sequence (inserted, moved or a gap)")
        if hashlib.sha256(canonical({k: v for k, v in event.items() if k != "sha256"})).hexdigest() != event["sha256"]:
            sys.exit(f"FAIL {path}: modified (its content does not match its sha256)")
        if event["prev_sha256"] != previous:
            sys.exit(f"FAIL {path}: does not follow the event before it")
        previous = event["sha256"]
        yield path, event


def main(copy: str, name: str, trust_root: str) -> None:
    keys, recovery, admins, legacy = {}, None, set(), {}
    for path, event in chain(Path(copy) / "keys"):
        if event["seq"] == 1:
            if event["sha256"] != trust_root or event["action"] != "init":
                sys.exit(f"FAIL {path}: the keyring does not start at the trust root")
            signer_key, recovery = event["public_key"], event["recovery_public_key"]
            legacy = event["legacy_heads"] or {}
        elif recovery and event["signer"] == key_id(recovery):
            signer_key = recovery
        else:
            signer = keys.get(event["signer"])
            if signer is None or signer["role"] != "admin" or signer["disabled"]:
                sys.exit(f"FAIL {path}: not signed by an admin or the recovery key")
            signer_key = signer["public_key"]
        if not signature_holds(signer_key, event["signature"], event):
            sys.exit(f"FAIL {path}: its signature does not hold")
        if event["action"] in ("init", "add", "rotate"):
            for record in keys.values():
                if record["person"] == event["person"]:
                    record["disabled"] = event["time"]
            keys[key_id(event["public_key"])] = {"person": event["person"], "role": event["role"],
                                                 "public_key": event["public_key"], "from": event["time"],
                                                 "disabled": None}
        elif event["action"] == "disable":
            for record in keys.values():
                if record["person"] == event["person"]:
                    record["disabled"] = event["time"]
        print(f"ok   {path.name}: {event['action']} {event['person']} {event.get('role') or ''}")
    # Simplification: a key waiting for a second admin's confirmation is taken as valid from its add.
    registered_by, sealed = {}, legacy.get(name, [0, ""])
    for path, event in chain(Path(copy) / "audit" / name):
        if "signature" not in event:
            if event["seq"] > sealed[0]:
                sys.exit(f"FAIL {path}: unsigned, and not sealed as legacy by the keyring")
            print(f"ok   {path.name}: unsigned legacy {event['action']} {event['version']} by {event['actor']}")
            registered_by.setdefault(event["version"], event["actor"])
            continue
        key = keys.get(event["key_id"])
        if key is None or event["time"] < key["from"] or (key["disabled"] and event["time"] >= key["disabled"]):
            sys.exit(f"FAIL {path}: signed by a key not valid at {event['time']}")
        if not signature_holds(key["public_key"], event["signature"], event):
            sys.exit(f"FAIL {path}: its signature does not hold")
        if (event["actor"], event["role"]) != (key["person"], key["role"]):
            sys.exit(f"FAIL {path}: names {event['actor']} ({event['role']}) but {key['person']} signed it")
        production = event["action"] in ("promote", "rollback") and event["alias"] == "production"
        if production and event["role"] not in ("admin", "approver"):
            sys.exit(f"FAIL {path}: role {event['role']} moved production")
        if event["action"] == "promote" and production and registered_by.get(event["version"]) == event["actor"]:
            sys.exit(f"FAIL {path}: four-eyes: {event['actor']} promoted their own version")
        if event["action"] == "register":
            registered_by[event["version"]] = event["actor"]
        print(f"ok   {path.name}: {event['action']} {event['version']} signed by {event['actor']} ({event['role']})")
    print(f"verified: {name} against trust root {trust_root[:16]}…")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
