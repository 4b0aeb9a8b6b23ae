"""File a judged batch: quarantine when rejected, DVC-track when accepted (`validate_and_route`)."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

from pipelines.batches.validate import load_labels, validate_batch
from pipelines.policy import Policy
from pipelines.records import ValidationReport
from registry.errors import TailorError
from registry.settings import StoreSettings


def _why_copied(path: Path, incoming: Path) -> str | None:
    """Why a rejected batch is copied into quarantine rather than moved; None: it is moved."""
    from pipelines.batches.git_files import tracked_by_git

    # The folder holding the name the user gave, its own links resolved; never the file's target:
    # a link in ~/Downloads to a file in incoming is not a batch handed in, and moving the link
    # would rename the user's file.
    if not Path(os.path.abspath(path)).parent.resolve().is_relative_to(incoming.resolve()):
        return f"it is not in the incoming folder {incoming}"
    if path.is_symlink():
        return f"it is a symbolic link (to {os.readlink(path)}), so moving it would move the link, not the batch"
    if tracked_by_git(path):
        return "git tracks it, so moving it would delete it from the checkout"
    return None


def validate_and_route(
    path: Path,
    policy: Policy,
    *,
    data_dir: Path,
    labels_file: Path | None = None,
    labels: list[str] | None = None,
    holdout: Path | None = None,
    base_model: Path | None = None,
    noise_audit: bool = True,
    report_dir: Path | None = None,
    track: bool = True,
    store: StoreSettings | None = None,
    encoding: str | None = None,
    incoming: Path | None = None,
) -> ValidationReport:
    """Validate a batch file, then route it: quarantine when rejected, DVC-track when accepted.

    Only a rejected batch in the ``incoming`` folder is moved into quarantine: that folder is where
    batches are handed to Tailor. A batch from anywhere else (``~/Downloads``) is the user's file:
    a copy goes to quarantine and the file stays where it was. So does one that git tracks, even in
    ``incoming`` (moving it would delete it from the checkout).

    `tailor validate`, the ``validate`` stage of ``dvc.yaml`` and the retraining flow all call this,
    so a batch is judged and filed the same way whoever brings it in.

    Args:
        data_dir: holds ``quarantine/<UTC time>-<name>/`` and the default ``reports/<UTC time>-<name>/``.
        labels_file: the allowed labels, one per line (read with `load_labels`); or pass ``labels``.
        base_model: the base model whose tokenizer must read the batch and, with ``noise_audit``,
            whose embeddings audit its label noise; None skips both.
        report_dir: where an accepted batch's report goes (a rejected batch's report always goes
            next to it in quarantine).
        track: ``dvc add`` + ``dvc push`` an accepted batch in the DVC repository holding
            ``data_dir``; False only records its md5.
        store: the DVC remote's store; required with ``track``.
        encoding: the batch's text encoding (see `read_batch`); None is UTF-8.
        incoming: the folder whose rejected batches are moved, not copied; default ``data_dir/incoming``.

    Returns:
        The report, with the paths of its files and ``quarantined_to`` or ``data_version`` filled in.

    Raises:
        NotFoundError: the batch, holdout or labels path does not exist (nothing is moved).
        NotAFileError: the batch path is a directory (nothing is moved).
        UnsupportedFormatError: the batch is not CSV, JSONL or Parquet (nothing is moved).
        StoreError: the batch was accepted and tracked but ``dvc push`` failed (the report is written).
        RefusedError: the batch was accepted but ``dvc add`` refused it (the report is written).
        IntegrityError: a copy into quarantine did not verify (the original is kept, the report written).
        QuarantineError: a rejected batch cannot be moved or copied (read-only or immutable folder);
            it is kept in place and its report written.
        ConfigError: labels file, policy, suite or DVC configuration is invalid (after acceptance,
            the report is written).
    """
    from pipelines.batches.data_version import dvc_md5
    from pipelines.batches.data_version import track as dvc_track
    from pipelines.batches.folders import fresh_folder
    from pipelines.batches.quarantine import copy_into, move_into
    from pipelines.batches.report import REVIEW_CSV, write_reports

    if track and store is None:  # before any work: a caller's mistake, not the batch's
        raise ValueError("validate_and_route: track=True needs the DVC remote's store settings (store=)")
    path = Path(path)
    if labels_file is not None:
        labels = load_labels(labels_file)
    report, suspects = validate_batch(
        path, policy, labels=labels, holdout=holdout, base_model=base_model, noise_audit=noise_audit, encoding=encoding
    )
    now = datetime.now(timezone.utc)
    if not report.accepted:
        folder = fresh_folder(Path(data_dir) / "quarantine", path, now=now)
        why = _why_copied(path, Path(incoming) if incoming is not None else Path(data_dir) / "incoming")
        if why is not None and path.stat().st_size > policy.data.max_file_bytes:
            # A copy of a file refused for its size would only fill the disk a second time.
            note = f"left in place, not copied to quarantine: {why}, and it is over data.max_file_mb"
            return write_reports(report.model_copy(update={"notes": [*report.notes, note]}), suspects, folder)
        try:
            # Written before the move as well: a run killed between the two must not leave a
            # quarantined batch without the reason it is there.
            write_reports(report, suspects, folder)
            # Absolute, not resolved: the name the batch has in quarantine, whatever links lead there.
            target = Path(os.path.abspath(move_into(path, folder) if why is None else copy_into(path, folder)))
        except TailorError as err:
            left = report.model_copy(update={"notes": [*report.notes, f"left in place, not quarantined: {err}"]})
            written = write_reports(left, suspects, folder)
            failed = ", ".join(f.name for f in report.failures)
            raise type(err)(
                f"batch {path} was REJECTED ({failed}) but stays in place, not quarantined: {err}; "
                f"its report is {written.report_markdown}"
            ) from None
        notes = [*report.notes] + ([] if why is None else [f"copied to quarantine; {path} stays where it was: {why}"])
        update = {"quarantined_to": str(target), "notes": notes}
        return write_reports(report.model_copy(update=update), suspects, folder)

    folder = Path(report_dir) if report_dir else fresh_folder(Path(data_dir) / "reports", path, now=now)
    stale_review = folder / REVIEW_CSV
    if report.noise is None and stale_review.resolve() != path.resolve():
        # A --report-dir given again keeps what an earlier run wrote there: a review from an audit
        # this run skipped would read as this batch's.
        stale_review.unlink(missing_ok=True)
    if not track:
        update = {
            "data_version": dvc_md5(path),
            "notes": [*report.notes, "not tracked by DVC (--no-track); data version is the md5"],
        }
        return write_reports(report.model_copy(update=update), suspects, folder)
    try:
        tracked = dvc_track(path, store, project=Path(data_dir))
    except TailorError as err:
        # The batch passed: its report must exist even when DVC fails; then the error is raised.
        written = write_reports(report.model_copy(update={"data_version": dvc_md5(path)}), suspects, folder)
        raise type(err)(f"{err} (the batch passed; its report is {written.report_markdown})") from None
    update = {
        "data_version": tracked.md5,
        "tracked_file": str(tracked.dvc_file) if tracked.dvc_file else None,
        "notes": [*report.notes, *([tracked.note] if tracked.note else [])],
    }
    return write_reports(report.model_copy(update=update), suspects, folder)
