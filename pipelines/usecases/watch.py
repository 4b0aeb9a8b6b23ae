"""The watch schedule's rules: which batches are new, the record of those processed, the lock that keeps
two runs apart, the recovery of a run that died after registering, and what a cron expression must be.

The Prefect ``watch`` flow (``pipelines/orchestration/flows.py``) runs these on its schedule;
`tailor schedule` checks its arguments with them before serving it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import time
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pipelines.batches.read import SUPPORTED_SUFFIXES
from pipelines.policy import Policy
from pipelines.records import RetrainOutcome, utcnow
from registry.audit.events import AuditEvent, parse_time
from registry.errors import ConfigError, StoreError, TailorError, first_line
from registry.files import write_atomic
from registry.gate_summary import GateSummary

if TYPE_CHECKING:
    from pipelines.context import Context

Log = logging.Logger | logging.LoggerAdapter

# How old a register must be before the watch flow takes its run for dead and promotes in its place.
RECOVERY_GRACE = timedelta(minutes=10)


def validate_cron(cron: str) -> None:
    """Refuse a cron expression the schedule cannot use.

    Raises:
        ConfigError: not five fields, not cron syntax, or a date that never comes (31 February).
    """
    from prefect._vendor.croniter import CroniterBadDateError, croniter
    from prefect.client.schemas.schedules import CronSchedule

    try:
        if len(cron.split()) != 5:  # croniter takes a sixth field as seconds: '* * * * * *' fired every second
            raise ValueError(cron)
        CronSchedule(cron=cron)
    except ValueError:
        raise ConfigError(
            f"--cron {cron!r} is not a cron expression: give five fields, minute hour day month "
            "weekday, e.g. '0 * * * *' (hourly) or '30 2 * * 1-5' (02:30 on weekdays)"
        ) from None
    try:
        # The croniter Prefect's scheduler uses: a date that never comes (31 February) is valid syntax,
        # and the deployment would wait forever without a word.
        croniter(cron, datetime.now()).get_next(datetime)
    except CroniterBadDateError:
        raise ConfigError(f"--cron {cron!r} never fires: no month has that day (e.g. 31 February, 31 April)") from None


class ProcessedBatch(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sha256: str
    file: str
    status: str
    version: str | None = None
    at: datetime = Field(default_factory=utcnow)
    # The file as it was read: unchanged since, it is not read and hashed again at every tick.
    size: int | None = None
    mtime_ns: int | None = None
    # The text encoding the schedule read it in (None: UTF-8).
    encoding: str | None = None

    def settled(self, encoding: str | None) -> bool:
        """Whether these bytes are done with for a schedule reading ``encoding``: a batch rejected while
        read in another encoding (a CP932 file before `tailor schedule --encoding cp932`) is judged again."""
        return self.status != "rejected_data" or self.encoding == encoding


class Arrival(BaseModel):
    """A batch file in the watched folder whose content was never processed."""

    model_config = ConfigDict(frozen=True)

    path: Path
    sha256: str
    size: int
    mtime_ns: int

    def processed(self, status: str, version: str | None = None) -> ProcessedBatch:
        return ProcessedBatch(
            sha256=self.sha256,
            file=self.path.name,
            status=status,
            version=version,
            size=self.size,
            mtime_ns=self.mtime_ns,
        )


def state_file(home: Path, name: str) -> Path:
    """The schedule's record of processed batches for ``name`` under the settings' ``home``."""
    return Path(home) / "schedule" / f"{name}.json"


def processed_batches(path: Path) -> list[ProcessedBatch]:
    """The schedule's record of the batches it processed (none yet when there is no record).

    Raises:
        ConfigError: the record is not a file or not a list of records. It is never replaced on a
            guess: it is what keeps a processed batch from being retrained.
    """
    if not path.exists() and not path.is_symlink():  # a dangling link is a record out of reach, not none
        return []
    record = f"{path}, the schedule's record of processed batches,"
    fix = (
        "restore it, or move it aside: the next run then takes every batch in the watched folder as new, "
        "records those already registered without retraining them, and retrains the rest"
    )
    if not path.is_file():
        raise ConfigError(f"{record} is not a file (or a link to none): {fix}")
    try:
        items = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:  # bad UTF-8 or bad JSON
        raise ConfigError(f"{record} is not JSON ({err}): {fix}") from None
    if not isinstance(items, list):
        raise ConfigError(f"{record} holds a JSON {type(items).__name__}, not a list of records: {fix}")
    entries = []
    for number, item in enumerate(items, 1):
        try:
            entries.append(ProcessedBatch.model_validate(item))
        except ValidationError as err:
            first = err.errors()[0]
            field = ".".join(str(part) for part in first["loc"])
            raise ConfigError(
                f"{record} has a damaged record (record {number}{f', {field}' if field else ''}: {first['msg']}): {fix}"
            ) from None
    return entries


def record_processed(path: Path, entry: ProcessedBatch) -> None:
    entries = processed_batches(path) + [entry]
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps([e.model_dump(mode="json") for e in entries], indent=2))


def new_batches(
    watch_dir: Path, processed: list[ProcessedBatch], settle_seconds: float, encoding: str | None = None
) -> tuple[list[Arrival], list[Path]]:
    """Batch files in ``watch_dir`` whose content was never processed, oldest first, and those still arriving.

    A file changed less than ``settle_seconds`` ago, or while it was being read, may still be being
    copied in: read half-written it would be judged (and quarantined) as a truncated batch, so it
    waits for a later run. Hidden files are editors' and copy tools' temporaries, not batches. A
    file with the name, size and modification time of a processed one is not read again: accepted
    batches stay where they are, and a year of them would be re-hashed at every tick. A batch is new
    again when it was rejected while read in another encoding than ``encoding`` (None: UTF-8).
    """
    processed = [entry for entry in processed if entry.settled(encoding)]
    seen = {entry.sha256 for entry in processed}
    unchanged = {(e.file, e.size, e.mtime_ns) for e in processed if e.size is not None}
    found = sorted(
        (
            (p, p.stat())
            for p in Path(watch_dir).iterdir()
            if p.suffix.lower() in SUPPORTED_SUFFIXES and not p.name.startswith(".") and p.is_file()
        ),
        key=lambda entry: (entry[1].st_mtime, entry[0].name),
    )
    fresh, arriving = [], []
    for path, before in found:
        if (path.name, before.st_size, before.st_mtime_ns) in unchanged:
            continue
        if time.time() - before.st_mtime < settle_seconds:
            arriving.append(path)
            continue
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        after = path.stat()
        if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
            arriving.append(path)
        elif digest not in seen:
            fresh.append(Arrival(path=path, sha256=digest, size=after.st_size, mtime_ns=after.st_mtime_ns))
    return fresh, arriving


@contextmanager
def watch_lock(path: Path) -> Iterator[bool]:
    """Hold ``path`` locked while a run retrains: True when this run got it, False when another has it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def owed_staging(
    events: list[AuditEvent], version: str, gate: GateSummary | None, policy: Policy, now: datetime
) -> bool:
    """Whether ``version`` is owed the staging promotion of a run that stopped right after registering it.

    Only while nothing has happened to the name since: its register event is the newest event (a
    newer version, any alias move, above all a rollback, is someone's decision that a late promotion
    would overrule), its gate passed under the policy configured now, and that policy promotes
    staging. And only once the register is ``RECOVERY_GRACE`` old: a run still alive (on a GPU
    worker that outlived the watch process, say) promotes within seconds, and would fail on finding
    its promotion made. Production is never moved here: there the four-eyes rule judges who
    registered and who promotes, and the process recovering is not the one that registered.
    """
    if not events or (events[-1].action, events[-1].version) != ("register", version):
        return False
    if now - parse_time(events[-1].time) < RECOVERY_GRACE:
        return False
    return (
        policy.promotion.auto_promote_staging
        and gate is not None
        and gate.passed
        and gate.policy_sha256 == policy.sha256
    )


