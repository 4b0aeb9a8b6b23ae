"""Which retrain run folders are pruned: only the oldest finished ones a run named, never anything else."""

from pathlib import Path

from pipelines.usecases.runs import FINISHED, mark_finished, new_run_folder, prune_run_folders


def _runs(parent: Path, days: range, finished: bool = True) -> list[Path]:
    folders = [parent / f"2026110{day}T101500123456Z" for day in days]
    for folder in folders:
        (folder / "adapter").mkdir(parents=True)
        if finished:
            mark_finished(folder, '{"status": "promoted"}')
    return folders


def test_only_the_oldest_finished_run_folders_go_and_everything_else_stays(tmp_path):
    done = _runs(tmp_path, range(1, 5))
    working = _runs(tmp_path, range(5, 7), finished=False)  # a run under way, or one that crashed: kept
    elsewhere = tmp_path.parent / "precious"
    elsewhere.mkdir()
    (elsewhere / FINISHED).write_text("{}")
    (tmp_path / "20000101T000000000000Z").symlink_to(elsewhere)  # named like a run, but a link
    (tmp_path / "20000101T000000000001Z.csv").write_text("a file")
    (tmp_path / "my-notes").mkdir()

    assert prune_run_folders(tmp_path, keep=1).deleted == done[:3]

    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["20000101T000000000000Z", "20000101T000000000001Z.csv", "my-notes", done[3].name, *(w.name for w in working)]
    )
    assert (elsewhere / FINISHED).is_file()
    assert prune_run_folders(tmp_path, keep=0).deleted == [done[3]]


def test_a_folder_that_cannot_go_is_reported_and_one_left_aside_is_finished_next_time(tmp_path, monkeypatch):
    done = _runs(tmp_path, range(1, 4))
    interrupted = tmp_path / ".20261031T101500123456Z.pruning"  # a pruning stopped between rename and delete
    (interrupted / "adapter").mkdir(parents=True)
    real_rename = Path.rename

    def rename(self, target):
        if self == done[1]:
            raise PermissionError(13, "Permission denied")
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", rename)
    pruned = prune_run_folders(tmp_path, keep=1)

    assert pruned.left == [f"{done[1]}: Permission denied"]
    assert sorted(pruned.deleted) == [tmp_path / "20261031T101500123456Z", done[0]]
    assert sorted(p.name for p in tmp_path.iterdir()) == [done[1].name, done[2].name]


def test_a_missing_runs_folder_prunes_nothing_and_new_folders_sort_after_old_ones(tmp_path):
    assert prune_run_folders(tmp_path / "none-yet", keep=3).deleted == []
    assert new_run_folder(tmp_path).name > "20200101T000000000000Z"
