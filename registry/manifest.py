"""What a registered adapter version is: its files' hashes, base model, PEFT summary and evidence.

The manifest is built from the adapter folder's own JSON files (read as plain JSON: the registry
never imports ``pipelines``). Its ``content_sha256`` is the hash of everything else in it, so a
manifest edited on the store no longer matches the hash its ``register`` audit event recorded.
"""

from __future__ import annotations

import json
import os
import re
import struct
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from registry.canonical import canonical_json, canonical_sha256
from registry.errors import IntegrityError, NotFoundError, RefusedError
from registry.fingerprint import BaseModelFingerprint, file_sha256
from registry.model_card import CARD_FILE, parse_card

MANIFEST_FORMAT = 1
MANIFEST_FILE = "manifest.json"
GATE_DECISION_FILE = "gate_decision.json"
QUALITY_FILE = "reports/quality.json"  # `tailor evaluate`'s holdout quality: its numbers go into the metrics
WEIGHTS_FILE = "adapter_model.safetensors"
REQUIRED_FILES = ("adapter_config.json", WEIGHTS_FILE, "tailor_adapter.json")
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
# A safetensors header is a small JSON document; a larger "length" means the file is something else.
MAX_SAFETENSORS_HEADER = 100 * 1024 * 1024
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_VERSION = re.compile(r"v([1-9][0-9]{0,8})")
_SHA256 = re.compile(r"[0-9a-f]{64}")


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


def is_sha256(value: Any) -> bool:
    """A hex sha256 as hashlib writes it: 64 lowercase hex characters."""
    return isinstance(value, str) and _SHA256.fullmatch(value) is not None


def safe_relpath(path: str) -> str:
    """A manifest path must stay inside the version folder wherever it is written.

    Raises:
        IntegrityError: absolute, backslashes, empty segments or '..'.
    """
    if not path or "\\" in path or any(part in ("", ".", "..") for part in path.split("/")):
        raise IntegrityError(f"manifest lists an unsafe file path {path!r}")
    return path


@dataclass(frozen=True)
class FileEntry:
    sha256: str
    size: int


@dataclass(frozen=True)
class PeftSummary:
    peft_type: str | None
    r: int | None
    lora_alpha: float | None
    target_modules: list[str]
    modules_to_save: list[str]
    task_type: str | None


def gate_verdict(passed: bool, failures: list, not_judged: list) -> str:
    """One word for a gate decision, the same everywhere it is shown: passed, failed or not judged."""
    return "passed" if passed else ("failed" if failures or not not_judged else "not judged")


@dataclass(frozen=True)
class GateSummary:
    """The gate decision in brief; the full decision stays in the version's gate_decision.json."""

    passed: bool
    policy_sha256: str | None
    policy_version: str | None
    failures: list[str] = field(default_factory=list)
    against: str | None = None  # what the candidate was compared with: NAME:VERSION of production then, or None
    adapter_sha256: str | None = None  # the weights it judged (decisions written before 2026-12-06 lack it)
    # Checks the gate could not judge ("CHECK: not judged: why"), e.g. load on a machine too busy: neither
    # passed nor failed, and the only part of a verdict a later ``judge`` event may change.
    not_judged: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        return gate_verdict(self.passed, self.failures, self.not_judged)

    def consistent(self) -> bool:
        """Passed exactly when nothing failed and every check was judged."""
        return self.passed == (not self.failures and not self.not_judged)

    def unjudged_checks(self) -> set[str]:
        return {why.partition(":")[0] for why in self.not_judged}


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
        hashes = {"base_model.weights_sha256": self.base_model.weights_sha256,
                  "base_model.tokenizer_sha256": self.base_model.tokenizer_sha256}  # fmt: skip
        if self.gate is not None and self.gate.policy_sha256 is not None:
            hashes["gate.policy_sha256"] = self.gate.policy_sha256
        hashes.update({f"files[{rel!r}].sha256": e.sha256 for rel, e in self.files.items()})
        sizes = {f"files[{rel!r}].size": e.size for rel, e in self.files.items()}
        return [f"{key} is not a sha256 (64 lowercase hex characters)" for key, value in hashes.items()
                if not is_sha256(value)] + [
                f"{key} is not a byte count (a non-negative integer)" for key, value in sizes.items()
                if not isinstance(value, int) or isinstance(value, bool) or value < 0]  # fmt: skip

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


