"""Which retrain run folders are pruned: only the oldest of those a run named, never anything else."""

from pipelines.run_folders import new_run_folder, prune_run_folders


def test_only_the_oldest_run_folders_go_and_the_users_own_things_stay(tmp_path):
    runs = [tmp_path / f"2026120{day}T101500123456Z" for day in range(1, 5)]
    for folder in runs:
        (folder / "adapter").mkdir(parents=True)
    elsewhere = tmp_path.parent / "precious"
    elsewhere.mkdir()
    (elsewhere / "model.safetensors").write_text("keep")
    (tmp_path / "20000101T000000000000Z").symlink_to(elsewhere)  # named like a run, but a link
    (tmp_path / "20000101T000000000001Z.csv").write_text("a file")
    (tmp_path / "my-notes").mkdir()

    assert prune_run_folders(tmp_path, keep=1) == runs[:3]

    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["20000101T000000000000Z", "20000101T000000000001Z.csv", "my-notes", runs[3].name])
    assert (elsewhere / "model.safetensors").read_text() == "keep"
    assert prune_run_folders(tmp_path, keep=0) == [runs[3]]


def test_a_missing_runs_folder_prunes_nothing_and_new_folders_sort_after_old_ones(tmp_path):
    assert prune_run_folders(tmp_path / "none-yet", keep=3) == []
    assert new_run_folder(tmp_path).name > "20261206T000000000000Z"
