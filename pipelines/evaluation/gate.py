"""The promotion gate: every check result judged against the policy, every failure listed.

Pure: no files, no clock beyond the decision's timestamp, no model. The gate re-judges each measured value
against the limit the given policy holds (not the limit the check happened to use), so the same
measurements can be judged under a stricter or looser policy and the decision always matches the policy
whose sha256 it records.
"""

from __future__ import annotations

from pipelines.policy import Policy
from pipelines.records import CheckResult, GateDecision, GateFailure, holds
from registry.errors import ConfigError, RefusedError

# The checks every candidate must pass; a missing one fails the gate rather than passing by omission.
REQUIRED_CHECKS = ("quality", "drift", "bias", "cost", "load")
# The limits these checks always judge (drift and bias may have nothing to judge): a decision file
# without one was cut down, and re-judging it must not pass it by omission.
REQUIRED_LIMITS = {
    "quality": (
        "quality.min_macro_f1",
        "quality.min_holdout_size",
        "quality.min_label_coverage",
        "quality.max_holdout_trained_share",
    ),
    "cost": ("cost.max_train_seconds", "cost.max_peak_rss_mb", "cost.max_money"),
    "load": (
        "load.max_base_spread",
        "load.max_p95_ratio",
        "load.min_throughput_ratio",
        "load.max_rss_mb",
        "load.max_adapter_mb",
    ),
}
# Limits that say whether some of a check's measurements can be judged: when one does not hold, the check
# is "not judged" (with this reason), neither passed nor failed, and the limits tied to the noise it
# measures are not read; the others (memory, size, throughput over many rows) are judged as always.
PRECONDITIONS = {"load.max_base_spread": ("machine too busy", ("load.max_p95_ratio", "load.max_p95_ms"))}
REGRESSION_LIMIT = "quality.max_regression"  # judged whenever the candidate was compared with production


def decide(
    policy: Policy,
    checks: list[CheckResult],
    *,
    adapter: str | None = None,
    against: str | None = None,
    adapter_sha256: str | None = None,
) -> GateDecision:
    """Judge ``checks`` (measured under ``policy``'s measurement settings) under ``policy``.

    A check that errored, is missing, was given twice, or names a policy key the policy lacks counts as
    failed with a reason; every failed threshold is listed with its value, limit and comparison.
    """
    failures: list[GateFailure] = []
    seen: dict[str, int] = {}
    for check in checks:
        seen[check.name] = seen.get(check.name, 0) + 1
    for name in REQUIRED_CHECKS:
        if name not in seen:
            failures.append(_reason(name, "check did not run (missing result)"))
    for name, count in seen.items():
        if count > 1:
            failures.append(_reason(name, f"check reported {count} results; exactly one is expected"))
    not_judged: list[str] = []
    for check in checks:
        unread: set[str] = set()
        if (open_ := _not_judged(policy, check)) is not None:
            not_judged.append(open_[0])
            unread = open_[1]
        failures.extend(_judge(policy, check, compared=against is not None, unread=unread))
    return GateDecision(
        passed=not failures and not not_judged,
        not_judged=not_judged,
        policy_sha256=policy.sha256,
        policy_version=policy.version,
        failures=failures,
        checks=list(checks),
        adapter=adapter,
        adapter_sha256=adapter_sha256,
        against=against,
        measured_under=policy.measurement_settings(),
    )


def rejudge(policy: Policy, recorded: GateDecision) -> GateDecision:
    """``recorded``'s checks judged again under ``policy``.

    Raises:
        RefusedError: ``policy`` measures differently (a confidence level, a minimum group size…)
            than the policy the checks ran under, or ``recorded`` does not say how they ran.
    """
    now = policy.measurement_settings()
    if recorded.measured_under is None:
        raise RefusedError(
            "the decision does not record the settings its checks measured with (written by an "
            "older Tailor): run `tailor evaluate` again"
        )
    changed = [
        f"{key} {recorded.measured_under.get(key)} → {now[key]:g}"
        for key in now
        if recorded.measured_under.get(key) != now[key]
    ]
    if changed:
        raise RefusedError(
            f"policy {policy.version} measures differently than the checks did ({'; '.join(changed)}): "
            "the gate re-judges limits, not measurements; run `tailor evaluate` again"
        )
    return decide(
        policy,
        recorded.checks,
        adapter=recorded.adapter,
        against=recorded.against,
        adapter_sha256=recorded.adapter_sha256,
    )