@dataclass(frozen=True)
class AdapterFolder:
    """An adapter folder that passed every check, with its files hashed and its JSON parsed."""

    root: Path
    files: dict[str, FileEntry]
    adapter: dict[str, Any]
    adapter_config: dict[str, Any]
    train_result: dict[str, Any] | None
    gate_decision: dict[str, Any] | None
    quality: dict[str, Any] | None = None
    card: dict[str, Any] | None = None

    def base_model(self) -> BaseModelFingerprint:
        return BaseModelFingerprint(
            model_id=str(self.adapter.get("base_model_id")),
            weights_sha256=str(self.adapter.get("base_model_weights_sha256")),
            tokenizer_sha256=str(self.adapter.get("base_model_tokenizer_sha256")),
        )


def safetensors_header_problem(path: Path) -> str | None:
    """Why ``path`` is not a safetensors file (its header, read without loading any tensor), or None."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            return "too short"
        (length,) = struct.unpack("<Q", head)
        if length > min(size - 8, MAX_SAFETENSORS_HEADER):
            return "bad header length"
        try:
            header = json.loads(fh.read(length))
        except (ValueError, UnicodeDecodeError):
            return "header is not JSON"
    return None if isinstance(header, dict) else "header is not a JSON object"


def read_json_object(path: Path) -> dict[str, Any]:
    """The JSON object in a UTF-8 file.

    Raises:
        ValueError: why it is not one, worded to follow the file's name.
    """
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:  # UnicodeDecodeError is a ValueError
        raise ValueError(f"is not readable JSON ({err})") from None
    if not isinstance(value, dict):
        raise ValueError(f"must hold a JSON object, not {type(value).__name__}")
    return value


def _read_json(path: Path, rel: str, problems: list[str]) -> dict[str, Any] | None:
    try:
        return read_json_object(path)
    except ValueError as err:
        problems.append(f"{rel} {err}")
        return None


def _walk(root: Path, problems: list[str]) -> list[str]:
    """Every regular file under ``root`` as a POSIX relative path; odd entries become problems."""
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        for entry in sorted(dirnames + filenames):
            full = Path(dirpath) / entry
            rel = full.relative_to(root).as_posix()
            if full.is_symlink():
                problems.append(f"{rel} is a symbolic link: the registry stores real files only")
                if entry in dirnames:
                    dirnames.remove(entry)
            elif entry in filenames:
                if not full.is_file():
                    problems.append(f"{rel} is not a regular file")
                elif rel.lower().endswith(PICKLE_SUFFIXES):
                    problems.append(
                        f"{rel} is a pickle file ({', '.join('*' + s for s in PICKLE_SUFFIXES)}): "
                        "pickle runs code when loaded; save weights as safetensors"
                    )
                else:
                    found.append(rel)
    return sorted(found)


def inspect_adapter_folder(path: Path, base_model: BaseModelFingerprint) -> AdapterFolder:
    """Check an adapter folder for registration and hash its files; report every problem at once.

    Raises:
        NotFoundError: the folder does not exist.
        RefusedError: missing files, weights that are not safetensors, a pickle file anywhere,
            unreadable JSON, or a base model other than ``base_model`` (id or hashes).
    """
    root = Path(path)
    if not root.is_dir():
        raise NotFoundError(f"adapter folder {root} does not exist or is not a folder")
    problems: list[str] = []
    files = _walk(root, problems)
    for required in REQUIRED_FILES:
        if required not in files:
            why = " (weights must be safetensors)" if required.endswith(".safetensors") else ""
            problems.append(f"missing {required}{why}")
    if MANIFEST_FILE in files:
        problems.append(f"{MANIFEST_FILE} is reserved: the registry writes it")
    for rel in files:
        if rel.endswith(".safetensors") and (problem := safetensors_header_problem(root / rel)):
            problems.append(f"{rel} is not a safetensors file ({problem})")
    parsed = {
        rel: _read_json(root / rel, rel, problems)
        for rel in ("adapter_config.json", "tailor_adapter.json", "train_result.json", GATE_DECISION_FILE,
                    QUALITY_FILE, CARD_FILE)
        if rel in files
    }
    card = None
    if parsed.get(CARD_FILE) is not None:
        try:
            card = parse_card(parsed[CARD_FILE]).to_dict()
        except ValueError as err:
            problems.append(f"{CARD_FILE}: {err}")
    adapter = parsed.get("tailor_adapter.json")
    if adapter is not None:
        problems.extend(_adapter_problems(adapter, base_model))
    if (decision := parsed.get(GATE_DECISION_FILE)) is not None:
        problems.extend(_gate_problems(decision))
    if problems:
        raise RefusedError(f"refused adapter folder {root}: " + "; ".join(problems))
    return AdapterFolder(
        root=root,
        files={rel: FileEntry(sha256=file_sha256(root / rel), size=(root / rel).stat().st_size) for rel in files},
        adapter=adapter or {},
        adapter_config=parsed["adapter_config.json"] or {},
        train_result=parsed.get("train_result.json"),
        gate_decision=parsed.get(GATE_DECISION_FILE),
        quality=parsed.get(QUALITY_FILE),
        card=card,
    )


def holdout_metrics(quality: dict[str, Any] | None) -> dict[str, Any]:
    """The holdout numbers of `tailor evaluate`'s quality report, as manifest metrics (none when absent)."""
    details = quality.get("details") if isinstance(quality, dict) else None
    if not isinstance(details, dict):
        return {}
    number = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)  # noqa: E731
    found = {f"holdout_{key}": details[key] for key in ("macro_f1", "accuracy") if number(details.get(key))}
    if number(details.get("examples")):
        found["holdout_rows"] = details["examples"]
    per_class = {str(row["label"]): row["f1"] for row in details.get("per_class") or []
                 if isinstance(row, dict) and "label" in row and number(row.get("f1"))}  # fmt: skip
    if per_class:
        found["holdout_per_class_f1"] = per_class
    return found


