"""A base folder's tokenizer and encoder, loaded once per process.

A retrain reads the same base in every step (tokenizer coverage, the noise audit, drift, the
baselines, the checks): loading it each time cost ~1 s a load, the first with the transformers
import. What is cached is keyed by the folder's identity (:func:`folder_identity`), taken before and
after each load, so a base replaced in place (new weights, a new tokenizer) is loaded again, never
served from the cache.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from registry.errors import RefusedError
from serving.encoder import check_model_dir, load_encoder, load_tokenizer

# Bases kept per process (a retrain's and a second one, as a server of two bases holds); an older
# identity of the same folder is dropped as soon as the new one is loaded.
MAX_BASES = 2
LOAD_TRIES = 3


@dataclass(frozen=True)
class FolderIdentity:
    """A base folder as it is now: its resolved path and every file's name, size, mtime, ctime (ns),
    inode and device.

    Stat-only, so cheap to take on every call. Size and mtime alone miss a base replaced by a copy that
    keeps them (``cp -p``, ``rsync -a``, an image with fixed timestamps): a copy is a new inode and its
    ctime is the time of the copy, which no tool can set back."""

    path: str
    files: tuple[tuple[str, int, int, int, int, int], ...]


def folder_identity(model_dir: Path) -> FolderIdentity:
    folder = Path(model_dir).resolve()
    files = []
    for entry in sorted(folder.iterdir()):
        if entry.is_file():
            stat = entry.stat()
            files.append((entry.name, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino, stat.st_dev))
    return FolderIdentity(str(folder), tuple(files))


@dataclass(frozen=True)
class BaseTokenizer:
    """A base's tokenizer with the lock every caller holds while calling it (fast tokenizers are not
    safe to call from several threads at once: "Already borrowed")."""

    identity: FolderIdentity
    tokenizer: Any
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


@dataclass(frozen=True)
class FrozenEncoder:
    """A base's frozen encoder (eval mode, no gradients, on ``device``) and its shared tokenizer."""

    identity: FolderIdentity
    device: str
    tokenizer: Any
    tokenizer_lock: threading.Lock
    encoder: Any


_lock = threading.RLock()
_tokenizers: dict[FolderIdentity, BaseTokenizer] = {}
_encoders: dict[tuple[FolderIdentity, str], FrozenEncoder] = {}


def _loaded(model_dir: Path, load):
    """``load(folder)`` with the folder's identity, which must be the same before and after loading.

    Raises:
        RefusedError: the folder kept changing while it was loaded.
    """
    for _ in range(LOAD_TRIES):
        before = folder_identity(model_dir)
        value = load(model_dir)
        if folder_identity(model_dir) == before:
            return before, value
    raise RefusedError(f"base model folder {model_dir} kept changing while it was loaded; load it when it is complete")


def _keep(cache: dict, key, value) -> None:
    """Store ``value``, dropping what an older identity of the same folder left and the oldest beyond ``MAX_BASES``."""
    identity = _identity_of(key)
    for old in [k for k in cache if _identity_of(k).path == identity.path and _identity_of(k) != identity]:
        del cache[old]
    cache[key] = value
    while len(cache) > MAX_BASES:
        del cache[next(iter(cache))]


def _identity_of(key) -> FolderIdentity:
    return key[0] if isinstance(key, tuple) else key


def base_tokenizer(model_dir: Path) -> BaseTokenizer:
    """The tokenizer of the base in ``model_dir``, loaded once per identity (``check_model_dir`` first).

    Raises:
        NotFoundError, ConfigError, RefusedError: as ``serving.encoder.check_model_dir`` and ``load_tokenizer``.
    """
    model_dir = check_model_dir(Path(model_dir))
    with _lock:
        cached = _tokenizers.get(folder_identity(model_dir))
        if cached is None:
            identity, tokenizer = _loaded(model_dir, load_tokenizer)
            cached = BaseTokenizer(identity, tokenizer)
            _keep(_tokenizers, identity, cached)
        return cached


def frozen_encoder(model_dir: Path, device: str = "cpu") -> FrozenEncoder:
    """The frozen encoder of the base in ``model_dir`` on ``device`` (``cpu`` or ``cuda``), loaded once per
    identity and device, with :func:`base_tokenizer`'s tokenizer.

    Everyone in the process shares the returned encoder: it is never trained or changed in place
    (training and adapters work on ``LoadedBase.shared_copy``).

    Raises:
        NotFoundError, ConfigError, RefusedError: as ``serving.encoder.check_model_dir``, ``load_tokenizer``
            and ``load_encoder``.
    """
    import torch

    def load(folder: Path):
        encoder = load_encoder(folder)
        encoder.requires_grad_(False)
        return encoder.eval().to(torch.device(device))

    model_dir = check_model_dir(Path(model_dir))
    # One lock for every load: two threads asking for the same base wait for one load, not do two.
    with _lock:
        cached = _encoders.get((folder_identity(model_dir), device))
        if cached is not None:
            return cached
        identity, encoder = _loaded(model_dir, load)
        tokenizer = base_tokenizer(model_dir)
        if tokenizer.identity != identity:
            raise RefusedError(
                f"base model folder {model_dir} changed while it was loaded; load it when it is complete"
            )
        loaded = FrozenEncoder(identity, device, tokenizer.tokenizer, tokenizer.lock, encoder)
        _keep(_encoders, (identity, device), loaded)
        return loaded
