"""The typer application and the shared plumbing of every command (errors, output)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from igniter_opt.data.errors import InputError

app = typer.Typer(help="Interference-aware GPU provisioning for DNN inference (iGniter).",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
profile_app = typer.Typer(help="Fit, show and measure GPU profiles.", no_args_is_help=True)
instances_app = typer.Typer(help="Generate benchmark instances.", no_args_is_help=True)


def _version(show: bool) -> None:
    if show:
        from igniter_opt import __version__

        sys.stdout.write(f"igniter-opt {__version__}\n")
        raise typer.Exit(0)


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """Interference-aware GPU provisioning for DNN inference (iGniter)."""


app.add_typer(profile_app, name="profile")
app.add_typer(instances_app, name="instances")

# Tables stay readable when piped or captured (rich would fall back to 80 columns).
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)

EXIT_OK, EXIT_CHECK_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


def emit_json(data: Any, output: Path | None = None) -> None:
    """Write JSON to a file when given, else print it plainly to stdout (for scripts)."""
    text = json.dumps(data, indent=2)
    if output is not None:
        output.write_text(text + "\n")
    else:
        sys.stdout.write(text + "\n")


def fail(message: str, code: int = EXIT_CHECK_FAILED) -> None:
    """Print one line to stderr and exit with the given code."""
    err_console.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def main() -> None:
    """Console-script entry: bad input is one line and exit 2, never a traceback."""
    try:
        app()
    except InputError as exc:
        err_console.print(f"error: {exc}", highlight=False, soft_wrap=True, markup=False)
        sys.exit(EXIT_BAD_INPUT)
    except KeyboardInterrupt:
        err_console.print("interrupted", highlight=False)
        sys.exit(EXIT_INTERRUPTED)