def same_base(trained_on: BaseModelFingerprint, base: BaseModelFingerprint) -> bool:
    """The same weights and tokenizer content; the model id is a label (a name set in one place,
    derived in another, or renamed across an upgrade) and never decides."""
    return trained_on.matches(base)


def _adapter_problems(adapter: dict[str, Any], base: BaseModelFingerprint) -> list[str]:
    problems = []
    labels = adapter.get("labels")
    if not (isinstance(labels, list) and labels and all(isinstance(x, str) for x in labels)):
        problems.append("tailor_adapter.json: 'labels' must be a non-empty list of strings")
    keys = ("base_model_id", "base_model_weights_sha256", "base_model_tokenizer_sha256")
    missing = [k for k in keys if not isinstance(adapter.get(k), str)]
    if missing:
        problems.append(f"tailor_adapter.json: missing {', '.join(missing)}")
        return problems
    trained_on = BaseModelFingerprint(*(adapter[k] for k in keys))
    if not same_base(trained_on, base):
        problems.append(
            f"base model mismatch: the adapter was trained on '{trained_on.model_id}' (weights "
            f"{trained_on.weights_sha256[:12]}, tokenizer {trained_on.tokenizer_sha256[:12]}) but the configured "
            f"base is '{base.model_id}' (weights {base.weights_sha256[:12]}, tokenizer {base.tokenizer_sha256[:12]})"
        )
    return problems


def _gate_problems(decision: Any) -> list[str]:
    """A decision whose verdict does not follow from its own failures was edited (or is not one)."""
    if not isinstance(decision, dict) or not isinstance(decision.get("passed"), bool) \
            or not isinstance(decision.get("failures"), list):  # fmt: skip
        return ["gate_decision.json is not a gate decision (needs 'passed' true/false and a 'failures' list)"]
    if decision.get("policy_sha256") is not None and not is_sha256(decision["policy_sha256"]):
        return ["gate_decision.json: 'policy_sha256' must be 64 lowercase hex characters (the policy's sha256)"]
    # A check the gate could not judge (load on a busy machine) keeps it from passing without failing it.
    not_judged = decision.get("not_judged")
    failures = len(decision["failures"]) + (len(not_judged) if isinstance(not_judged, list) else 0)
    if decision["passed"] == bool(failures):
        return [f"gate_decision.json says passed={str(decision['passed']).lower()} with {failures} failure(s): it "
                "was edited; run `tailor evaluate` (or `tailor gate`) again"]
    return []


