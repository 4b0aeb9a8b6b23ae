#!/usr/bin/env python3
"""Check a Tailor audit log without Tailor: hash chains, signatures, signers and the main rules.

Needs Python 3.9+ and the `cryptography` package, and `rfc8785` for events that name it as their
`canonical` form (every event signed since; older ones were made canonical as `canonical` below).
Copy the objects first with any S3 tool:

    aws --endpoint-url URL s3 cp --recursive s3://BUCKET/keys/ copy/keys/
    aws --endpoint-url URL s3 cp --recursive s3://BUCKET/audit/NAME/ copy/audit/NAME/
    python3 verify_audit_log.py copy NAME TRUST_ROOT

TRUST_ROOT is the sha256 `tailor user init` printed. Exit 0 when every check holds, else 1 with
the first failing object named. See docs/security.md for what each check proves.
"""

import base64
import hashlib
import json
import re
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00")


def canonical(value) -> bytes:
    """The bytes an event was hashed and signed over: RFC 8785 where it says so, else sorted compact UTF-8."""
    if value.get("canonical") == "rfc8785":
        import rfc8785

        return rfc8785.dumps(value)
    if "canonical" in value:
        sys.exit(f"FAIL: an event names an unknown canonical form {value['canonical']!r}")
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


def parsed_time(path: Path, event: dict, after):
    """The event's time: exactly as Tailor writes it, not before ``after``, not in the future."""
    text = event.get("time")
    if not isinstance(text, str) or not TIME.fullmatch(text):
        sys.exit(f"FAIL {path}: time {text!r} is not YYYY-MM-DDTHH:MM:SS.ffffff+00:00")
    when = datetime.fromisoformat(text)
    if after is not None and when < after:
        sys.exit(f"FAIL {path}: dated before the event it follows")
    if when > datetime.now(timezone.utc) + timedelta(minutes=5):
        sys.exit(f"FAIL {path}: dated in the future")
    return when


def valid(key, when) -> bool:
    """Confirmed (``from`` set), valid from before ``when`` and not disabled by then."""
    return key["from"] is not None and key["from"] <= when and (key["disabled"] is None or when < key["disabled"])


def disable(keys: dict, person: str, when, keep: str = "") -> None:
    for kid, record in keys.items():
        if record["person"] == person and kid != keep and record["disabled"] is None:
            record["disabled"] = when


def main(copy: str, name: str, trust_root: str) -> None:
    keys, pending, recovery, legacy, last = {}, {}, None, {}, None
    # The quorum and rules the keyring's first event recorded (keyrings from before: a quorum of 2, the defaults).
    rules = {"quorum": 2, "production_alias": "production", "four_eyes_production": True}
    for path, event in chain(Path(copy) / "keys"):
        when = last = parsed_time(path, event, last)
        signer = None
        if event["seq"] == 1:
            if event["sha256"] != trust_root or event["action"] != "init":
                sys.exit(f"FAIL {path}: the keyring does not start at the trust root")
            signer_key, recovery = event["public_key"], event["recovery_public_key"]
            legacy = event["legacy_heads"] or {}
            rules.update(event.get("rules") or {})
        elif recovery and event["signer"] == key_id(recovery):
            signer_key = recovery
        else:
            signer = keys.get(event["signer"])
            if signer is None or signer["role"] != "admin" or not valid(signer, when):
                sys.exit(f"FAIL {path}: not signed by an admin valid then, nor by the recovery key")
            signer_key = signer["public_key"]
        if not signature_holds(signer_key, event["signature"], event):
            sys.exit(f"FAIL {path}: its signature does not hold")
        # With a quorum of 2 while two admins or more are valid, key changes and an admin's disable wait
        # for another admin.
        admins = {r["person"] for r in keys.values() if r["role"] == "admin" and valid(r, when)}
        target_is_admin = any(r["person"] == event["person"] and r["role"] == "admin" for r in keys.values())
        waits = (
            rules["quorum"] >= 2
            and len(admins) >= 2
            and (event["action"] in ("add", "rotate") or (event["action"] == "disable" and target_is_admin))
        )
        if waits:
            pending[event["sha256"]] = event
        if event["action"] in ("init", "add", "rotate"):
            new = key_id(event["public_key"])
            keys[new] = {
                "person": event["person"],
                "role": event["role"],
                "public_key": event["public_key"],
                "from": None if waits else when,
                "disabled": None,
            }
            if not waits:
                disable(keys, event["person"], when, keep=new)
        elif event["action"] == "disable" and not waits:
            disable(keys, event["person"], when)
        elif event["action"] == "confirm":
            confirmed = pending.pop(event["confirms"], None)
            first = keys.get(confirmed["signer"]) if confirmed else None
            if confirmed is None or (first and signer and first["person"] == signer["person"]):
                sys.exit(f"FAIL {path}: confirms nothing pending, or its own change")
            if confirmed["action"] == "disable":
                disable(keys, confirmed["person"], when)
            else:
                new = key_id(confirmed["public_key"])
                disable(keys, confirmed["person"], when, keep=new)
                keys[new]["from"] = when
        print(
            f"ok   {path.name}: {event['action']} {event['person']} {event.get('role') or ''}"
            + (" (waits for a second admin)" if waits else "")
        )
    registered_by, sealed, last = {}, legacy.get(name, [0, ""]), None
    for path, event in chain(Path(copy) / "audit" / name):
        when = last = parsed_time(path, event, last)
        if "signature" not in event:
            if event["seq"] > sealed[0] or (event["seq"] == sealed[0] and event["sha256"] != sealed[1]):
                sys.exit(f"FAIL {path}: unsigned, and not the legacy history the keyring sealed")
            print(f"ok   {path.name}: unsigned legacy {event['action']} {event['version']} by {event['actor']}")
            registered_by.setdefault(event["version"], event["actor"])
            continue
        key = keys.get(event["key_id"])
        if key is None or not valid(key, when):
            sys.exit(f"FAIL {path}: signed by a key not valid at {event['time']} (unknown, unconfirmed or disabled)")
        if not signature_holds(key["public_key"], event["signature"], event):
            sys.exit(f"FAIL {path}: its signature does not hold")
        if (event["actor"], event["role"]) != (key["person"], key["role"]):
            sys.exit(f"FAIL {path}: names {event['actor']} ({event['role']}) but {key['person']} signed it")
        production = event["action"] in ("promote", "rollback") and event["alias"] == rules["production_alias"]
        if production and event["role"] not in ("admin", "approver"):
            sys.exit(f"FAIL {path}: role {event['role']} moved production")
        own = registered_by.get(event["version"]) == event["actor"]
        if event["action"] == "promote" and production and rules["four_eyes_production"] and own:
            sys.exit(f"FAIL {path}: four-eyes: {event['actor']} promoted their own version")
        if event["action"] == "register":
            registered_by[event["version"]] = event["actor"]
        print(f"ok   {path.name}: {event['action']} {event['version']} signed by {event['actor']} ({event['role']})")
    print(f"verified: {name} against trust root {trust_root[:16]}…")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
