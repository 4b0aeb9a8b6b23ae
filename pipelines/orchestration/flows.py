"""Prefect flows: ``retrain`` (validate → train → evaluate → gate → register → promote), ``promote``,
``rollback`` and ``watch`` (the scheduled one: retrain on every batch that arrived since the last run).

Only Prefect's part lives here: the decorators, the retry policy and which step is a task. What the
steps do and in which order is in ``pipelines/usecases/``, which the CLI calls too. Tasks that touch
the object store retry on store errors only; a refusal (a rule, a bad file) is final and never retried.

Each flow run builds its ``Context`` once, at its start, and hands it to every task: the run judges,
registers and promotes under one snapshot of the settings and the policy.

No flow takes a policy file as a parameter: every one judges and promotes under the policy its
process is configured with (``policy``, ``TAILOR_POLICY``). Anyone who can reach the Prefect API
can start a served deployment with parameters of their choosing, and a laxer policy would have
lent them the schedule's store role without its four-eyes and gate rules.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.states import Failed

from pipelines.context import Context
from pipelines.records import RetrainOutcome
from pipelines.usecases import promotion
from pipelines.usecases import retrain as retraining
from pipelines.usecases import watch as watching
from pipelines.usecases.retrain import RetrainRequest
from pipelines.usecases.watch import Arrival, ProcessedBatch
from registry.audit.events import AuditEvent
from registry.errors import StoreError


def _transient(task, task_run, state) -> bool:
    """Retry only what a retry can fix: the store being briefly unreachable, not a refused rule."""
    try:
        state.result()
    except StoreError:
        return True
    except Exception:  # noqa: BLE001 - every other failure is final
        return False
    return False


# Store-touching tasks: a few quick retries cover a restarting gateway or a dropped connection.
store_task = task(retries=3, retry_delay_seconds=[1, 4, 10], retry_condition_fn=_transient, cache_policy=NO_CACHE)
local_task = task(cache_policy=NO_CACHE)

production_labels = store_task(retraining.production_labels)
validate = local_task(retraining.validate)
train = local_task(retraining.train)
fetch_production = store_task(retraining.fetch_production)
evaluate = local_task(retraining.evaluate)
register = store_task(retraining.register)
move_alias = store_task(promotion.move_alias)
move_back = store_task(promotion.move_back)
staging_owed = store_task(watching.staging_owed)


@store_task
def announce(ctx: Context, event: AuditEvent) -> int:
    """Send the signed promotion event to every configured webhook; returns how many got it."""
    deliveries = promotion.announce(ctx, event)
    failed = [d.url for d in deliveries if not d.delivered]
    if failed:
        get_run_logger().warning("webhook delivery failed after retries: %s (see deliveries/%s/)", failed, event.name)
    return len(deliveries) - len(failed)


def _promote(ctx: Context, name: str, version: str, to: str, reason: str) -> AuditEvent:
    event = move_alias(ctx, name, version, to, reason)
    announce(ctx, event)
    return event


TASKS = retraining.Steps(production_labels, validate, train, fetch_production, evaluate, register, _promote)


@flow(name="promote")
def promote(name: str, version: str, to: str, reason: str) -> AuditEvent:
    """Point an alias at a version, exactly as `tailor promote` does, then announce it."""
    return _promote(Context.snapshot(), name, version, to, reason)


@flow(name="rollback")
def rollback(name: str, reason: str, alias: str = "production") -> AuditEvent:
    """Point an alias back at the version it held before, exactly as `tailor rollback` does, then announce it."""
    ctx = Context.snapshot()
    event = move_back(ctx, name, reason, alias=alias)
    announce(ctx, event)
    return event


@flow(name="retrain")
def retrain(
    batch: Path,
    name: str,
    holdout: Path,
    labels: Path | None = None,
    workdir: Path | None = None,
    device: str = "auto",
    encoding: str | None = None,
    incoming: Path | None = None,
    card: Path | None = None,
) -> RetrainOutcome:
    """validate → train → evaluate → gate → register → promote to staging (production only if the policy says so).

    ``encoding`` names the batch's text encoding (None: UTF-8). A rejected batch is moved into
    quarantine only from ``incoming`` (default: the data folder's ``incoming/``), else copied.

    A rejected batch or candidate ends the run in a Failed state (visible as such in the Prefect UI)
    that still carries the ``RetrainOutcome``: call with ``return_state=True`` and read
    ``state.result(raise_on_failure=False)``.
    """
    request = RetrainRequest(batch, name, holdout, labels, workdir, device, encoding, incoming, card)
    outcome = retraining.run(Context.snapshot(), request, get_run_logger(), TASKS)
    if outcome.rejected:
        return Failed(message=f"{outcome.status}: {'; '.join(outcome.notes)}", data=outcome)
    return outcome


@flow(name="watch")
def watch(
    watch_dir: Path,
    name: str,
    holdout: Path,
    labels: Path | None = None,
    retrain_deployment: str | None = None,
    encoding: str | None = None,
) -> list[ProcessedBatch]:
    """Retrain on each batch that arrived in ``watch_dir`` since the last run; do nothing otherwise.

    ``encoding`` names the text encoding of every batch in ``watch_dir`` (None: UTF-8).

    With ``retrain_deployment`` (e.g. ``retrain/gpu``) each retrain runs on that deployment's work
    pool (a GPU host) and this run waits for it; otherwise it runs here as a subflow.
    """
    ctx, log = Context.snapshot(), get_run_logger()

    def retrain_one(arrival: Arrival) -> ProcessedBatch | None:
        path = arrival.path
        if retrain_deployment:
            from prefect.deployments import run_deployment

            run = run_deployment(
                retrain_deployment,
                parameters={
                    "batch": str(path),
                    "name": name,
                    "holdout": str(holdout),
                    "labels": labels and str(labels),
                    "incoming": str(path.parent),
                    "encoding": encoding,
                },
            )
            if run.state.is_crashed() or run.state.is_cancelled():
                log.warning(
                    "%s: the retrain run %s ended %s; the batch is tried again next run",
                    path.name,
                    run.name,
                    run.state.name,
                )
                return None
            return arrival.processed(f"{run.name}: {run.state.message or run.state.name}")
        # The watched folder is where batches are handed in: a rejected one is moved out of it.
        result = retrain(
            path, name, holdout, labels=labels, encoding=encoding, incoming=path.parent, return_state=True
        ).result(raise_on_failure=False)
        return watching.processed_from(arrival, result, log)

    def finish_staging(name: str, version: str) -> bool:
        """Promote ``version`` to staging if it is owed it (see ``owed_staging``); True when it was."""
        if not staging_owed(ctx, name, version):
            return False
        _promote(ctx, name, version, "staging", watching.recovery_reason(ctx))
        return True

    return watching.tick(
        ctx, watch_dir, name, encoding=encoding, retrain=retrain_one, finish_staging=finish_staging, log=log
    )
