"""Follow an alias in the registry and keep the adapter it names loaded, swapping without pauses.

One background thread polls the registry's newest audit sequence number (one small listing per
adapter name). When it moves, the thread resolves the alias, downloads the named version into a
fresh folder (the registry verifies every sha256), loads it next to the one being served, and
then replaces a single reference. Requests read that reference once, so a request in flight
finishes on the version it started with. A version that fails to download, verify or load is
never swapped in: the old one keeps answering and the failure is reported by ``health()``.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import stat
import tempfile
import threading
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Mapping, Protocol, Sequence

import numpy as np

from registry.errors import IntegrityError, NotFoundError, StoreError, TailorError
from serving.schemas import AdapterHealth, AdapterVersion, Failure

log = logging.getLogger(__name__)
MAX_REFUSED_BACKOFF = 300.0  # seconds between reads of a log that does not verify, at most

# Folders of this form hold their server's lock for as long as it lives; a folder whose lock can be
# taken belongs to a server that is gone.
_WORK_PREFIX = "tailor-serve-held-"
_HELD = ".held"


class WorkFolder:
    """A folder for one server's downloads, locked for as long as the server lives.

    A server killed before it can remove its folder (``kill -9``, the out-of-memory killer) leaves a
    copy of every version it served in the temporary folder; the next server to start removes the
    folders no live server holds. A lock rather than a pid: a pid says nothing across PID
    namespaces sharing one /tmp, and is reused.
    """

    def __init__(self) -> None:
        _remove_abandoned()
        # Locked under a name the sweep ignores, then renamed: a sweep never sees it unlocked.
        making = Path(tempfile.mkdtemp(prefix=f".{_WORK_PREFIX}"))
        self._lock = open(making / _HELD, "w", encoding="utf-8")
        fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self.path = making.rename(making.with_name(making.name[1:]))

    def close(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        self._lock.close()


def _remove_abandoned() -> None:
    for folder in Path(tempfile.gettempdir()).glob(f"{_WORK_PREFIX}*"):
        try:
            info = folder.lstat()
            if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
                continue  # a link, a file, or another user's: not ours to judge
            with open(folder / _HELD, "a", encoding="utf-8") as held:
                fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
                shutil.rmtree(folder, ignore_errors=True)
        except OSError:  # held by a live server (BlockingIOError), or removed by another sweep meanwhile
            continue


class Classifier(Protocol):
    labels: list[str]

    def predict_proba(self, texts: list[str], batch_size: int = 32) -> np.ndarray: ...


class AdapterSource(Protocol):
    """What the follower needs from the registry (``registry.reading.RegistryReader`` has it)."""

    def head_seq(self, name: str) -> int: ...

    def resolve(self, name: str, alias: str = "production") -> Any: ...

    def require_servable(self, name: str) -> None: ...

    def download(self, name: str, ref: str, dest: Path) -> Any: ...


@dataclass(frozen=True)
class Served:
    """One loaded adapter version; immutable, so a request can hold it while a swap happens."""

    name: str
    version: str
    sha256: str
    alias: str
    since: datetime
    classifier: Classifier
    directory: Path

    def describe(self) -> AdapterVersion:
        return AdapterVersion(
            name=self.name, version=self.version, sha256=self.sha256, alias=self.alias, since=self.since
        )


@dataclass
class _Tracking:
    """What the polling thread knows about one name; only that thread writes it."""

    seq: int | None = None
    alias_target: str | None = None
    last_poll: datetime | None = None
    problem: Failure | None = None  # lasts until the alias moves: a version that did not load, an alias gone
    outage: Failure | None = None  # cleared by the next poll that reads the registry
    # A history that does not verify is re-read whole on every poll: after each refusal the next read
    # waits twice as long (up to MAX_REFUSED_BACKOFF), until one verifies.
    refused_backoff: float = 0.0
    next_read: datetime | None = None

    @property
    def failure(self) -> Failure | None:
        return self.outage or self.problem


def _now() -> datetime:
    return datetime.now(timezone.utc)


class Follower:
    """Keeps, for each adapter name, the version an alias names loaded and ready to answer.

    Args:
        source: the registry (or anything with ``head_seq``, ``resolve``, ``download``).
        load: builds a classifier from a downloaded adapter folder (serving passes
            ``lambda d: load_classifier(d, base)`` so every adapter shares one base model).
        names: the adapter names to serve.
        alias: the alias to follow, ``production`` by default.
        poll_seconds: seconds between polls.
    """

    def __init__(
        self,
        source: AdapterSource,
        load: Callable[[Path], Classifier],
        names: Sequence[str],
        *,
        alias: str = "production",
        poll_seconds: float = 2.0,
    ) -> None:
        if not names:
            raise ValueError("at least one adapter name is needed")
        if len(set(names)) != len(names):
            raise ValueError(f"adapter names repeat: {list(names)}")
        if poll_seconds <= 0:
            raise ValueError(f"poll_seconds must be positive, got {poll_seconds}")
        self._source = source
        self._load = load
        self.names = tuple(names)
        self.alias = alias
        self.poll_seconds = poll_seconds
        # Replaced whole on every swap, never mutated: readers need no lock.
        self._served: Mapping[str, Served] = MappingProxyType({})
        self._tracking = {name: _Tracking() for name in self.names}
        self._work: WorkFolder | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Told the adapter's name after each swap, and after each version that did not load (the server's metrics).
        self.on_swap: Callable[[str], None] = lambda name: None
        self.on_failed_load: Callable[[str], None] = lambda name: None

    def load(self) -> list[Served]:
        """Load, for every name, the version the alias names now. Call once, before serving.

        Every alias is resolved before anything is loaded, so a missing one fails fast.

        Raises:
            NotFoundError: names with no version under the alias (all of them, named).
            IntegrityError: a downloaded file does not match its recorded sha256, or an audit event
                was overwritten or deleted.
            ConfigError: the store signs its events and no trust root is pinned.
            RefusedError: the adapter was trained on another base model.
            StoreError: the store cannot be reached.
        """
        targets = {}
        for name in self.names:
            # A restarted server has no memory of the newest event (the bucket's object versions do), and
            # follows only the keyring it pins.
            self._source.require_servable(name)
            # Read the sequence number first: a change that lands while we load is seen by the next poll.
            self._tracking[name].seq = self._source.head_seq(name)
            targets[name] = self._source.resolve(name, self.alias)
        missing = [name for name, manifest in targets.items() if manifest is None]
        if missing:
            raise NotFoundError(
                f"no version of {', '.join(repr(n) for n in missing)} holds the alias '{self.alias}': promote one "
                f"first (`tailor promote NAME VERSION --to {self.alias}`)"
            )
        self._work = WorkFolder()
        try:
            for name, manifest in targets.items():
                self._tracking[name].alias_target = manifest.version
                self._tracking[name].last_poll = _now()
                self._swap(self._fetch(name, manifest.version))
        except BaseException:
            self.close()
            raise
        return self.served()

    def current(self, name: str) -> Served:
        """The version answering for ``name`` right now. Raises KeyError for a name not served."""
        return self._served[name]

    def served(self) -> list[Served]:
        snapshot = self._served
        return [snapshot[name] for name in self.names if name in snapshot]

    def health(self) -> list[AdapterHealth]:
        snapshot = self._served
        return [
            AdapterHealth(
                name=name,
                serving=snapshot[name].version,
                alias_target=track.alias_target,
                last_poll=track.last_poll,
                failure=track.failure,
            )
            for name, track in self._tracking.items()
            if name in snapshot
        ]

    def start(self) -> None:
        """Start polling in a daemon thread (after ``load``)."""
        if not self._served:
            raise RuntimeError("load() must succeed before start()")
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="tailor-follower", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop polling and remove the downloaded folders (the loaded models stay usable)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
            self._thread = None
        if self._work is not None:
            self._work.close()
            self._work = None

    def _run(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            self.poll_once()

    def poll_once(self) -> None:
        """One round over every name: cheap when nothing changed, a verified swap when the alias moved."""
        for name in self.names:
            if self._stop.is_set():
                return
            try:
                self._follow(name)
            except Exception as err:  # noqa: BLE001 - the thread must outlive any one bad version or hiccup
                log.exception("following %s failed", name)
                self._tracking[name].outage = Failure(version=None, error=f"{type(err).__name__}: {err}", at=_now())

    def _follow(self, name: str) -> None:
        track = self._tracking[name]
        if track.next_read is not None and _now() < track.next_read:
            return
        try:
            seq = self._source.head_seq(name)
            if seq == track.seq:
                track.last_poll, track.outage = _now(), None
                track.refused_backoff, track.next_read = 0.0, None
                return
            manifest = self._source.resolve(name, self.alias)
        except IntegrityError as err:
            # A forged, rewritten or rule-breaking event: the history does not verify, so nothing it names is served.
            track.last_poll, track.outage = _now(), None
            track.problem = Failure(
                version=None,
                at=_now(),
                error=f"refused: the audit history of '{name}' does not "
                f"verify, still serving {self._served[name].version}: {err}",
            )
            track.refused_backoff = min(max(2 * track.refused_backoff, self.poll_seconds), MAX_REFUSED_BACKOFF)
            track.next_read = _now() + timedelta(seconds=track.refused_backoff)
            return
        except TailorError as err:
            # Transient (store down, network): keep the old sequence number so the next poll retries.
            track.outage = Failure(version=None, error=f"cannot read the registry: {err}", at=_now())
            return
        track.last_poll, track.outage = _now(), None
        track.refused_backoff, track.next_read = 0.0, None
        serving = self._served[name].version
        if manifest is None:
            track.seq, track.alias_target = seq, None
            track.problem = Failure(
                version=None,
                at=_now(),
                error=f"the alias '{self.alias}' names no version of '{name}' any more; still serving {serving}",
            )
            return
        if (
            manifest.version == track.alias_target
            and track.problem is not None
            and track.problem.version == manifest.version
        ):
            track.seq = seq  # another alias or version moved: this one failed and was not promoted again
            return
        track.alias_target = manifest.version
        if manifest.version == serving:
            track.seq, track.problem = seq, None
            return
        try:
            fetched = self._fetch(name, manifest.version)
        except StoreError as err:
            track.outage = Failure(
                version=manifest.version, at=_now(), error=f"cannot download {manifest.version} (will retry): {err}"
            )
            return
        except Exception as err:  # noqa: BLE001 - a broken version (hash, base model, format) must not stop serving
            # This version will not get better by retrying: wait for the alias to move again.
            track.seq = seq
            track.problem = Failure(
                version=manifest.version,
                at=_now(),
                error=f"kept {serving}: {manifest.version} did not load: {type(err).__name__}: {err}",
            )
            log.warning("kept %s %s: %s did not load: %s", name, serving, manifest.version, err)
            self.on_failed_load(name)
            return
        old = self._swap(fetched)
        track.seq, track.problem = seq, None
        log.info("%s: now serving %s (was %s)", name, fetched.version, serving)
        self.on_swap(name)
        if old is not None:
            # Requests still running on the old model hold it in memory; its folder is no longer read.
            shutil.rmtree(old.directory, ignore_errors=True)

    def _fetch(self, name: str, version: str) -> Served:
        assert self._work is not None
        dest = Path(tempfile.mkdtemp(prefix=f"{name}-{version}-", dir=self._work.path))
        try:
            manifest = self._source.download(name, version, dest)
            classifier = self._load(dest)
        except BaseException:
            shutil.rmtree(dest, ignore_errors=True)
            raise
        return Served(
            name=name,
            version=manifest.version,
            sha256=manifest.content_sha256,
            alias=self.alias,
            since=_now(),
            classifier=classifier,
            directory=dest,
        )

    def _swap(self, served: Served) -> Served | None:
        old = self._served.get(served.name)
        served = replace(served, since=_now())
        self._served = MappingProxyType({**self._served, served.name: served})
        return old
