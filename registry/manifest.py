"""What a registered adapter version is: its files' hashes, base model, PEFT summary and evidence.

The manifest is built from an inspected adapter folder (``registry.adapter_folder``). Its
``content_sha256`` is the hash of everything else in it, so a manifest edited on the store no
longer matches the hash its ``register`` audit event recorded.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, replace
from typing import Any

from registry.adapter_folder import WEIGHTS_FILE, AdapterFolder, FileEntry, PeftSummary
from registry.canonical import canonical_json, canonical_sha256
from registry.errors import IntegrityError, RefusedError
from registry.fingerprint import BaseModelFingerprint, is_sha256
from registry.gate_summary import GateSummary

MANIFEST_FORMAT = 1
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_VERSION = re.compile(r"v([1-9][0-9]{0,8})")


def validate_name(name: str) -> str:
    """Return ``name`` when it is safe as one path segment of an object key.

    Raises:
        RefusedError: path characters, spaces, '..', or more than 64 characters.
    """
    if not _NAME.fullmatch(name or "") or ".." in name:
        raise RefusedError(
            f"adapter name {name!r} is refused: use 1-64 letters, digits, '.', '_' or '-', starting with a "
            "letter or digit (no path characters, spaces or '..')"
        )
    return name


def version_number(version: str) -> int:
    """``"v3"`` → 3.

    Raises:
        RefusedError: not of the form v1, v2, …
    """
    match = _VERSION.fullmatch(version or "")
    if not match:
        raise RefusedError(f"version {version!r} is not a version id (v1, v2, …)")
    return int(match.group(1))


def is_version(ref: str) -> bool:
    return _VERSION.fullmatch(ref or "") is not None


def safe_relpath(path: str) -> str:
    """A manifest path must stay inside the version folder wherever it is written.

    Raises:
        IntegrityError: absolute, backslashes, empty segments or '..'.
    """
    if not path or "\\" in path or any(part in ("", ".", "..") for part in path.split("/")):
        raise IntegrityError(f"manifest lists an unsafe file path {path!r}")
    return path


@dataclass(frozen=True)
class Manifest:
    name: str
    version: str
    files: dict[str, FileEntry]
    base_model: BaseModelFingerprint
    peft: PeftSummary
    labels: list[str]
    max_length: int | None
    intended_use: str | None
    data_version: str | None
    metrics: dict[str, Any]
    cost: dict[str, Any] | None
    gate: GateSummary | None
    created_by: str
    created_role: str
    created_at: str
    reason: str
    content_sha256: str = ""
    format: int = MANIFEST_FORMAT

    def body(self) -> dict[str, Any]:
        """Everything but the content hash: what the hash is computed over."""
        data = asdict(self)
        data.pop("content_sha256")
        return data

    def to_json(self) -> bytes:
        return canonical_json(asdict(self))

    def malformed_fields(self) -> list[str]:
        """Every hash or size that is not what the registry writes, each as a sentence naming the field.

        A manifest with a consistent content hash can still be forged by anyone who may write the
        bucket; its values end up in reports and checks, so each must be what it claims to be.
        """
        hashes = {
            "base_model.weights_sha256": self.base_model.weights_sha256,
            "base_model.tokenizer_sha256": self.base_model.tokenizer_sha256,
        }
        if self.gate is not None and self.gate.policy_sha256 is not None:
            hashes["gate.policy_sha256"] = self.gate.policy_sha256
        hashes.update({f"files[{rel!r}].sha256": e.sha256 for rel, e in self.files.items()})
        sizes = {f"files[{rel!r}].size": e.size for rel, e in self.files.items()}
        return [
            f"{key} is not a sha256 (64 lowercase hex characters)"
            for key, value in hashes.items()
            if not is_sha256(value)
        ] + [
            f"{key} is not a byte count (a non-negative integer)"
            for key, value in sizes.items()
            if not isinstance(value, int) or isinstance(value, bool) or value < 0
        ]

    @classmethod
    def from_json(cls, data: bytes, where: str) -> "Manifest":
        """Parse a stored manifest, prove its content hash and check every hash and size in it.

        Raises:
            IntegrityError: not a manifest, its content no longer matches its hash, or a hash or
                size is malformed (the message names the field).
        """
        try:
            raw = json.loads(data)
            manifest = cls(
                **{
                    **raw,
                    "files": {safe_relpath(p): FileEntry(**e) for p, e in raw["files"].items()},
                    "base_model": BaseModelFingerprint(**raw["base_model"]),
                    "peft": PeftSummary(**raw["peft"]),
                    "gate": GateSummary(**raw["gate"]) if raw.get("gate") is not None else None,
                }
            )
        except IntegrityError:
            raise
        except (ValueError, TypeError, KeyError, AttributeError) as err:
            raise IntegrityError(f"{where} is not a valid manifest: {err}") from None
        # Over the fields as stored, not as parsed: a field added since (GateSummary.against) takes its
        # default on read, and hashing that would call every older manifest modified.
        if canonical_sha256({k: v for k, v in raw.items() if k != "content_sha256"}) != manifest.content_sha256:
            raise IntegrityError(f"{where} was modified: its content does not match its content_sha256")
        if problems := manifest.malformed_fields():
            raise IntegrityError(f"{where} is not a valid manifest: {'; '.join(problems)}")
        return manifest


def gate_binding_problem(manifest: Manifest, *, required: bool) -> str | None:
    """Why ``manifest``'s gate decision does not hold for its own weights: it names other weights (a
    decision copied from another adapter's folder), or, where ``required``, none at all."""
    gate, weights = manifest.gate, manifest.files.get(WEIGHTS_FILE)
    if gate is None or weights is None:
        return None
    if gate.adapter_sha256 is None:
        return (
            (
                f"{manifest.name} {manifest.version}'s gate_decision.json does not name the weights it judged (written "
                "by an older Tailor): evaluate the folder again"
            )
            if required
            else None
        )
    if gate.adapter_sha256 != weights.sha256:
        return (
            f"{manifest.name} {manifest.version}'s gate_decision.json judged other weights (sha256 "
            f"{gate.adapter_sha256[:12]}…) than its {WEIGHTS_FILE} ({weights.sha256[:12]}…): it was copied from "
            "another adapter's folder; evaluate this folder"
        )
    return None


