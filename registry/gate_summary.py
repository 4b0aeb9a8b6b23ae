"""A gate decision in brief, as the registry keeps it, and the one way a failed check is worded.

The CLI, the manifest, the audit log, the report and the console all show a failure through
``failure_line`` and a verdict through ``gate_verdict``, so a failure reads the same everywhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any


def gate_verdict(passed: bool, failures: list, not_judged: list) -> str:
    """One word for a gate decision, the same everywhere it is shown: passed, failed or not judged."""
    return "passed" if passed else ("failed" if failures or not not_judged else "not judged")


def failure_line(
    check: str,
    *,
    reason: str = "",
    metric: str | None = None,
    value: float | None = None,
    limit: float | None = None,
    comparison: str | None = None,
    policy_key: str | None = None,
) -> str:
    """One failed gate check as people read it, wherever it is shown (CLI, manifest, report).

    A failure with a ``policy_key`` is a limit that did not hold; one without is a check that could
    not be judged as it stands (errored, missing, cut down): its ``reason`` says why.
    """
    if policy_key is None:
        return f"{check}: {reason or 'failed'}"
    return f"{check}: {metric} = {_number(value)}, policy {policy_key} requires {comparison} {_number(limit)}"


def failure_check(line: str) -> str:
    """The check a failure line names: its text before the first ':' (or '.', as lines written before
    2026-12-06 read ``check.metric = …``)."""
    return re.split(r"[.:]", line, maxsplit=1)[0]


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "not measured" if value is None else str(value)


@dataclass(frozen=True)
class GateSummary:
    """The gate decision in brief; the full decision stays in the version's gate_decision.json."""

    passed: bool
    policy_sha256: str | None
    policy_version: str | None
    failures: list[str] = field(default_factory=list)  # failure_line of each
    against: str | None = None  # what the candidate was compared with: NAME:VERSION of production then, or None
    adapter_sha256: str | None = None  # the weights it judged (decisions written before 2026-12-06 lack it)
    # Checks the gate could not judge ("CHECK: not judged: why"), e.g. load on a machine too busy: neither
    # passed nor failed, and the only part of a verdict a later ``judge`` event may change.
    not_judged: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        return gate_verdict(self.passed, self.failures, self.not_judged)

    def consistent(self) -> bool:
        """Passed exactly when nothing failed and every check was judged."""
        return self.passed == (not self.failures and not self.not_judged)

    def unjudged_checks(self) -> set[str]:
        return {why.partition(":")[0] for why in self.not_judged}


def gate_summary(decision: dict[str, Any] | None) -> GateSummary | None:
    """Brief form of a GateDecision JSON: every failure as its ``failure_line``."""
    if decision is None:
        return None
    failures = [
        failure_line(str(f.get("check")), **_failure_fields(f))
        for f in decision.get("failures", [])
        if isinstance(f, dict)
    ]

    def text(key: str) -> str | None:
        return decision[key] if isinstance(decision.get(key), str) else None

    return GateSummary(
        passed=decision.get("passed") is True,
        policy_sha256=decision.get("policy_sha256"),
        policy_version=decision.get("policy_version"),
        failures=failures,
        against=text("against"),
        adapter_sha256=text("adapter_sha256"),
        not_judged=[why for why in decision.get("not_judged", []) if isinstance(why, str)],
    )


def _failure_fields(failure: dict[str, Any]) -> dict[str, Any]:
    if failure.get("policy_key") is None:
        # Decisions written before 2026-12-06 shaped a reason as the threshold "status == ok", with the
        # reason as its value.
        legacy = failure.get("value") if failure.get("metric") == "status" else None
        return {"reason": str(failure.get("reason") or legacy or "")}
    return {key: failure.get(key) for key in ("metric", "value", "limit", "comparison", "policy_key")}