def staging_owed(ctx: "Context", name: str, version: str) -> bool:
    """``owed_staging`` for ``name`` ``version`` as the registry tells it now, under the run's policy."""
    registry = ctx.registry()
    return owed_staging(registry.events(name), version, registry.manifest(name, version).gate, ctx.policy, utcnow())


def recovery_reason(ctx: "Context") -> str:
    # Owed only under the policy its gate passed under, so this names that policy.
    return (
        f"gate passed under policy {ctx.policy.version}; promoted on recovery: the run that registered it "
        "stopped before promoting"
    )


def recover(
    arrival: Arrival, name: str, version: str, finish_staging: Callable[[str, str], bool], log: Log
) -> ProcessedBatch | None:
    """The record of a batch that a run registered as ``version`` and died before recording; it gets
    the staging promotion that run owed (``finish_staging``: True when it promoted). None: try again.
    """
    # A run that died between registering and recording (kill -9, a reboot) must not register it twice.
    log.warning(
        "%s was registered as %s %s by a run that stopped before recording it", arrival.path.name, name, version
    )
    status = "registered by an earlier run"
    try:
        if finish_staging(name, version):
            log.warning("%s %s: promoted to staging, as the run that registered it would have", name, version)
            status += "; promoted to staging now"
    except StoreError as err:
        log.warning("%s: the store failed (%s); the batch is tried again next run", arrival.path.name, err)
        return None
    except TailorError as err:  # refused, or a version that no longer proves: recorded as it stands
        log.warning("%s %s is not promoted to staging: %s", name, version, err)
        status += f"; not promoted to staging: {first_line(err)}"
    return arrival.processed(status, version)


