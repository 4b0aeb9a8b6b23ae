"""Prefect flows: ``retrain`` (validate → train → evaluate → gate → register → promote), ``promote``,
``rollback`` and ``watch`` (the scheduled one: retrain on every batch that arrived since the last run).

Thin on purpose: each task calls one step from ``pipelines/`` or one registry operation, so the flow
reads top to bottom and the DVC stages and CLI commands run the very same code. Tasks that touch the
object store retry on store errors only; a refusal (a rule, a bad file) is final and never retried.

A gate-rejected candidate is still registered, with its failed gate decision in the manifest and in
the register event of the audit log: the evidence stays reviewable (`tailor report`) and the
registry refuses to promote it to production without an approver's override.

No flow takes a policy file as a parameter: every one judges and promotes under the policy its
process is configured with (``policy``, ``TAILOR_POLICY``). Anyone who can reach the Prefect API
can start a served deployment with parameters of their choosing, and a laxer policy would have
lent them the schedule's store role without its four-eyes and gate rules.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import shutil
import time
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Iterator, Literal

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.states import Failed
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pipelines.batch_io import SUPPORTED_SUFFIXES
from pipelines.config import Settings, load_settings
from pipelines.policy import Policy
from pipelines.records import GateDecision, TrainResult, ValidationReport, utcnow
from pipelines.run_folders import FINISHED, mark_finished, new_run_folder, prune_run_folders
from registry.atomic_file import write_atomic
from registry.audit import AuditEvent, parse_time
from registry.errors import ConfigError, RefusedError, StoreError, TailorError, first_line
from registry.manifest import GateSummary, validate_name
from registry.readable_text import escape_control



def _transient(task, task_run, state) -> bool:
    """Retry only what a retry can fix: the store being briefly unreachable, not a refused rule."""
    try:
        state.result()
    except StoreError:
        return True
    except Exception:  # noqa: BLE001 - every other failure is final
        return False
    return False


# How old a register must be before the watch flow takes its run for dead and promotes in its place.
RECOVERY_GRACE = timedelta(minutes=10)

# Store-touching tasks: a few quick retries cover a restarting gateway or a dropped connection.
store_task = task(retries=3, retry_delay_seconds=[1, 4, 10], retry_condition_fn=_transient, cache_policy=NO_CACHE)


class RetrainOutcome(BaseModel):
    """What one retrain run did; the CLI prints it and the schedule's state keeps it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    batch: str
    status: Literal["rejected_data", "rejected_gate", "registered", "promoted"]
    version: str | None = None
    promoted_to: list[str] = Field(default_factory=list)
    validation: ValidationReport
    gate: GateDecision | None = None
    adapter_dir: str | None = None
    notes: list[str] = Field(default_factory=list)
    train_seconds: float | None = None
    total_seconds: float
    finished_at: datetime = Field(default_factory=utcnow)


# ---- steps ----------------------------------------------------------------------------------------


@store_task
def production_labels(name: str) -> list[str] | None:
    """The label set of the version ``production`` holds: a new batch may not invent labels."""
    manifest = load_settings().open_registry().resolve(name, "production")
    return list(manifest.labels) if manifest else None


@task(cache_policy=NO_CACHE)
def validate(batch: Path, holdout: Path, labels_file: Path | None, labels: list[str] | None,
             report_dir: Path, encoding: str | None = None, incoming: Path | None = None) -> ValidationReport:  # fmt: skip
    """Judge the batch; a rejected one goes to quarantine (moved from ``incoming``, else copied), an
    accepted one is tracked by DVC."""
    from pipelines.validate import validate_and_route

    settings = load_settings()
    return validate_and_route(batch, settings.load_policy(), data_dir=settings.data_dir, labels_file=labels_file,
                              labels=None if labels_file else labels, holdout=holdout,
                              base_model=settings.base_model_dir, report_dir=report_dir, encoding=encoding,
                              incoming=incoming)  # fmt: skip


