"""Training shares the host: a lower priority for every thread of the process, and a torch thread cap."""

from pipelines.training.cpu_share import training_threads


def test_the_thread_cap_leaves_one_core_to_the_server_unless_set():
    assert training_threads(0, cpus=2) == 1 and training_threads(0, cpus=16) == 15
    assert training_threads(0, cpus=1) == 1 and training_threads(3, cpus=2) == 3


def test_training_goes_on_where_the_os_refuses_a_lower_priority(monkeypatch, caplog):
    import os

    from pipelines.training import cpu_share

    def refuse(*_):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "setpriority", refuse)
    with caplog.at_level("WARNING"):
        assert cpu_share.lower_priority(os.getpriority(os.PRIO_PROCESS, 0) + 5) == os.getpriority(os.PRIO_PROCESS, 0)
    assert "training keeps its priority: the OS refused nice" in caplog.text
