"""Writing the adapter folder: refuse a folder that is not ours to replace, write into a staging
folder, then publish it whole."""

from __future__ import annotations

import csv
import hashlib
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from pipelines.records import LabeledBatch
from registry.adapter_folder import FOLDER_ENTRIES
from registry.errors import AlreadyExistsError, RefusedError


def prepare_output(out_dir: Path, force: bool) -> None:
    """Refuse to overwrite, unless forced and the folder holds only what a previous run wrote, and
    make sure the adapter can be written there: all before training, not after it.

    Raises:
        AlreadyExistsError: the folder exists and ``force`` is off.
        RefusedError: ``out_dir`` is a file or a device; forced, but the folder holds files a training
            run never writes (user data); or its parent folder cannot be written.
        OSError: a part of the path is a file.
    """
    out_dir = Path(out_dir)
    if out_dir.exists():
        if not out_dir.is_dir():
            raise RefusedError(f"--out {out_dir} exists and is not a folder; Tailor will not replace it")
        if not force:
            raise AlreadyExistsError(
                f"output folder {out_dir} already exists; choose another --out or pass --force to replace it"
            )
        foreign = sorted(p.name for p in out_dir.iterdir() if p.name not in FOLDER_ENTRIES)
        if foreign:
            raise RefusedError(
                f"--force refused: {out_dir} holds files a training run does not write "
                f"({', '.join(foreign[:5])}); move them away or choose another --out"
            )
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    # The finished adapter is staged beside out_dir and renamed into place: probe that now.
    try:
        os.rmdir(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    except OSError as err:
        raise RefusedError(f"cannot write the adapter into {out_dir.parent}: {err.strerror or err}") from None


def publish(staging: Path, out_dir: Path, force: bool) -> None:
    """Swap the finished folder into place so a crash never leaves half an adapter at ``out_dir``.

    Raises:
        AlreadyExistsError: ``out_dir`` appeared while this run trained (another run writing
            there) and ``force`` is off; both folders are left as they are.
    """
    if out_dir.exists() and not force:
        raise AlreadyExistsError(
            f"{out_dir} appeared while this run was training (another run writing there?); it is "
            f"left alone and this run's adapter is kept at {staging}: move it where you want it"
        )
    if out_dir.exists():
        # A name of this run's own: a fixed one left by a run that died here would block every later --force.
        old = out_dir.with_name(f".{out_dir.name}.replaced.{os.getpid()}.{time.monotonic_ns()}")
        out_dir.rename(old)
        staging.rename(out_dir)
        shutil.rmtree(old)
    else:
        staging.rename(out_dir)


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def sha256_file(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def write_reference(path: Path, batch: LabeledBatch, rows: np.ndarray) -> None:
    """The exact rows trained on (after noise filtering): the drift reference for this adapter."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "label"] + (["group"] if batch.groups is not None else []))
        for i in rows:
            writer.writerow([batch.texts[i], batch.labels[i]] + ([batch.groups[i]] if batch.groups is not None else []))