@task(cache_policy=NO_CACHE)
def train(batch: Path, out_dir: Path, data_version: str | None, device: str, encoding: str | None = None) -> TrainResult:
    from pipelines.train_job import train_in_background

    return train_in_background(batch, out_dir, data_version, device, encoding)


@store_task
def download_production(name: str, dest: Path) -> str | None:
    """Fetch the version ``production`` holds (hashes checked) for the comparison; None when unset."""
    registry = load_settings().open_registry()
    if registry.resolve(name, "production") is None:
        return None
    return registry.download(name, "production", dest).version


@task(cache_policy=NO_CACHE)
def evaluate(adapter_dir: Path, holdout: Path, production_dir: Path | None,
             production_ref: str | None, adapter_ref: str) -> GateDecision:  # fmt: skip
    """Every check, then the gate; the decision and evidence land in the adapter folder for the registry."""
    from pipelines.batch_io import read_batch
    from pipelines.checks.suite import evaluate as run_checks

    settings = load_settings()
    return run_checks(adapter_dir, read_batch(holdout, encoding_option=None), settings.load_policy(),
                      base_model_dir=settings.base_model_dir, production_dir=production_dir,
                      production_ref=production_ref, adapter_ref=adapter_ref, out_dir=adapter_dir)  # fmt: skip


@store_task
def register(adapter_dir: Path, name: str, reason: str) -> str:
    # The registry uploads every file before it writes the manifest, so a failure here leaves no
    # half-written version: a version exists only once its manifest does.
    return load_settings().open_registry(with_base=True).register(adapter_dir, name, reason=reason).version


@store_task
def move_alias(name: str, version: str, to: str, reason: str) -> AuditEvent:
    return load_settings().open_registry(with_base=True).promote(name, version, to, reason=reason)


@store_task
def move_back(name: str, alias: str, reason: str) -> AuditEvent:
    return load_settings().open_registry(with_base=True).rollback(name, alias=alias, reason=reason)


@store_task
def announce(event: AuditEvent) -> int:
    """Send the signed promotion event to every configured webhook; returns how many got it."""
    from pipelines.webhooks import announce_audit_event

    deliveries = announce_audit_event(event, load_settings())
    failed = [d.url for d in deliveries if not d.delivered]
    if failed:
        get_run_logger().warning("webhook delivery failed after retries: %s (see deliveries/%s/)", failed, event.name)
    return len(deliveries) - len(failed)


# ---- flows ----------------------------------------------------------------------------------------


@flow(name="promote")
def promote(name: str, version: str, to: str, reason: str) -> AuditEvent:
    """Point an alias at a version, exactly as `tailor promote` does, then announce it."""
    event = move_alias(name, version, to, reason)
    announce(event)
    return event


@flow(name="rollback")
def rollback(name: str, reason: str, alias: str = "production") -> AuditEvent:
    """Point an alias back at the version it held before, exactly as `tailor rollback` does, then announce it."""
    event = move_back(name, alias, reason)
    announce(event)
    return event


