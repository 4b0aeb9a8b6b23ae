"""`tailor retrain` refuses a bad argument before any Prefect server or store is involved."""

from __future__ import annotations

import pytest

from pipelines.cli.main import run
from tests.conftest import REPO

SAMPLE = REPO / "data" / "sample"


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "change, code, message",
    [
        ({"--name": "../x"}, 1, "adapter name '../x' is refused"),
        ({"--data": "no-such-batch.csv"}, 1, "batch file no-such-batch.csv does not exist"),
        ({"--holdout": "/dev/zero"}, 1, "--holdout: /dev/zero is a device, pipe or socket, not a file"),
        ({"--labels": str(SAMPLE)}, 1, f"labels file {SAMPLE} is a folder, not a file"),
        ({"--policy": "/dev/zero"}, 2, "policy file /dev/zero is a device, pipe or socket, not a file"),
        ({"--card": str(SAMPLE / "labels.txt")}, 2, f"--card {SAMPLE / 'labels.txt'}: a model card is a mapping"),
        ({"--card": "no-such-card.yaml"}, 2, "--card no-such-card.yaml does not exist"),
    ],
)
def test_a_bad_argument_is_refused_before_the_flow_starts(monkeypatch, capsys, change, code, message):
    import pipelines.cli.retrain as retrain_cli

    def no_server():
        raise AssertionError("a Prefect server was started for a bad argument")

    monkeypatch.setattr(retrain_cli, "connect_prefect", no_server)
    args = {
        "--data": str(SAMPLE / "batch2.csv"),
        "--name": "support-desk",
        "--holdout": str(SAMPLE / "holdout.csv"),
        "--device": "cpu",
    } | change
    with pytest.raises(SystemExit) as exit_info:
        run(["retrain", *[part for pair in args.items() for part in pair]])
    assert exit_info.value.code == code
    err = capsys.readouterr().err
    assert err.startswith(f"error: {message}") and err.count("\n") == 1, err


@pytest.mark.timeout(60)
def _retrain_before_any_flow(monkeypatch, capsys, role: str) -> tuple[int, str]:
    """`tailor retrain` against a store that does not answer, with no Prefect server allowed to start."""
    import pipelines.cli.retrain as retrain_cli

    def no_server():
        raise AssertionError("a Prefect server was started although the checks before any flow should refuse")

    monkeypatch.setattr(retrain_cli, "connect_prefect", no_server)
    for key, value in {
        "TAILOR_ENDPOINT": "http://127.0.0.1:1",
        "TAILOR_ACCESS_KEY": "k",
        "TAILOR_SECRET_KEY": "s",
        "TAILOR_ROLE": role,
    }.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SystemExit) as exit_info:
        run(
            [
                "retrain",
                "--data",
                str(SAMPLE / "batch2.csv"),
                "--name",
                "support-desk",
                "--holdout",
                str(SAMPLE / "holdout.csv"),
                "--device",
                "cpu",
            ]
        )
    return exit_info.value.code, capsys.readouterr().err


@pytest.mark.parametrize("role", ["reader", "approver"])
def test_a_role_that_cannot_register_is_one_line_before_the_flow_starts(monkeypatch, capsys, role):
    code, err = _retrain_before_any_flow(monkeypatch, capsys, role)
    assert code == 1
    assert err.startswith(f"error: role '{role}' may ") and "register needs one of: admin, trainer" in err, err
    assert err.count("\n") == 1


def test_no_flow_takes_a_policy_parameter_and_retrain_policy_becomes_the_process_policy(monkeypatch, capsys, tmp_path):
    # Anyone who reaches the Prefect API may start a served deployment with parameters of their own.
    import inspect

    import pipelines.cli.flow_arguments as flow_arguments
    import pipelines.cli.retrain as retrain_cli
    from pipelines.context import Context
    from pipelines.orchestration import flows
    from registry.errors import RefusedError

    for served in (flows.retrain, flows.watch, flows.promote, flows.rollback):
        assert not [p for p in inspect.signature(served.fn).parameters if "policy" in p], served.name
    strict = tmp_path / "strict.yaml"
    strict.write_text((REPO / "policy.yaml").read_text(encoding="utf-8").replace("version:", "version: x", 1))
    seen = []

    def flow_run(*args, **kwargs):
        seen.append(Context.load().policy.sha256)
        raise RefusedError("stop here")

    # Set before the command sets it, so that the test's end restores what was there.
    monkeypatch.setenv("TAILOR_POLICY", str(REPO / "policy.yaml"))
    monkeypatch.setattr(retrain_cli, "connect_prefect", lambda: None)
    monkeypatch.setattr(retrain_cli, "require_store", lambda name: None)
    monkeypatch.setattr(flows, "retrain", flow_run)
    with pytest.raises(SystemExit):
        run(
            [
                "retrain",
                "--data",
                str(SAMPLE / "batch2.csv"),
                "--name",
                "support-desk",
                "--holdout",
                str(SAMPLE / "holdout.csv"),
                "--policy",
                str(strict),
                "--device",
                "cpu",
            ]
        )
    assert seen == [Context.load().policy_or(strict).sha256]
    assert flow_arguments.os.environ["TAILOR_POLICY"] == str(strict)


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "what, says",
    [
        (
            "registered",
            "support-desk v11 holds the content of {batch} (`tailor show support-desk v11`); its promotions",
        ),
        ("nothing", "no version of support-desk holds the content of {batch}; run it again"),
        ("quarantined", "{batch} is gone: it was probably rejected and quarantined"),
        ("store down", "nor can the registry say whether it registered a version from {batch} (cannot reach"),
    ],
)
def test_a_prefect_server_lost_mid_run_is_one_line_saying_what_became_of_the_batch(
    monkeypatch, capsys, tmp_path, what, says
):
    import httpx

    import pipelines.cli.retrain as retrain_cli
    import pipelines.usecases.retrain as retraining
    from pipelines.batches.data_version import dvc_md5
    from pipelines.orchestration import flows
    from registry.errors import StoreError

    batch = tmp_path / "batch2.csv"
    batch.write_bytes((SAMPLE / "batch2.csv").read_bytes())

    def lost(*args, **kwargs):
        if what == "quarantined":
            batch.unlink()
        raise httpx.ConnectError("[Errno 111] Connection refused")

    monkeypatch.setattr(retrain_cli, "require_store", lambda name: None)
    monkeypatch.setattr(retrain_cli, "connect_prefect", lambda: "http://127.0.0.1:4200/api")
    monkeypatch.setattr(flows, "retrain", lost)

    def registered(ctx, name):
        if what == "store down":
            raise StoreError("cannot reach the object store at http://127.0.0.1:8333")
        return {dvc_md5(batch): "v11"} if what == "registered" else {}

    monkeypatch.setattr(retraining, "registered_data_versions", registered)
    with pytest.raises(SystemExit) as exit_info:
        run(
            [
                "retrain",
                "--data",
                str(batch),
                "--name",
                "support-desk",
                "--holdout",
                str(SAMPLE / "holdout.csv"),
                "--device",
                "cpu",
            ]
        )
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith(
        "error: the Prefect server at http://127.0.0.1:4200/api stopped answering during the run "
        "([Errno 111] Connection refused), and its outcome is lost: " + says.format(batch=batch)
    )
    assert err.count("\n") == 1, err
