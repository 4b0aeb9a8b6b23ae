"""Identify a base model by name and content hash, never by its local path.

Hashing needs no torch: it reads the files. Weights and tokenizer are hashed separately so a
manifest can say which of the two changed.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from registry.errors import NotFoundError
from registry.files import write_atomic

TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "special_tokens_map.json",
    "sentencepiece.bpe.model",
    "merges.txt",
    "vocab.json",
    "spiece.model",
)
CACHE_FILE = ".tailor-fingerprint.json"
_SHA256 = re.compile(r"[0-9a-f]{64}")


def is_sha256(value: object) -> bool:
    """A hex sha256 as hashlib writes it: 64 lowercase hex characters."""
    return isinstance(value, str) and _SHA256.fullmatch(value) is not None


@dataclass(frozen=True)
class BaseModelFingerprint:
    model_id: str
    weights_sha256: str
    tokenizer_sha256: str

    def matches(self, other: "BaseModelFingerprint") -> bool:
        return (self.weights_sha256, self.tokenizer_sha256) == (other.weights_sha256, other.tokenizer_sha256)


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _combined(paths: list[Path], root: Path) -> str:
    """One hash over several files, their names included so a rename changes it."""
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + file_sha256(path).encode() + b"\n")
    return digest.hexdigest()


def _stamp(paths: list[Path]) -> list[list]:
    return [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in sorted(paths)]


def base_model_fingerprint(model_dir: Path, model_id: str, cache_dir: Path | None = None) -> BaseModelFingerprint:
    """Hash the weights (*.safetensors) and tokenizer files of a local model folder.

    The result is cached in ``cache_dir`` (default: none) keyed by file names, sizes and mtimes,
    because hashing 90 MB on every command would cost ~0.3 s each time.

    Raises:
        NotFoundError: the folder or its safetensors weights are missing.
    """
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise NotFoundError(f"base model folder {model_dir} does not exist")
    weights = sorted(model_dir.glob("*.safetensors"))
    if not weights:
        raise NotFoundError(f"base model folder {model_dir} holds no *.safetensors weights")
    tokenizer = [model_dir / name for name in TOKENIZER_FILES if (model_dir / name).is_file()]
    stamp = {"dir": str(model_dir.resolve()), "id": model_id, "files": _stamp(weights + tokenizer)}
    cache = Path(cache_dir) / CACHE_FILE if cache_dir else None
    if cache and cache.is_file():
        try:
            cached = json.loads(cache.read_text(encoding="utf-8"))
            if isinstance(cached, dict) and cached.get("stamp") == stamp:
                fp = BaseModelFingerprint(**cached["fingerprint"])
                if all(isinstance(value, str) for value in asdict(fp).values()):
                    return fp
        except (ValueError, TypeError, KeyError):
            pass  # a damaged cache is only a cache: recompute
    fp = BaseModelFingerprint(
        model_id=model_id,
        weights_sha256=_combined(weights, model_dir),
        tokenizer_sha256=_combined(tokenizer, model_dir),
    )
    if cache:
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(cache, json.dumps({"stamp": stamp, "fingerprint": asdict(fp)}))
        except OSError:
            pass  # only a cache (a full or read-only home): the next run hashes again
    return fp