@flow(name="retrain")
def retrain(batch: Path, name: str, holdout: Path, labels: Path | None = None, workdir: Path | None = None,
            device: str = "auto", encoding: str | None = None, incoming: Path | None = None,
            card: Path | None = None) -> RetrainOutcome:  # fmt: skip
    """validate → train → evaluate → gate → register → promote to staging (production only if the policy says so).

    ``encoding`` names the batch's text encoding (None: UTF-8). A rejected batch is moved into
    quarantine only from ``incoming`` (default: the data folder's ``incoming/``), else copied.

    A rejected batch or candidate ends the run in a Failed state (visible as such in the Prefect UI)
    that still carries the ``RetrainOutcome``: call with ``return_state=True`` and read
    ``state.result(raise_on_failure=False)``.
    """
    started = time.monotonic()
    settings = load_settings()
    policy = settings.load_policy()
    validate_name(name)  # it names a folder: an API caller's "../x" must not prune or write outside runs/
    if workdir is None:
        if settings.keep_runs:
            pruned = prune_run_folders(Path("runs") / name, keep=settings.keep_runs - 1)
            for problem in pruned.left:
                get_run_logger().warning("an old run folder could not be deleted: %s", problem)
        workdir = new_run_folder(Path("runs") / name)
    run_dir = Path(workdir)
    (run_dir / FINISHED).unlink(missing_ok=True)  # a workdir used before: this run is not finished yet
    adapter_dir = run_dir / "adapter"

    def outcome(status, **fields) -> RetrainOutcome:
        result = RetrainOutcome(name=name, batch=str(batch), status=status, total_seconds=time.monotonic() - started,
                                **fields)  # fmt: skip
        try:
            mark_finished(run_dir, result.model_dump_json(indent=2))
        except OSError as err:  # a full disk must not turn a registered, promoted run into a crash
            get_run_logger().warning("%s: the outcome could not be written (%s), so the folder is never pruned",
                                     run_dir, err)  # fmt: skip
        return result

    def rejected(status, **fields) -> Failed:
        result = outcome(status, **fields)
        return Failed(message=f"{status}: {'; '.join(result.notes)}", data=result)

    allowed = None if labels else production_labels(name)
    report = validate(batch, holdout, labels, allowed, run_dir / "validation", encoding, incoming)
    if not report.accepted:
        return rejected("rejected_data", validation=report, notes=[f"batch quarantined to {report.quarantined_to}"])

    trained = train(batch, adapter_dir, report.data_version, device, encoding)
    _attach_validation_evidence(report, adapter_dir)
    production_version = download_production(name, run_dir / "production")
    decision = evaluate(adapter_dir, holdout, run_dir / "production" if production_version else None,
                        f"{name}:{production_version}" if production_version else None, f"{name}:candidate")  # fmt: skip
    # A file name may hold a line break, which the registry refuses in a reason after all that training.
    verdict = decision.verdict
    if card is not None:  # the trainer's model card (`--card`), registered with the version
        from pipelines.model_card_file import add_card, read_card

        add_card(adapter_dir, read_card(card))
    version = register(adapter_dir, name, f"retrain on {escape_control(Path(batch).name)}: gate {verdict}")
    common = dict(validation=report, gate=decision, version=version, adapter_dir=str(adapter_dir),
                  train_seconds=trained.cost.wall_seconds)  # fmt: skip
    if verdict == "not judged":  # the machine was too busy to judge load: not the adapter's failure
        return outcome("registered", **common, notes=[*decision.not_judged, "registered, not promoted: judge it "
                                                      f"again when the machine is quieter: tailor judge-load {name} {version}"])
    if not decision.passed:
        return rejected("rejected_gate", **common, notes=["gate failed: registered for the record, not promoted"])

    promoted, notes = [], []
    if policy.promotion.auto_promote_staging:
        promote(name, version, "staging", f"gate passed under policy {policy.version}")
        promoted.append("staging")
    if policy.promotion.auto_promote_production:
        try:
            promote(name, version, "production", f"automatic: gate passed under policy {policy.version}")
            promoted.append("production")
        except RefusedError as err:  # the four-eyes rule: a person other than the trainer must promote
            notes.append(f"production not promoted automatically: {err}")
    else:
        notes.append(f"production needs a person: tailor promote {name} {version} --to production --reason ...")
    return outcome("promoted" if promoted else "registered", **common, promoted_to=promoted, notes=notes)


def _attach_validation_evidence(report: ValidationReport, adapter_dir: Path) -> None:
    """Copy the validation report files into the adapter's reports/ so they are stored with the version."""
    if report.report_json:
        shutil.copytree(Path(report.report_json).parent, adapter_dir / "reports" / "validation", dirs_exist_ok=True)


# ---- the scheduled flow ---------------------------------------------------------------------------


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