def _not_judged(policy: Policy, check: CheckResult) -> tuple[str, set[str]] | None:
    """Why ``check`` cannot be wholly judged under ``policy`` (a precondition does not hold) and the policy
    keys left unread (the precondition's own and those tied to it), or None."""
    if check.error is not None:
        return None
    for t in check.thresholds:
        if t.policy_key in PRECONDITIONS and t.value is not None and t.value == t.value:
            try:
                limit = policy.limit(t.policy_key)
            except ConfigError:
                return None  # _judge names the missing limit as a failure
            if not holds(t.value, t.comparison, limit):
                reason, tied = PRECONDITIONS[t.policy_key]
                return (
                    f"{check.name}: not judged: {reason} ({t.metric} {t.value:.3g} is not {t.comparison} "
                    f"{limit:.3g}, policy {t.policy_key}; {', '.join(tied)} not read); "
                    f"{check.details.get('summary', '')}",
                    {t.policy_key, *tied},
                )
    return None


def _judge(policy: Policy, check: CheckResult, *, compared: bool, unread: set[str]) -> list[GateFailure]:
    if check.error is not None:
        return [_reason(check.name, f"check errored: {check.error}", evidence=check.evidence)]
    judged = {t.policy_key for t in check.thresholds}
    required = REQUIRED_LIMITS.get(check.name, ()) + (
        (REGRESSION_LIMIT,) if compared and check.name == "quality" else ()
    )
    missing = [key for key in required if key not in judged]
    if missing and check.name == "load" and "load.max_p95_ms" in judged and "load.max_p95_ratio" in missing:
        return [
            _reason(
                check.name,
                "measured before the load check timed the bare base model (no ratios to judge); "
                "run `tailor evaluate` again",
                evidence=check.evidence,
            )
        ]
    if missing:
        return [
            _reason(
                check.name,
                f"the result judges no {', '.join(missing)}: the check always does, so the "
                "decision was cut down; run `tailor evaluate` again",
                evidence=check.evidence,
            )
        ]
    if not check.thresholds:
        # Reported but not judged (e.g. no groups for the bias check): its own verdict stands.
        return (
            []
            if check.passed
            else [_reason(check.name, "check failed without a measured threshold", evidence=check.evidence)]
        )
    failures = []
    for t in check.thresholds:
        if t.policy_key in unread:
            continue
        try:
            limit = policy.limit(t.policy_key)
        except ConfigError as err:
            failures.append(_reason(check.name, f"{t.metric}: {err}", evidence=check.evidence))
            continue
        if (problem := _threshold_problem(check.name, t.policy_key, t.comparison)) is not None:
            failures.append(_reason(check.name, f"{t.metric}: {problem}", evidence=check.evidence))
            continue
        if not holds(t.value, t.comparison, limit):
            failures.append(
                GateFailure(
                    check=check.name,
                    metric=t.metric,
                    value=t.value,
                    limit=limit,
                    comparison=t.comparison,
                    policy_key=t.policy_key,
                    evidence=check.evidence,
                    reason=(
                        f"{t.metric} was not measured"
                        if t.value is None or t.value != t.value
                        else f"{t.metric} {t.value:.4g} is not {t.comparison} {limit:.4g}"
                    ),
                )
            )
    return failures


def _threshold_problem(check: str, key: str, comparison: str) -> str | None:
    """A threshold whose key or comparison is not the one its limit means (an edited decision)."""
    section, _, name = key.partition(".")
    if section != check:
        return f"judged against {key}, a limit of the {section} check"
    wanted = {"max": "<=", "min": ">="}.get(name.split("_")[0])
    if wanted is not None and comparison != wanted:
        return (
            f"compared with {comparison}, but {key} is {'an upper' if wanted == '<=' else 'a lower'} limit ({wanted})"
        )
    return None


def _reason(check: str, reason: str, *, evidence: list[str] | None = None) -> GateFailure:
    return GateFailure(check=check, reason=reason, evidence=evidence or [])


def describe(decision: GateDecision) -> str:
    """A few lines for people: the verdict, then one line per failure."""
    head = (
        f"gate {decision.verdict.upper()} under policy {decision.policy_version} (sha256 {decision.policy_sha256[:12]})"
    )
    if decision.adapter:
        head += f" for {decision.adapter}"
    if decision.against:
        head += f" against {decision.against}"
    lines = [head]
    failed = {f.check for f in decision.failures}
    unjudged = {why.partition(":")[0] for why in decision.not_judged}
    for check in decision.checks:
        verdict = "error" if check.error else ("FAIL" if check.name in failed else "pass")
        if check.name in unjudged and verdict == "pass":
            verdict = "NOT JUDGED"
        elif not check.thresholds and not check.error:
            verdict += " (not judged)"
        value = f" {check.value:.4g}" if isinstance(check.value, float) else ""
        lines.append(f"  {check.name:<8} {verdict}{value}  {check.details.get('summary', '')}".rstrip())
    lines += [f"  failed: {f.describe()}" for f in decision.failures]
    lines += [f"  {why}; judge it again later: tailor judge-load NAME VERSION" for why in decision.not_judged]
    return "\n".join(lines)
