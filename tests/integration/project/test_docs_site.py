"""The docs site: reference pages cover what the code knows, hand-written pages name only what exists,
and the site builds strictly (what `make docs` runs)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from docsite import reference
from tests.conftest import REPO

# TAILOR_* variables that are not settings: the config file's name, and the deploy scripts' own.
# The recorder's keys (read by `tailor serve --record-traffic`, not settings) and the browser test's screenshot folder.
NOT_SETTINGS = {
    "TAILOR_CONFIG",
    "TAILOR_REPO",
    "TAILOR_ADAPTER",
    "TAILOR_SERVE_PORT",
    "TAILOR_BUKET",
    "TAILOR_RECORDER_ACCESS_KEY",
    "TAILOR_RECORDER_SECRET_KEY",
    "TAILOR_SCREENSHOTS_DIR",
}


@pytest.fixture(scope="module")
def sources():
    return reference._sources()


@pytest.fixture(scope="module")
def pages(sources):
    return {path: page(sources) for path, page in reference.PAGES.items()}


def is_group(command) -> bool:
    return hasattr(command, "commands")  # Typer's own Click copy, not the click package


def leaf_commands(command, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    if is_group(command):
        return [leaf for name, sub in command.commands.items() for leaf in leaf_commands(sub, path + (name,))]
    return [path]


def test_the_reference_covers_every_command_setting_policy_key_and_route(sources, pages):
    cli = pages["reference/cli.md"]
    for path in leaf_commands(reference.click_command(sources.cli)):
        assert f"`tailor {' '.join(path)}`" in cli, path
    for name in sources.settings.model_fields:
        assert f"| `{name}` | `TAILOR_{name.upper()}` |" in pages["reference/settings.md"]
    for key in reference.policy_keys(sources):
        assert f"| `{key}` |" in pages["reference/policy.md"]
    for name in sources.params.model_fields:
        assert f"| `train.{name}` |" in pages["reference/params.md"]
    for path, methods in sources.openapi["paths"].items():
        for method in methods:
            assert f"## `{method.upper()} {path}`" in pages["reference/http-api.md"]
    for filename, record, _schema in sources.file_formats:
        assert f"## `{filename}` ({record})" in pages["reference/file-formats.md"]


def test_yaml_comments_are_read_above_beside_and_under_a_key(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(
        "top:\n  # above\n  a: 1  # beside\n                # under\n  # --- a rule\n  b: 2\n\nc:\n  d: 3\n"
    )
    assert reference.yaml_comments(path) == {"top.a": "above beside under", "top.b": "", "c.d": ""}


def hand_written() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]


# `tailor` then words: commands and their options, in code or prose, up to the end of the shell command.
COMMAND = re.compile(r"(?<![\w./-])tailor((?: +(?:--[a-z][a-z0-9-]*|[^\s`|;&#)\-][^\s`|;&#)]*))+)")


def named_commands(text: str):
    for match in COMMAND.finditer(text):
        yield match.group(0), match.group(1).split()


def resolve(root, words: list[str]):
    """The command the words name, the words that named it, and the options given to it."""
    command, path = root, []
    for word in words:
        if is_group(command) and word in command.commands:
            command, path = command.commands[word], path + [word]
        elif not word.startswith("--"):
            if is_group(command):
                break
    options = [w.split("=")[0] for w in words if w.startswith("--")]
    return command, path, options


def problems_in(text: str, root, known_env: set[str]) -> list[str]:
    problems = [
        f"{name} is not a setting" for name in sorted(set(re.findall(r"\bTAILOR_[A-Z_]+[A-Z]\b", text)) - known_env)
    ]
    for quoted, words in named_commands(text):
        command, path, options = resolve(root, words)
        if not path and not words[0].startswith("-"):
            if words[0].islower() and words[0] not in PROSE_WORDS:
                problems.append(f"{quoted!r}: no command {words[0]!r}")
            continue
        given = {opt for param in command.params for opt in param.opts + param.secondary_opts}
        given |= {"--help", "--debug"} | (
            {"--version", "--install-completion", "--show-completion"} if not path else set()
        )
        problems += [
            f"{quoted!r}: tailor {' '.join(path)} has no {option}" for option in options if option not in given
        ]
    return problems


@pytest.fixture(scope="module")
def known_env(sources):
    return {f"TAILOR_{name.upper()}" for name in sources.settings.model_fields} | NOT_SETTINGS


def test_hand_written_pages_name_only_commands_options_and_settings_that_exist(sources, known_env):
    root = reference.click_command(sources.cli)
    problems = [
        f"{page.relative_to(REPO)}: {problem}"
        for page in hand_written()
        for problem in problems_in(page.read_text(encoding="utf-8"), root, known_env)
    ]
    assert not problems, "\n".join(problems)


def test_a_page_naming_a_missing_command_option_or_setting_is_caught(sources, known_env):
    root = reference.click_command(sources.cli)
    text = "Run `tailor promote tickets v1 --too production`, then `tailor lst` with TAILOR_BUKKET=x."
    assert problems_in(text, root, known_env) == [
        "TAILOR_BUKKET is not a setting",
        "'tailor promote tickets v1 --too production': tailor promote has no --too",
        "'tailor lst': no command 'lst'",
    ]
    assert problems_in("`tailor audit verify tickets --json`, `tailor --version`", root, known_env) == []


# Lowercase words that follow "tailor" in prose without naming a command.
PROSE_WORDS = {"and", "or", "is", "the", "on", "to", "in", "itself", "command", "commands", "then", "with", "as"}


@pytest.mark.skipif(sys.platform != "linux", reason="the docs build runs where make docs runs")
def test_the_site_builds_strictly_offline(tmp_path):
    pytest.importorskip("mkdocs", reason="the docs extra is not installed")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "NO_MKDOCS_2_WARNING": "1", "HOME": str(tmp_path), "PYTHONPATH": str(REPO)},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    built = tmp_path / "site"
    for page in (
        "reference/cli/index.html",
        "reference/settings/index.html",
        "ja/approve/index.html",
        "benchmarks/index.html",
    ):
        assert (built / page).is_file(), page
    html = "".join(p.read_text(encoding="utf-8") for p in built.rglob("*.html"))
    assert "fonts.googleapis.com" not in html and "fonts.gstatic.com" not in html