class Arrival(BaseModel):
    """A batch file in the watched folder whose content was never processed."""

    model_config = ConfigDict(frozen=True)

    path: Path
    sha256: str
    size: int
    mtime_ns: int

    def processed(self, status: str, version: str | None = None) -> ProcessedBatch:
        return ProcessedBatch(sha256=self.sha256, file=self.path.name, status=status, version=version, size=self.size,
                              mtime_ns=self.mtime_ns)  # fmt: skip


def state_file(settings: Settings, name: str) -> Path:
    return settings.home / "schedule" / f"{name}.json"


def processed_batches(path: Path) -> list[ProcessedBatch]:
    """The schedule's record of the batches it processed (none yet when there is no record).

    Raises:
        ConfigError: the record is not a file or not a list of records. It is never replaced on a
            guess: it is what keeps a processed batch from being retrained.
    """
    if not path.exists() and not path.is_symlink():  # a dangling link is a record out of reach, not none
        return []
    record = f"{path}, the schedule's record of processed batches,"
    fix = ("restore it, or move it aside: the next run then takes every batch in the watched folder as new, "
           "records those already registered without retraining them, and retrains the rest")  # fmt: skip
    if not path.is_file():
        raise ConfigError(f"{record} is not a file (or a link to none): {fix}")
    try:
        items = json.loads(path.read_text())
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
            raise ConfigError(f"{record} has a damaged record (record {number}{f', {field}' if field else ''}: "
                              f"{first['msg']}): {fix}") from None  # fmt: skip
    return entries


def record_processed(path: Path, entry: ProcessedBatch) -> None:
    entries = processed_batches(path) + [entry]
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps([e.model_dump(mode="json") for e in entries], indent=2))


