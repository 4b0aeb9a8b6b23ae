"""Run every check on a candidate adapter and decide the gate: the ``evaluate`` step.

The candidate (and production, when there is one) predict the holdout once; each check then judges its
own slice of evidence. A check that raises is recorded as errored, never skipped, so the gate fails it
with the error as the reason while the other checks still report.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pipelines.batches.read import read_batch
from pipelines.evaluation import gate
from pipelines.evaluation.baselines import predict_baselines
from pipelines.evaluation.checks import bias, cost, drift, load, quality
from pipelines.evaluation.holdout_explanations import ExplainBudget, explain_holdout, write_explanations
from pipelines.policy import Policy
from pipelines.records import CheckResult, GateDecision, LabeledBatch, listed
from registry.adapter_folder import GATE_DECISION_FILE, GATE_REPORT_FILE, REFERENCE_FILE, WEIGHTS_FILE
from registry.errors import RefusedError, TailorError
from registry.explanations import EXPLANATIONS_FILE
from registry.fingerprint import file_sha256
from serving import progress


def _require_scorable(holdout: LabeledBatch) -> None:
    """Raises RefusedError for rows a score cannot be given (blank) or told apart (an id twice)."""
    blank = holdout.blank_rows()
    if blank:
        raise RefusedError(
            f"{holdout.source}: {len(blank)} holdout row(s) have an empty text or label (ids "
            f"{holdout.named(blank)}): such a row cannot be scored; fix or remove it"
        )
    repeated = sorted(i for i, n in Counter(holdout.ids).items() if n > 1)
    if repeated:
        raise RefusedError(
            f"{holdout.source}: holdout ids repeat ({listed(repeated)}): each row needs its own id, "
            "or reports name the wrong row"
        )


def evaluate(
    adapter_dir: Path,
    holdout: LabeledBatch,
    policy: Policy,
    *,
    base_model_dir: Path,
    base_model_id: str,
    cache_dir: Path | None,
    production_dir: Path | None = None,
    production_ref: str | None = None,
    adapter_ref: str | None = None,
    out_dir: Path | None = None,
    explain_budget: ExplainBudget | None = None,
) -> GateDecision:
    """Judge the adapter in ``adapter_dir`` on ``holdout`` under ``policy``.

    Args:
        adapter_dir: the candidate's folder.
        holdout: the labeled holdout.
        policy: the promotion policy.
        base_model_dir: the base model both adapters were trained on.
        base_model_id: its recorded name; ``cache_dir``: where its fingerprint is cached (None: hashed now).
        production_dir: the folder of the version holding ``production`` (downloaded), or None.
        production_ref: how production is named in reports (``name:version``).
        adapter_ref: how the candidate is named in reports (default: its folder).
        out_dir: where ``gate_decision.json`` and ``reports/`` go (normally ``adapter_dir``); None writes nothing.
        explain_budget: with ``out_dir``, explain that many holdout rows into ``reports/explanations.json``;
            None explains none.

    Raises:
        RefusedError: a holdout row has an empty text or label, or holdout ids repeat.
        NotFoundError, RefusedError, ConfigError: the candidate adapter cannot be loaded at all.
        OSError: ``out_dir`` cannot be created (a file, a device, a folder that cannot be written).
    """
    from serving.model import load_base, load_classifier

    _require_scorable(holdout)
    if out_dir is not None:
        # Fail on a place the evidence cannot go now, not after loading the models and running every check.
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        # The checks overwrite their reports one by one: an evaluation that dies half-way must not
        # leave an earlier run's decision beside the new evidence, where `register` would take it.
        (Path(out_dir) / GATE_DECISION_FILE).unlink(missing_ok=True)
        # Nor an earlier adapter's explanations, which `register` would store as this one's.
        (Path(out_dir) / EXPLANATIONS_FILE).unlink(missing_ok=True)
    # A missing or broken model fails here, before a probe process is started for it.
    base = load_base(base_model_dir, model_id=base_model_id, cache_dir=cache_dir)
    candidate = load_classifier(adapter_dir, base)
    # Before the checks: the probe loads beside them (in a retrain it has loaded the base while the candidate
    # trained: only the adapter is left) and times after them.
    with load.Probe.start(adapter_dir, base_model_dir, holdout.texts) as probe:
        candidate_pred = candidate.predict(holdout.texts)
        production_pred: list[str] | None = None
        production_error: str | None = None
        if production_dir is not None:
            try:
                production_pred = load_classifier(production_dir, base).predict(holdout.texts)
            except TailorError as err:
                production_error = f"production {production_ref} cannot be loaded for the comparison: {err}"

        # Explaining is the evaluator's longest step and needs only the candidate's predictions: it runs in a
        # thread beside the other checks, whose scikit-learn, Evidently and report writing mostly use one core.
        explaining = None
        if out_dir is not None and explain_budget is not None:
            pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tailor-explain-holdout")
            explaining = pool.submit(
                explain_holdout, candidate, holdout, candidate_pred, explain_budget, adapter_ref or str(adapter_dir)
            )
            pool.shutdown(wait=False)  # the submitted work still runs; nothing else will be

        @functools.cache
        def candidate_reference() -> LabeledBatch:  # the rows it trained on: quality and drift both read them
            return read_batch(Path(adapter_dir) / REFERENCE_FILE, max_bytes=policy.data.max_file_bytes)

        def production_reference() -> LabeledBatch | None:
            return (
                read_batch(Path(production_dir) / REFERENCE_FILE, max_bytes=policy.data.max_file_bytes)
                if production_dir is not None
                else None
            )

        def quality_check() -> CheckResult:
            if production_error:
                raise TailorError(production_error)
            reference = candidate_reference()
            return quality.run(
                holdout,
                candidate_pred,
                candidate.labels,
                policy.quality,
                trained_texts=reference.texts,
                production_pred=production_pred,
                production=production_ref,
                baseline_pred=predict_baselines(
                    reference,
                    holdout.texts,
                    base,
                    candidate.meta.max_length,
                    cost.read_train_result(adapter_dir).params["head_C"],
                ),
                out_dir=out_dir,
            )

        checks = [
            _guarded(quality.NAME, quality_check),
            _guarded(
                drift.NAME,
                lambda: drift.run(
                    candidate_reference(),
                    production_reference(),
                    base_model_dir,
                    policy.drift,
                    reference_name=production_ref,
                    out_dir=out_dir,
                ),
            ),
            _guarded(
                bias.NAME, lambda: bias.run(holdout, candidate_pred, candidate.labels, policy.bias, out_dir=out_dir)
            ),
            _guarded(cost.NAME, lambda: cost.run(cost.read_train_result(adapter_dir), policy.cost, out_dir=out_dir)),
        ]
        # Joined before the load check: nothing of the evaluator's may run beside the probe's timing.
        if explaining is not None:
            write_explanations(explaining.result(), out_dir)
        checks.append(_guarded(load.NAME, lambda: load.run(probe.result(), policy.load, out_dir=out_dir)))
    decision = gate.decide(
        policy,
        checks,
        adapter=adapter_ref or str(adapter_dir),
        against=production_ref,
        adapter_sha256=file_sha256(Path(adapter_dir) / WEIGHTS_FILE),
    )
    if out_dir is not None:
        decision.write_json(Path(out_dir) / GATE_DECISION_FILE)
        report = Path(out_dir) / GATE_REPORT_FILE
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(gate.describe(decision) + "\n")
    return decision


def _guarded(name: str, check: Callable[[], CheckResult]) -> CheckResult:
    """Run one check; whatever it raises becomes an errored result that the gate fails with a reason."""
    progress.step(f"check: {name}")
    try:
        return check()
    except TailorError as err:
        return CheckResult.failed(name, str(err))
    except Exception as err:  # noqa: BLE001 - a crashing check must fail the gate, not hide the other checks
        return CheckResult.failed(name, f"{type(err).__name__}: {err}")
