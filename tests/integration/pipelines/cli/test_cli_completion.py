"""The shell completes `tailor`'s commands and choices, through the installed console script."""

import os
import subprocess

from tests.conftest import TAILOR


def test_the_shell_completes_commands_and_choices():
    def complete(words: str) -> list[str]:
        env = os.environ | {
            "COMP_WORDS": words,
            "COMP_CWORD": str(len(words.split(" ")) - 1),
            "_TAILOR_COMPLETE": "complete_bash",
        }
        return subprocess.run([str(TAILOR)], env=env, capture_output=True, text=True, timeout=60).stdout.split()

    assert complete("tailor promo") == ["promote"]
    assert complete("tailor promote tickets v1 --to ") == ["staging", "production"]
    assert complete("tailor user add bob --role ") == ["admin", "trainer", "approver", "reader"]
