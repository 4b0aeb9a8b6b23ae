"""What an adapter folder is: its file names, its typed JSON files, and the checks it must pass.

The one home of the contract between the step that writes a folder (train, evaluate), the registry
that stores it and the runtime that loads it. It lives in the lowest layer so that each of them
reads the same names and the same types; the registry never imports ``pipelines``.
"""

from __future__ import annotations

import csv
import itertools
import json
import os
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from registry.errors import ConfigError, NotFoundError, RefusedError
from registry.files import read_json_object, safetensors_header_problem, write_atomic
from registry.fingerprint import BaseModelFingerprint, file_sha256, is_sha256
from registry.gate_summary import GateSummary, gate_summary
from registry.model_card import CARD_FILE, parse_card

META_FILE = "tailor_adapter.json"  # AdapterMeta
WEIGHTS_FILE = "adapter_model.safetensors"  # PEFT's LoRA weights and the head (modules_to_save)
CONFIG_FILE = "adapter_config.json"  # PEFT's own config
REFERENCE_FILE = "reference.csv"  # the rows it was trained on, for drift and load checks
TRAIN_RESULT_FILE = "train_result.json"  # pipelines.records.TrainResult; the registry reads TrainSummary
GATE_DECISION_FILE = "gate_decision.json"  # pipelines.records.GateDecision; the registry reads GateSummary
REPORTS_DIR = "reports"  # evidence: check reports, validation reports
GATE_REPORT_FILE = f"{REPORTS_DIR}/gate.md"
QUALITY_FILE = f"{REPORTS_DIR}/quality.json"  # `tailor evaluate`'s holdout quality: its numbers go into the metrics
README_FILE = "README.md"
MANIFEST_FILE = "manifest.json"  # written by the registry beside a stored version, never by a trainer
REQUIRED_FILES = (CONFIG_FILE, WEIGHTS_FILE, META_FILE)
# Every name a trained folder may hold at its top level; training refuses to overwrite a folder with others.
FOLDER_ENTRIES = frozenset(
    {
        META_FILE,
        WEIGHTS_FILE,
        CONFIG_FILE,
        REFERENCE_FILE,
        TRAIN_RESULT_FILE,
        README_FILE,
        GATE_DECISION_FILE,
        REPORTS_DIR,
        CARD_FILE,
    }
)
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
META_FORMAT = 1


@dataclass(frozen=True)
class AdapterMeta:
    """``tailor_adapter.json``: what is needed to rebuild the classifier besides PEFT's own files."""

    base_model_id: str
    base_model_weights_sha256: str
    base_model_tokenizer_sha256: str
    labels: list[str]
    max_length: int
    format: int = META_FORMAT
    pooling: str = "mean"
    normalize: bool = True
    intended_use: str | None = None  # written by hand for the model card; not by training
    data_version: str | None = None

    @property
    def base_model(self) -> BaseModelFingerprint:
        return BaseModelFingerprint(
            self.base_model_id, self.base_model_weights_sha256, self.base_model_tokenizer_sha256
        )

    def write(self, adapter_dir: Path) -> Path:
        return write_atomic(Path(adapter_dir) / META_FILE, json.dumps(asdict(self), indent=2, ensure_ascii=False))

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> "AdapterMeta":
        """The meta in a parsed ``tailor_adapter.json``; unknown keys are ignored (a newer writer's).

        Raises:
            ValueError: every field that is missing or of the wrong type, in one message.
        """
        wanted = {
            "base_model_id": str,
            "base_model_weights_sha256": str,
            "base_model_tokenizer_sha256": str,
            "labels": list,
            "max_length": int,
            "format": int,
            "pooling": str,
            "normalize": bool,
            "intended_use": (str, type(None)),
            "data_version": (str, type(None)),
        }
        required = {f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING}
        problems = [f"missing {key}" for key in wanted if key in required and key not in raw]
        problems += [
            f"'{key}' must be {_kind(kind)}"
            for key, kind in wanted.items()
            if key in raw and (not isinstance(raw[key], kind) or (kind is int and isinstance(raw[key], bool)))
        ]
        labels = raw.get("labels")
        if isinstance(labels, list) and not (labels and all(isinstance(x, str) for x in labels)):
            problems.append("'labels' must be a non-empty list of strings")
        if problems:
            raise ValueError("; ".join(problems))
        return cls(**{key: raw[key] for key in wanted if key in raw})

    @classmethod
    def read(cls, adapter_dir: Path) -> "AdapterMeta":
        """Read and check ``tailor_adapter.json``.

        Raises:
            NotFoundError: the file is missing.
            ConfigError: it is not a JSON object or lacks a field.
            RefusedError: a format this Tailor does not read.
        """
        path = Path(adapter_dir) / META_FILE
        if not path.is_file():
            raise NotFoundError(f"{adapter_dir} is not a Tailor adapter folder: {META_FILE} is missing")
        try:
            raw = read_json_object(path)
        except ValueError as err:
            raise ConfigError(f"{path} {err}") from None
        try:
            meta = cls.parse(raw)
        except ValueError as err:
            raise ConfigError(f"{path} is not a valid AdapterMeta: {err}") from None
        if meta.format != META_FORMAT:
            raise RefusedError(
                f"{path}: format {meta.format} is not supported (this Tailor reads format {META_FORMAT})"
            )
        return meta


def _kind(kind: type | tuple[type, ...]) -> str:
    names = {str: "a string", list: "a list", int: "an integer", bool: "true or false", type(None): "null"}
    return " or ".join(names[k] for k in (kind if isinstance(kind, tuple) else (kind,)))


