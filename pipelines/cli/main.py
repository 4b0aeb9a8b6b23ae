"""The `tailor` command: a small Typer app, one module per command group.

Exit codes: 0 success, 1 a check failed or a request was refused, 2 usage or configuration error.
Errors are one line on stderr (with `--json`, one JSON object: `{"error": …, "problems": […]}`);
`--debug` adds the traceback.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import traceback

import typer

from pipelines.cli import audit, base, gate, prefect, report, retrain, schedule, store, user, versions
from pipelines.cli import console as console_cli
from pipelines.cli import evaluate as evaluate_cli
from pipelines.cli import explain as explain_cli
from pipelines.cli import feedback as feedback_cli
from pipelines.cli import judge_load as judge_load_cli
from pipelines.cli import monitor as monitor_cli
from pipelines.cli import serve as serve_cli
from pipelines.cli import train as train_cli
from pipelines.cli import validate as validate_cli
from pipelines.cli.extras import missing_extra
from pipelines.cli.state import state
from registry.errors import TailorError
from serving import progress

INTERRUPTED = 130  # the shell's code for a process ended by Ctrl-C (128 + SIGINT)

app = typer.Typer(
    name="tailor",
    help="Fit LoRA adapters to small, noisy labeled data and govern them from training to production.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # `--install-completion` / `--show-completion`: Typer's completion, which also completes choices.
    add_completion=True,
)
store.attach(app)
validate_cli.attach(app)
train_cli.attach(app)
evaluate_cli.attach(app)
explain_cli.attach(app)
judge_load_cli.attach(app)
prefect.attach(app)
retrain.attach(app)
gate.attach(app)
schedule.attach(app)
serve_cli.attach(app)
versions.attach(app)
report.attach(app)
audit.attach(app)
user.attach(app)
base.attach(app)
monitor_cli.attach(app)
feedback_cli.attach(app)
console_cli.attach(app)


def _print_version(asked: bool) -> None:
    if asked:
        from importlib.metadata import version

        typer.echo(f"tailor {version('tailor')}")
        raise typer.Exit()


@app.callback()
def _main(
    debug: bool = typer.Option(False, "--debug", help="show tracebacks on errors"),
    _version: bool = typer.Option(
        False, "--version", is_eager=True, callback=_print_version, help="print the installed version and exit"
    ),
) -> None:
    state.begin(debug)
    if not sys.stderr.isatty():
        # Hugging Face's "Loading weights" bar, redrawn with carriage returns, is noise in logs and
        # CI output; set before any command imports transformers, which reads it at import.
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def describe_os_error(err: OSError) -> str:
    """The path and what the system said about it, in words for the path's owner."""
    if not err.filename:
        return str(err)
    path = f"{err.filename} → {err.filename2}" if err.filename2 else str(err.filename)
    if isinstance(err, FileExistsError):  # from mkdir(exist_ok=True): the name is taken by a file
        return f"{path} exists and is not a folder; choose a path whose folders are folders"
    if isinstance(err, NotADirectoryError):
        return f"{path}: part of this path is a file, not a folder"
    return f"{path}: {err.strerror or err}"


def empty_argument(args: list[str]) -> str | None:
    """The option (or position) of the first empty argument, if any.

    No Tailor argument may be empty, and an empty path silently means the current folder
    (``Path("")`` is ``.``): ``--report-dir "$DIR"`` with ``DIR`` unset wrote the report into the
    working folder, and ``--adapter ""`` searched the whole checkout, ``.venv`` included.
    """
    for i, arg in enumerate(args):
        if arg == "":
            if not i:
                return "the first argument"
            return args[i - 1] if args[i - 1].startswith("-") else f"the argument after {args[i - 1]!r}"
        if arg.startswith("--") and arg.endswith("="):
            return arg[:-1]
    return None


def _terminated(signum: int, _frame) -> None:
    # Python's default for SIGTERM ends the process at once, skipping the cleanup that Ctrl-C gets
    # (a half-written adapter's staging folder stayed behind); unwinding runs it.
    raise SystemExit(128 + signum)


def _fail(message: str, code: int, as_json: bool, usage_error: typer.TyperException | None = None) -> None:
    """One error on stderr, then exit: a line for people, or with ``--json`` the shape of the predictor's
    4xx bodies (``{"error": …, "problems": […]}``), so a script parses failures as it parses answers."""
    if as_json:
        typer.echo(json.dumps({"error": message, "problems": []}, ensure_ascii=False), err=True)
    elif usage_error is not None:
        usage_error.show()  # Click's usage line and hint
    else:
        typer.echo(f"error: {message}", err=True)
    sys.exit(code)


def run(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the app and map errors to exit codes."""
    if argv is None:  # the real process, not a test calling run() in its own
        signal.signal(signal.SIGTERM, _terminated)
    args = argv if argv is not None else sys.argv[1:]
    debug = "--debug" in args
    as_json = "--json" in args[: args.index("--")] if "--" in args else "--json" in args
    if (where := empty_argument(args)) is not None:
        _fail(f"{where} is empty; give a value (a shell variable that expanded to nothing?)", 2, as_json)
    # Long steps (the noise audit, each check) show progress to a person, never into --json output or logs.
    progress.show(not as_json and sys.stderr.isatty())
    try:
        # Without standalone mode Click returns a `typer.Exit` code instead of raising it.
        code = app(args=argv, standalone_mode=False)
    except TailorError as err:
        if debug:
            traceback.print_exc()
        _fail(str(err), err.exit_code, as_json)
    except typer.Exit as err:
        sys.exit(err.exit_code)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(INTERRUPTED)
    except ModuleNotFoundError as err:  # an extra this host did not install (a serving host running `retrain`)
        if (install := missing_extra(err)) is None:
            raise
        if debug:
            traceback.print_exc()
        _fail(install, 2, as_json)
    except OSError as err:  # a path the user gave that cannot be read or written: name it, no traceback
        if debug:
            traceback.print_exc()
        _fail(describe_os_error(err), 1, as_json)
    except typer.TyperException as err:  # usage errors from Typer's bundled Click: bad option, missing argument
        _fail(err.format_message(), 2, as_json, usage_error=err)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(INTERRUPTED)
    if code == INTERRUPTED:  # Typer returns Ctrl-C as this code, silently; no Tailor command returns it
        typer.echo("interrupted", err=True)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    run()