def new_batches(watch_dir: Path, processed: list[ProcessedBatch], settle_seconds: float) -> tuple[list[Arrival], list[Path]]:
    """Batch files in ``watch_dir`` whose content was never processed, oldest first, and those still arriving.

    A file changed less than ``settle_seconds`` ago, or while it was being read, may still be being
    copied in: read half-written it would be judged (and quarantined) as a truncated batch, so it
    waits for a later run. Hidden files are editors' and copy tools' temporaries, not batches. A
    file with the name, size and modification time of a processed one is not read again: accepted
    batches stay where they are, and a year of them would be re-hashed at every tick.
    """
    seen = {entry.sha256 for entry in processed}
    unchanged = {(e.file, e.size, e.mtime_ns) for e in processed if e.size is not None}
    found = sorted(((p, p.stat()) for p in Path(watch_dir).iterdir()
                    if p.suffix.lower() in SUPPORTED_SUFFIXES and not p.name.startswith(".") and p.is_file()),
                   key=lambda entry: (entry[1].st_mtime, entry[0].name))  # fmt: skip
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
    with open(path, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def registered_data_versions(settings: Settings, name: str) -> dict[str, str]:
    """Data version (the batch's md5) → the version registered from it, for ``name``."""
    return {m.data_version: m.version for m in settings.open_registry().versions(name) if m.data_version}


def owed_staging(events: list[AuditEvent], version: str, gate: GateSummary | None, policy: Policy,
                 now: datetime) -> bool:  # fmt: skip
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
    return (policy.promotion.auto_promote_staging and gate is not None and gate.passed
            and gate.policy_sha256 == policy.sha256)  # fmt: skip


@store_task
def staging_owed(name: str, version: str) -> bool:
    settings = load_settings()
    registry = settings.open_registry()
    return owed_staging(registry.events(name), version, registry.manifest(name, version).gate, settings.load_policy(),
                        utcnow())  # fmt: skip


def finish_staging(name: str, version: str) -> bool:
    """Promote ``version`` to staging if it is owed it (see ``owed_staging``); True when it was."""
    if not staging_owed(name, version):
        return False
    # Owed only under the policy its gate passed under, so this names that policy.
    promote(name, version, "staging", f"gate passed under policy {load_settings().load_policy().version}; promoted "
                                      "on recovery: the run that registered it stopped before promoting")  # fmt: skip
    return True


def _retrain_batch(arrival: Arrival, registered: dict[str, str], name: str, holdout: Path,
                   labels: Path | None, retrain_deployment: str | None) -> ProcessedBatch | None:  # fmt: skip
    """Retrain on one watched batch; the record to keep, or None to try the batch again next run."""
    from pipelines.data_version import dvc_md5

    log, path = get_run_logger(), arrival.path
    if (version := registered.get(dvc_md5(path))) is not None:
        # A run that died between registering and recording (kill -9, a reboot) must not register it twice.
        log.warning("%s was registered as %s %s by a run that stopped before recording it", path.name, name, version)
        status = "registered by an earlier run"
        try:
            if finish_staging(name, version):
                log.warning("%s %s: promoted to staging, as the run that registered it would have", name, version)
                status += "; promoted to staging now"
        except StoreError as err:
            log.warning("%s: the store failed (%s); the batch is tried again next run", path.name, err)
            return None
        except TailorError as err:  # refused, or a version that no longer proves: recorded as it stands
            log.warning("%s %s is not promoted to staging: %s", name, version, err)
            status += f"; not promoted to staging: {first_line(err)}"
        return arrival.processed(status, version)
    if retrain_deployment:
        from prefect.deployments import run_deployment

        run = run_deployment(retrain_deployment, parameters={
            "batch": str(path), "name": name, "holdout": str(holdout),
            "labels": labels and str(labels), "incoming": str(path.parent)})  # fmt: skip
        if run.state.is_crashed() or run.state.is_cancelled():
            log.warning("%s: the retrain run %s ended %s; the batch is tried again next run", path.name, run.name,
                        run.state.name)  # fmt: skip
            return None
        return arrival.processed(f"{run.name}: {run.state.message or run.state.name}")
    # The watched folder is where batches are handed in: a rejected one is moved out of it.
    result = retrain(path, name, holdout, labels=labels, incoming=path.parent,
                     return_state=True).result(raise_on_failure=False)  # fmt: skip
    if isinstance(result, StoreError):
        log.warning("%s: the store failed (%s); the batch is tried again next run", path.name, result)
        return None
    if isinstance(result, BaseException):
        # A refusal (a batch DVC cannot track, a bad holdout) fails the same way every time: record it
        # and go on, or it would block every newer batch behind it.
        log.error("%s: retrain failed: %s", path.name, result)
        return arrival.processed(f"failed: {result}")
    return arrival.processed(result.status, result.version)


@flow(name="watch")
def watch(watch_dir: Path, name: str, holdout: Path, labels: Path | None = None,
          retrain_deployment: str | None = None) -> list[ProcessedBatch]:
    """Retrain on each batch that arrived in ``watch_dir`` since the last run; do nothing otherwise.

    With ``retrain_deployment`` (e.g. ``retrain/gpu``) each retrain runs on that deployment's work
    pool (a GPU host) and this run waits for it; otherwise it runs here as a subflow.
    """
    settings = load_settings()
    state = state_file(settings, name)
    # A batch is recorded only once its retrain ends: a tick that fired meanwhile must not start it again.
    with watch_lock(state.with_suffix(".lock")) as mine:
        if not mine:
            get_run_logger().info("an earlier run for %s is still retraining; new batches wait for the next run", name)
            return []
        batches, arriving = new_batches(watch_dir, processed_batches(state), settings.watch_settle_seconds)
        for path in arriving:
            get_run_logger().info("%s changed in the last %g s and may still be arriving; it waits for the next run",
                                  path.name, settings.watch_settle_seconds)  # fmt: skip
        try:
            registered = registered_data_versions(settings, name) if batches else {}
        except StoreError as err:
            get_run_logger().warning("the store does not answer (%s); new batches wait for the next run", err)
            return []
        done = []
        for arrival in batches:
            entry = _retrain_batch(arrival, registered, name, holdout, labels, retrain_deployment)
            if entry is None:
                continue  # a transient failure: the batch is tried again at the next run
            record_processed(state, entry)
            done.append(entry)
    if not done:
        get_run_logger().info("no new batch in %s since the last run", watch_dir)
    return done
