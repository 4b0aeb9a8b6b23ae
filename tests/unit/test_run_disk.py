"""The store fixture's check that the disk can hold a whole test run (tests/conftest.py)."""

from __future__ import annotations

from tests.conftest import RUN_WRITES_BYTES, disk_short_for_a_run

GIB = 1 << 30


def test_a_disk_with_a_run_and_the_stores_one_percent_free_holds_a_run():
    assert disk_short_for_a_run(RUN_WRITES_BYTES + 3 * GIB, 252 * GIB) is None


def test_a_disk_short_of_the_run_or_of_the_stores_one_percent_is_named_with_both_figures():
    # 5.6 GiB free on 252 GiB: the disk the failed CI run most likely began on
    message = disk_short_for_a_run(int(5.6 * GIB), 252 * GIB)
    assert message is not None and "need about 8.5 GiB free" in message and "5.6 GiB is free" in message
    assert disk_short_for_a_run(RUN_WRITES_BYTES + GIB, 252 * GIB) is not None  # the run fits, the 1 % does not