def peft_summary(config: dict[str, Any]) -> PeftSummary:
    def names(value: Any) -> list[str]:
        if isinstance(value, str):
            return [value]
        return sorted(str(v) for v in value) if isinstance(value, (list, tuple)) else []

    return PeftSummary(
        peft_type=config.get("peft_type"),
        r=config.get("r"),
        lora_alpha=config.get("lora_alpha"),
        target_modules=names(config.get("target_modules")),
        modules_to_save=names(config.get("modules_to_save")),
        task_type=config.get("task_type"),
    )


def gate_summary(decision: dict[str, Any] | None) -> GateSummary | None:
    """Brief form of a GateDecision JSON: every failed threshold as one readable line."""
    if decision is None:
        return None

    def number(value: Any) -> Any:
        return f"{value:.4g}" if isinstance(value, float) else value

    failures = [
        f"{f.get('check')}.{f.get('metric')} = {number(f.get('value'))}, needs {f.get('comparison')} "
        f"{number(f.get('limit'))}" + (f" (policy {f['policy_key']})" if f.get("policy_key") else "")
        for f in decision.get("failures", [])
        if isinstance(f, dict)
    ]
    return GateSummary(
        passed=decision.get("passed") is True,
        policy_sha256=decision.get("policy_sha256"),
        policy_version=decision.get("policy_version"),
        failures=failures,
        against=decision.get("against") if isinstance(decision.get("against"), str) else None,
        adapter_sha256=decision.get("adapter_sha256") if isinstance(decision.get("adapter_sha256"), str) else None,
        not_judged=[why for why in decision.get("not_judged", []) if isinstance(why, str)],
    )


def gate_binding_problem(manifest: Manifest, *, required: bool) -> str | None:
    """Why ``manifest``'s gate decision does not hold for its own weights: it names other weights (a
    decision copied from another adapter's folder), or, where ``required``, none at all."""
    gate, weights = manifest.gate, manifest.files.get(WEIGHTS_FILE)
    if gate is None or weights is None:
        return None
    if gate.adapter_sha256 is None:
        return (f"{manifest.name} {manifest.version}'s gate_decision.json does not name the weights it judged (written "
                "by an older Tailor): evaluate the folder again") if required else None  # fmt: skip
    if gate.adapter_sha256 != weights.sha256:
        return (f"{manifest.name} {manifest.version}'s gate_decision.json judged other weights (sha256 "
                f"{gate.adapter_sha256[:12]}…) than its {WEIGHTS_FILE} ({weights.sha256[:12]}…): it was copied from "
                "another adapter's folder; evaluate this folder")  # fmt: skip
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


def build_manifest(folder: AdapterFolder, name: str, version: str, *, created_by: str, created_role: str,
                   created_at: str, reason: str) -> Manifest:  # fmt: skip
    """The manifest of ``folder`` registered as ``name``/``version``, its content hash filled in."""
    train = folder.train_result or {}
    max_length = folder.adapter.get("max_length")
    manifest = Manifest(
        name=validate_name(name),
        version=version,
        files=dict(sorted(folder.files.items())),
        base_model=folder.base_model(),
        peft=peft_summary(folder.adapter_config),
        labels=list(folder.adapter["labels"]),
        max_length=max_length if isinstance(max_length, int) else None,
        intended_use=(folder.card or {}).get("intended_use") or folder.adapter.get("intended_use"),
        data_version=train.get("data_version") or folder.adapter.get("data_version"),
        metrics={**(train.get("metrics") or {}), **holdout_metrics(folder.quality)},
        cost=train.get("cost"),
        gate=gate_summary(folder.gate_decision),
        created_by=created_by,
        created_role=created_role,
        created_at=created_at,
        reason=reason,
    )
    return replace(manifest, content_sha256=canonical_sha256(manifest.body()))
