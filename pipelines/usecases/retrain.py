"""The retrain sequence: validate → train → evaluate → gate → register → promote to staging (production
only if the policy says so), as plain functions over one ``Context``.

``run`` takes its steps as a ``Steps`` record: the Prefect flow hands in each step wrapped as a task
(its retry policy, its place in the UI), anything else the plain functions below (``PLAIN``).

A gate-rejected candidate is still registered, with its failed gate decision in the manifest and in
the register event of the audit log: the evidence stays reviewable (`tailor report`) and the
registry refuses to promote it to production without an approver's override.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from pipelines.model_card_file import add_card, read_card
from pipelines.records import GateDecision, RetrainOutcome, TrainResult, ValidationReport
from pipelines.training.job import warm_up as warm_up_training
from pipelines.usecases import promotion
from pipelines.usecases.production import Comparison, fetch_for_comparison
from pipelines.usecases.runs import FINISHED, mark_finished, new_run_folder, prune_run_folders
from pipelines.usecases.watch import Log, registered_data_versions
from registry.errors import RefusedError, TailorError
from registry.manifest import validate_name
from registry.text import escape_control

if TYPE_CHECKING:
    from pipelines.context import Context

RUNS = Path("runs")


@dataclass(frozen=True)
class RetrainRequest:
    """One batch to retrain ``name`` on; ``encoding`` None is UTF-8, ``incoming`` the folder whose
    rejected batches are moved into quarantine (default: the data folder's ``incoming/``), others copied."""

    batch: Path
    name: str
    holdout: Path
    labels: Path | None = None
    workdir: Path | None = None
    device: str = "auto"
    encoding: str | None = None
    incoming: Path | None = None
    card: Path | None = None  # the trainer's model card (`--card`), registered with the version


# ---- the steps -----------------------------------------------------------------------------------


def production_labels(ctx: "Context", name: str) -> list[str] | None:
    """The label set of the version ``production`` holds: a new batch may not invent labels."""
    manifest = ctx.registry().resolve(name, "production")
    return list(manifest.labels) if manifest else None


def validate(
    ctx: "Context",
    batch: Path,
    holdout: Path,
    labels_file: Path | None,
    labels: list[str] | None,
    report_dir: Path,
    encoding: str | None = None,
    incoming: Path | None = None,
) -> ValidationReport:
    """Judge the batch; a rejected one goes to quarantine (moved from ``incoming``, else copied), an
    accepted one is tracked by DVC."""
    from pipelines.batches.route import validate_and_route

    settings = ctx.settings
    return validate_and_route(
        batch,
        ctx.policy,
        data_dir=settings.data_dir,
        labels_file=labels_file,
        labels=None if labels_file else labels,
        holdout=holdout,
        base_model=settings.base_model_dir,
        report_dir=report_dir,
        encoding=encoding,
        incoming=incoming,
        store=settings.store(),
    )


def train(
    ctx: "Context", batch: Path, out_dir: Path, data_version: str | None, device: str, encoding: str | None = None
) -> TrainResult:
    """Train in a child process at the training share (see ``pipelines.training.job``)."""
    from pipelines.training.job import TrainSetup, train_in_background

    return train_in_background(TrainSetup.of(ctx.settings, ctx.policy), batch, out_dir, data_version, device, encoding)


def fetch_production(ctx: "Context", name: str, dest: Path) -> Comparison:
    """The version ``production`` holds, downloaded (hashes checked) for the comparison."""
    return fetch_for_comparison(ctx.registry(), name, "production", dest)


def evaluate(
    ctx: "Context", adapter_dir: Path, holdout: Path, production: Comparison, adapter_ref: str
) -> GateDecision:
    """Every check, then the gate; the decision and evidence land in the adapter folder for the registry."""
    from pipelines.batches.read import read_batch
    from pipelines.evaluation.checks.suite import evaluate as run_checks
    from pipelines.evaluation.holdout_explanations import ExplainBudget

    settings = ctx.settings
    return run_checks(
        adapter_dir,
        read_batch(holdout, max_bytes=ctx.policy.data.max_file_bytes, encoding_option=None),
        ctx.policy,
        base_model_dir=settings.base_model_dir,
        base_model_id=settings.model_id_of(None),
        cache_dir=settings.home,
        production_dir=production.folder,
        production_ref=production.ref,
        adapter_ref=adapter_ref,
        out_dir=adapter_dir,
        explain_budget=ExplainBudget.of(settings),
    )


def register(ctx: "Context", adapter_dir: Path, name: str, reason: str) -> str:
    # The registry uploads every file before it writes the manifest, so a failure here leaves no
    # half-written version: a version exists only once its manifest does.
    return ctx.registry(with_base=True).register(adapter_dir, name, reason=reason).version


def promote(ctx: "Context", name: str, version: str, to: str, reason: str) -> None:
    promotion.promote(ctx, name, version, to, reason)


@dataclass(frozen=True)
class Steps:
    """The steps ``run`` calls, each with the arguments of the plain function of the same name."""

    production_labels: Callable[..., list[str] | None]
    validate: Callable[..., ValidationReport]
    train: Callable[..., TrainResult]
    fetch_production: Callable[..., Comparison]
    evaluate: Callable[..., GateDecision]
    register: Callable[..., str]
    promote: Callable[..., object]


PLAIN = Steps(production_labels, validate, train, fetch_production, evaluate, register, promote)


# ---- the sequence --------------------------------------------------------------------------------


def run_folder(ctx: "Context", name: str, workdir: Path | None, log: Log) -> Path:
    """``workdir``, or a new folder under ``runs/<name>/`` once the oldest finished ones beyond
    ``keep_runs`` are pruned; either way marked unfinished."""
    validate_name(name)  # it names a folder: an API caller's "../x" must not prune or write outside runs/
    if workdir is None:
        if ctx.settings.keep_runs:
            pruned = prune_run_folders(RUNS / name, keep=ctx.settings.keep_runs - 1)
            for problem in pruned.left:
                log.warning("an old run folder could not be deleted: %s", problem)
        workdir = new_run_folder(RUNS / name)
    run_dir = Path(workdir)
    (run_dir / FINISHED).unlink(missing_ok=True)  # a workdir used before: this run is not finished yet
    return run_dir


def attach_validation_evidence(report: ValidationReport, adapter_dir: Path) -> None:
    """Copy the validation report files into the adapter's reports/ so they are stored with the version."""
    if report.report_json:
        shutil.copytree(Path(report.report_json).parent, adapter_dir / "reports" / "validation", dirs_exist_ok=True)


@contextmanager
def evaluation_prepared(ctx: "Context", holdout: Path, batch: Path, encoding: str | None) -> Iterator[None]:
    """Within: what evaluate needs of the base, the holdout and the accepted ``batch`` is prepared in a thread
    on the core the training child leaves free (``pipelines.evaluation.preparation``), and after it the load
    check's probe is launched there to load the base; waited for on the way out, so evaluate never runs beside
    them. The preparation never raises: the training's error stays the error."""
    from pipelines.evaluation.checks.load import launch_ahead
    from pipelines.evaluation.preparation import prepare_evaluation

    preparing = threading.Thread(
        target=prepare_evaluation,
        args=(holdout, ctx.settings, ctx.policy, batch, encoding),
        name="tailor-prepare-evaluation",
    )

    failed = threading.Event()

    def launch_probe() -> None:
        # After the preparation, not beside it: the core is free then. From this thread, not the preparation's:
        # that one lowers its own priority, and a probe started from it would inherit it.
        preparing.join()
        if not failed.is_set():  # no candidate is coming
            launch_ahead(ctx.settings.base_model_dir)

    launching = threading.Thread(target=launch_probe, name="tailor-launch-load-probe")
    preparing.start()
    launching.start()
    try:
        yield
    except BaseException:
        failed.set()
        raise
    finally:
        preparing.join()
        launching.join()


def run(ctx: "Context", request: RetrainRequest, log: Log, steps: Steps = PLAIN) -> RetrainOutcome:
    """The whole sequence on one batch; the outcome is also written into the run folder (``FINISHED``).

    A rejected batch or candidate is an outcome (``rejected``), not an error.
    """
    started = time.monotonic()
    name, batch, holdout = request.name, request.batch, request.holdout
    # A malformed card is refused before the training it would follow, however the run was started.
    card = read_card(request.card) if request.card is not None else None
    run_dir = run_folder(ctx, name, request.workdir, log)
    adapter_dir = run_dir / "adapter"

    def outcome(status, **fields) -> RetrainOutcome:
        result = RetrainOutcome(
            name=name, batch=str(batch), status=status, total_seconds=time.monotonic() - started, **fields
        )
        try:
            mark_finished(run_dir, result.model_dump_json(indent=2))
        except OSError as err:  # a full disk must not turn a registered, promoted run into a crash
            log.warning("%s: the outcome could not be written (%s), so the folder is never pruned", run_dir, err)
        return result

    # The training child's imports then run beside validation instead of after it.
    warm_up_training()
    allowed = None if request.labels else steps.production_labels(ctx, name)
    report = steps.validate(
        ctx, batch, holdout, request.labels, allowed, run_dir / "validation", request.encoding, request.incoming
    )
    if not report.accepted:
        return outcome("rejected_data", validation=report, notes=[f"batch quarantined to {report.quarantined_to}"])

    try:
        with evaluation_prepared(ctx, holdout, batch, request.encoding):
            trained = steps.train(ctx, batch, adapter_dir, report.data_version, request.device, request.encoding)
        attach_validation_evidence(report, adapter_dir)
        production = steps.fetch_production(ctx, name, run_dir / "production")
        decision = steps.evaluate(ctx, adapter_dir, holdout, production, f"{name}:candidate")
    finally:
        from pipelines.evaluation.checks.load import discard_launched

        # Evaluate took the probe launched during training; one a failed run left waiting would hold a
        # loaded base for as long as this process lives (a console, a watch).
        discard_launched()
    # A file name may hold a line break, which the registry refuses in a reason after all that training.
    verdict = decision.verdict
    if card is not None:
        add_card(adapter_dir, card)
    version = steps.register(ctx, adapter_dir, name, f"retrain on {escape_control(Path(batch).name)}: gate {verdict}")
    common = dict(
        validation=report,
        gate=decision,
        version=version,
        adapter_dir=str(adapter_dir),
        train_seconds=trained.cost.wall_seconds,
    )
    if verdict == "not judged":  # the machine was too busy to judge load: not the adapter's failure
        return outcome(
            "registered",
            **common,
            notes=[
                *decision.not_judged,
                "registered, not promoted: judge it "
                f"again when the machine is quieter: tailor judge-load {name} {version}",
            ],
        )
    if not decision.passed:
        return outcome("rejected_gate", **common, notes=["gate failed: registered for the record, not promoted"])

    policy = ctx.policy
    promoted, notes = [], []
    if policy.promotion.auto_promote_staging:
        steps.promote(ctx, name, version, "staging", f"gate passed under policy {policy.version}")
        promoted.append("staging")
    if policy.promotion.auto_promote_production:
        try:
            steps.promote(ctx, name, version, "production", f"automatic: gate passed under policy {policy.version}")
            promoted.append("production")
        except RefusedError as err:  # the four-eyes rule: a person other than the trainer must promote
            notes.append(f"production not promoted automatically: {err}")
    else:
        notes.append(f"production needs a person: tailor promote {name} {version} --to production --reason ...")
    return outcome("promoted" if promoted else "registered", **common, promoted_to=promoted, notes=notes)


def lost_run_fate(ctx: "Context", batch: Path, name: str) -> str:
    """What a run whose outcome was lost did with ``batch``, as far as the folder and registry tell."""
    from pipelines.batches.data_version import dvc_md5

    if not batch.is_file():
        quarantine = ctx.settings.data_dir / "quarantine"
        return f"{batch} is gone: it was probably rejected and quarantined (see {quarantine})"
    try:
        version = registered_data_versions(ctx, name).get(dvc_md5(batch))
    except TailorError as err:
        return f"nor can the registry say whether it registered a version from {batch} ({err})"
    if version is None:
        return f"no version of {name} holds the content of {batch}; run it again"
    return (
        f"{name} {version} holds the content of {batch} (`tailor show {name} {version}`); its promotions, if any, "
        f"may not have run: `tailor list {name}`"
    )