def processed_from(arrival: Arrival, result: RetrainOutcome | BaseException, log: Log) -> ProcessedBatch | None:
    """The record of a retrain run's ``result`` (its outcome, or the error it ended with); None: try again."""
    if isinstance(result, StoreError):
        log.warning("%s: the store failed (%s); the batch is tried again next run", arrival.path.name, result)
        return None
    if isinstance(result, BaseException):
        # A refusal (a batch DVC cannot track, a bad holdout) fails the same way every time: record it
        # and go on, or it would block every newer batch behind it.
        log.error("%s: retrain failed: %s", arrival.path.name, result)
        return arrival.processed(f"failed: {result}")
    return arrival.processed(result.status, result.version)


def registered_data_versions(ctx: "Context", name: str) -> dict[str, str]:
    """Data version (the batch's md5) → the version registered from it, for ``name``."""
    return {m.data_version: m.version for m in ctx.registry().versions(name) if m.data_version}


def tick(
    ctx: "Context",
    watch_dir: Path,
    name: str,
    *,
    encoding: str | None = None,
    retrain: Callable[[Arrival], ProcessedBatch | None],
    finish_staging: Callable[[str, str], bool],
    log: Log,
) -> list[ProcessedBatch]:
    """One run of the schedule: ``retrain`` each batch that arrived in ``watch_dir`` since the last run
    (None from it: a transient failure, tried again next run), and record it as processed, read in
    ``encoding`` (None: UTF-8).

    A batch a dead run already registered is not retrained: it gets that run's owed staging
    promotion through ``finish_staging`` instead (see ``owed_staging``).
    """
    from pipelines.batches.data_version import dvc_md5

    state = state_file(ctx.settings.home, name)
    settle = ctx.settings.watch_settle_seconds
    # A batch is recorded only once its retrain ends: a tick that fired meanwhile must not start it again.
    with watch_lock(state.with_suffix(".lock")) as mine:
        if not mine:
            log.info("an earlier run for %s is still retraining; new batches wait for the next run", name)
            return []
        batches, arriving = new_batches(watch_dir, processed_batches(state), settle, encoding)
        for path in arriving:
            log.info(
                "%s changed in the last %g s and may still be arriving; it waits for the next run", path.name, settle
            )
        try:
            registered = registered_data_versions(ctx, name) if batches else {}
        except StoreError as err:
            log.warning("the store does not answer (%s); new batches wait for the next run", err)
            return []
        done = []
        for arrival in batches:
            version = registered.get(dvc_md5(arrival.path))
            entry = retrain(arrival) if version is None else recover(arrival, name, version, finish_staging, log)
            if entry is None:
                continue  # a transient failure: the batch is tried again at the next run
            entry = entry.model_copy(update={"encoding": encoding})
            record_processed(state, entry)
            done.append(entry)
    if not done:
        log.info("no new batch in %s since the last run", watch_dir)
    return done