def recorded_against(manifest: Manifest, decision: bytes | None) -> str | None:
    """What ``manifest``'s gate compared the candidate with (NAME:VERSION), given the bytes of the
    version's proven gate_decision.json.

    Manifests registered before 2026-11-28 lack ``gate.against``: read as None, it would claim their
    gate compared with nothing. The decision file, whose summary the manifest holds and whose hash
    it lists, has recorded it all along.
    """
    if manifest.gate is None or manifest.gate.against is not None or decision is None:
        return manifest.gate.against if manifest.gate is not None else None
    try:
        parsed = json.loads(decision)
    except ValueError:
        return None
    against = parsed.get("against") if isinstance(parsed, dict) else None
    return against if isinstance(against, str) else None


def holdout_metrics(quality: dict[str, Any] | None) -> dict[str, Any]:
    """The holdout numbers of `tailor evaluate`'s quality report, as manifest metrics (none when absent)."""
    details = quality.get("details") if isinstance(quality, dict) else None
    if not isinstance(details, dict):
        return {}
    number = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)  # noqa: E731
    found = {f"holdout_{key}": details[key] for key in ("macro_f1", "accuracy") if number(details.get(key))}
    if number(details.get("examples")):
        found["holdout_rows"] = details["examples"]
    per_class = {
        str(row["label"]): row["f1"]
        for row in details.get("per_class") or []
        if isinstance(row, dict) and "label" in row and number(row.get("f1"))
    }
    if per_class:
        found["holdout_per_class_f1"] = per_class
    return found


def build_manifest(
    folder: AdapterFolder, name: str, version: str, *, created_by: str, created_role: str, created_at: str, reason: str
) -> Manifest:
    """The manifest of ``folder`` registered as ``name``/``version``, its content hash filled in."""
    meta = folder.meta
    manifest = Manifest(
        name=validate_name(name),
        version=version,
        files=dict(sorted(folder.files.items())),
        base_model=meta.base_model,
        peft=folder.peft,
        labels=list(meta.labels),
        max_length=meta.max_length,
        intended_use=(folder.card or {}).get("intended_use") or meta.intended_use,
        data_version=folder.train.data_version or meta.data_version,
        metrics={**folder.train.metrics, **holdout_metrics(folder.quality)},
        cost=folder.train.cost,
        gate=folder.gate,
        created_by=created_by,
        created_role=created_role,
        created_at=created_at,
        reason=reason,
    )
    return replace(manifest, content_sha256=canonical_sha256(manifest.body()))
