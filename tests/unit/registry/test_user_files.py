"""require_file: every user-named input file is a regular file, or the refusal says what it is instead."""

from __future__ import annotations

import os

import pytest

from registry.errors import ConfigError, NotFoundError
from registry.files import require_file


def test_a_regular_file_is_returned(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_text("a\n")
    assert require_file(path, "labels file") == path


def test_a_missing_file_raises_the_callers_error_with_its_hint(tmp_path):
    with pytest.raises(ConfigError, match=r"^--decision: .*nope.json does not exist \(run it first\)$"):
        require_file(tmp_path / "nope.json", "--decision:", ConfigError, hint=" (run it first)")


def test_a_folder_is_called_a_folder(tmp_path):
    with pytest.raises(NotFoundError, match=f"^params file {tmp_path} is a folder, not a file$"):
        require_file(tmp_path, "params file")


def test_a_pipe_is_refused_without_being_opened(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # opening it for reading would block until a writer came
    with pytest.raises(NotFoundError, match="is a device, pipe or socket, not a file"):
        require_file(fifo, "labels file")
