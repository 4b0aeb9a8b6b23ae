"""Judge a registered version's operating load again, when the machine was too busy the first time.

The load check is the one check whose verdict depends on the minute it was measured in: when the
bare base model's own spread said the machine was too busy, the gate recorded it as not judged. This
measures it again on the version's verified files and records the new verdict, with its evidence, as a
new ``judge`` audit event; the version keeps its number, files and manifest.
"""

from __future__ import annotations

from pathlib import Path

from pipelines.batches.read import read_batch
from pipelines.evaluation import gate
from pipelines.evaluation.checks import load
from pipelines.policy import Policy
from pipelines.records import GateDecision
from registry.adapter_folder import GATE_DECISION_FILE, REFERENCE_FILE
from registry.errors import RefusedError
from registry.gate_record import latest_gate
from registry.gate_summary import gate_summary
from registry.registry import Registry


def judge_load(
    registry: Registry, name: str, version: str, policy: Policy, *, base_model_dir: Path, work: Path
) -> GateDecision:
    """Measure ``name`` ``version``'s load again and record the gate's new verdict as a ``judge`` event.

    Args:
        work: an empty folder to download the version into (its files are checked against their hashes).

    Raises:
        RefusedError: the version's load was already judged or something else failed (measuring again
            until it passes would be choosing the minute, not judging the adapter), it has no gate
            decision, ``policy`` is not the one its gate was decided under, or the registry (its audit
            fold) refuses the event.
        NotFoundError, IntegrityError: no such version, or its files do not match their hashes.
    """
    manifest = registry.download(name, version, work)
    standing = latest_gate(registry.events(name), manifest)
    if standing is None or not (work / GATE_DECISION_FILE).is_file():
        raise RefusedError(
            f"{name} {version} was registered without a gate decision: there is no load verdict to "
            "judge again; evaluate its folder (`tailor evaluate`) instead"
        )
    if load.NAME not in standing.unjudged_checks() or standing.failures:
        raise RefusedError(
            f"{name} {version}'s gate has a verdict already ({standing.verdict}): only a load the gate could "
            "not judge (machine too busy), with nothing else failed, is measured again"
        )
    if standing.policy_sha256 != policy.sha256:
        raise RefusedError(
            f"{name} {version}'s gate was decided under policy {standing.policy_version} "
            f"({(standing.policy_sha256 or '?')[:12]}), not {policy.version} ({policy.sha256[:12]}): "
            "judge its load under the same policy (--policy), or evaluate its folder again"
        )
    recorded = GateDecision.read_json(work / GATE_DECISION_FILE)
    texts = read_batch(work / REFERENCE_FILE, max_bytes=policy.data.max_file_bytes).texts
    fresh = load.run(load.measure(work, base_model_dir, texts), policy.load)
    checks = [fresh if check.name == load.NAME else check for check in recorded.checks]
    decision = gate.rejudge(policy, recorded.model_copy(update={"checks": checks}))
    registry.judge(
        name,
        version,
        gate_summary(decision.model_dump(mode="json")),
        fresh.model_dump(mode="json"),
        reason=f"load judged again on {fresh.details['host']}: gate {decision.verdict}",
    )
    return decision