@dataclass(frozen=True)
class TrainSummary:
    """What the registry keeps of ``train_result.json``: the data it was trained on, metrics and cost."""

    data_version: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    cost: dict[str, Any] | None = None

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> "TrainSummary":
        data_version, metrics, cost = raw.get("data_version"), raw.get("metrics"), raw.get("cost")
        return cls(
            data_version=data_version if isinstance(data_version, str) and data_version else None,
            metrics=dict(metrics) if isinstance(metrics, dict) else {},
            cost=cost if isinstance(cost, dict) else None,
        )


@dataclass(frozen=True)
class PeftSummary:
    """What the registry keeps of PEFT's ``adapter_config.json``."""

    peft_type: str | None
    r: int | None
    lora_alpha: float | None
    target_modules: list[str]
    modules_to_save: list[str]
    task_type: str | None


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


@dataclass(frozen=True)
class FileEntry:
    sha256: str
    size: int


@dataclass(frozen=True)
class AdapterFolder:
    """An adapter folder that passed every check, with its files hashed and its JSON files typed."""

    root: Path
    files: dict[str, FileEntry]
    meta: AdapterMeta
    peft: PeftSummary
    train: TrainSummary
    gate: GateSummary | None
    quality: dict[str, Any] | None = None  # `tailor evaluate`'s holdout quality report, for the metrics
    card: dict[str, Any] | None = None  # the trainer's model card (intended use, limitations, languages)


def reference_texts(adapter_dir: Path, most: int) -> list[str]:
    """The first ``most`` texts of the folder's reference.csv as training wrote it (UTF-8, a ``text``
    column), or none when the folder has no reference.

    Raises:
        ConfigError: the file is not such a CSV.
    """
    path = Path(adapter_dir) / REFERENCE_FILE
    if not path.is_file():
        return []
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = csv.DictReader(fh)
            if "text" not in (rows.fieldnames or []):
                raise ConfigError(f"{path} has no 'text' column: it is not the reference training writes")
            return [row["text"] or "" for row in itertools.islice(rows, most)]
    except (UnicodeDecodeError, csv.Error) as err:
        raise ConfigError(f"{path} is not the UTF-8 CSV training writes ({err})") from None


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
        for rel in (CONFIG_FILE, META_FILE, TRAIN_RESULT_FILE, GATE_DECISION_FILE, QUALITY_FILE, CARD_FILE)
        if rel in files
    }
    card = None
    if parsed.get(CARD_FILE) is not None:
        try:
            card = parse_card(parsed[CARD_FILE]).to_dict()
        except ValueError as err:
            problems.append(f"{CARD_FILE}: {err}")
    meta = None
    if (raw_meta := parsed.get(META_FILE)) is not None:
        try:
            meta = AdapterMeta.parse(raw_meta)
        except ValueError as err:
            problems.append(f"{META_FILE}: {err}")
        else:
            problems.extend(_base_problems(meta.base_model, base_model))
    if (decision := parsed.get(GATE_DECISION_FILE)) is not None:
        problems.extend(_gate_problems(decision))
    if problems or meta is None:
        raise RefusedError(f"refused adapter folder {root}: " + "; ".join(problems))
    return AdapterFolder(
        root=root,
        files={rel: FileEntry(sha256=file_sha256(root / rel), size=(root / rel).stat().st_size) for rel in files},
        meta=meta,
        peft=peft_summary(parsed[CONFIG_FILE] or {}),
        train=TrainSummary.parse(parsed.get(TRAIN_RESULT_FILE) or {}),
        gate=gate_summary(parsed.get(GATE_DECISION_FILE)),
        quality=parsed.get(QUALITY_FILE),
        card=card,
    )


def same_base(trained_on: BaseModelFingerprint, base: BaseModelFingerprint) -> bool:
    """The same weights and tokenizer content; the model id is a label (a name set in one place,
    derived in another, or renamed across an upgrade) and never decides."""
    return trained_on.matches(base)


def _base_problems(trained_on: BaseModelFingerprint, base: BaseModelFingerprint) -> list[str]:
    if same_base(trained_on, base):
        return []
    return [
        f"base model mismatch: the adapter was trained on '{trained_on.model_id}' (weights "
        f"{trained_on.weights_sha256[:12]}, tokenizer {trained_on.tokenizer_sha256[:12]}) but the configured "
        f"base is '{base.model_id}' (weights {base.weights_sha256[:12]}, tokenizer {base.tokenizer_sha256[:12]})"
    ]


def _gate_problems(decision: Any) -> list[str]:
    """A decision whose verdict does not follow from its own failures was edited (or is not one)."""
    if (
        not isinstance(decision, dict)
        or not isinstance(decision.get("passed"), bool)
        or not isinstance(decision.get("failures"), list)
    ):
        return [f"{GATE_DECISION_FILE} is not a gate decision (needs 'passed' true/false and a 'failures' list)"]
    if decision.get("policy_sha256") is not None and not is_sha256(decision["policy_sha256"]):
        return [f"{GATE_DECISION_FILE}: 'policy_sha256' must be 64 lowercase hex characters (the policy's sha256)"]
    # A check the gate could not judge (load on a busy machine) keeps it from passing without failing it.
    not_judged = decision.get("not_judged")
    failures = len(decision["failures"]) + (len(not_judged) if isinstance(not_judged, list) else 0)
    if decision["passed"] == bool(failures):
        return [
            f"{GATE_DECISION_FILE} says passed={str(decision['passed']).lower()} with {failures} failure(s): it "
            "was edited; run `tailor evaluate` (or `tailor gate`) again"
        ]
    return []
