"""The typer application and the shared plumbing of every command (errors, options, output).

Every mistake is answered in one line on stderr: bad input (an InputError from the validation
layer, data/schema.py and data/io.py) and bad options (click's usage errors and the checks below)
exit 2, wherever in a command they are raised.
"""

from __future__ import annotations

import math
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.text import Text
from typer.core import TyperGroup

from igniter_opt.data import io
from igniter_opt.data.errors import InputError

EXIT_OK, EXIT_CHECK_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130

# Tables stay readable when piped or captured (rich would fall back to 80 columns). No markup by
# default: names from users' files ("[/b]") are printed as they are; styling is asked for per call.
console = Console(width=None if sys.stdout.isatty() else 160, markup=False)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 160, markup=False)


def print_error(message: str, label: str = "error:") -> None:
    """One line on stderr (the message is printed as is: no rich markup in user values)."""
    err_console.print(Text.assemble((label, "red"), " ", message), highlight=False, soft_wrap=True)


# typer >= 0.20 vendors click: take the classes typer itself raises.
UsageError: type[Exception] = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")
NoArgsIsHelp: type[Exception] = getattr(sys.modules[UsageError.__module__], "NoArgsIsHelpError",
                                        type("_Never", (Exception,), {}))


def working(what: str) -> Any:
    """A spinner with the elapsed time on stderr while long work runs (only on a terminal)."""
    from contextlib import nullcontext

    if not err_console.is_terminal:
        return nullcontext()
    return err_console.status(what, spinner="dots")


def _usage_line(exc: Any) -> str:
    where = f"{exc.ctx.command_path}: " if exc.ctx is not None else ""
    return where + " ".join(exc.format_message().split())


class OneLineErrors(TyperGroup):
    """A command group whose bad input and usage errors end as one line and exit 2."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except NoArgsIsHelp:
            raise
        except UsageError as exc:
            print_error(_usage_line(exc))
            raise typer.Exit(EXIT_BAD_INPUT) from None

    def invoke(self, ctx: Any) -> Any:
        try:
            with warnings.catch_warnings():  # numpy overflow: results are checked and refused in one line
                warnings.simplefilter("ignore", RuntimeWarning)
                return super().invoke(ctx)
        except InputError as exc:
            print_error(str(exc))
            raise typer.Exit(EXIT_BAD_INPUT) from None
        except NoArgsIsHelp:
            raise
        except UsageError as exc:
            print_error(_usage_line(exc))
            raise typer.Exit(EXIT_BAD_INPUT) from None


app = typer.Typer(cls=OneLineErrors, help="Interference-aware GPU provisioning for DNN inference (iGniter).",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
profile_app = typer.Typer(cls=OneLineErrors, help="Fit, show and measure GPU profiles.", no_args_is_help=True)
instances_app = typer.Typer(cls=OneLineErrors, help="Generate benchmark instances.", no_args_is_help=True)


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


# -- option checks (typer callbacks: a bad value is a one-line usage error, exit 2) ----------------


def _check(ok: Callable[[Any], bool], rule: str) -> Callable[[Any], Any]:
    def callback(value: Any) -> Any:
        if value is not None and not ok(value):
            raise typer.BadParameter(f"{rule}, got {value!r}")
        return value
    return callback


positive = _check(lambda v: math.isfinite(v) and v > 0, "must be a finite number > 0")
non_negative = _check(lambda v: math.isfinite(v) and v >= 0, "must be a finite number >= 0")
share_pct = _check(lambda v: math.isfinite(v) and 0 < v <= 100, "must be a share in (0, 100]")
unit_pct = _check(lambda v: math.isfinite(v) and 0.1 <= v <= 100, "must be a share step in [0.1, 100]")
fraction = _check(lambda v: math.isfinite(v) and 0 <= v <= 1, "must be a fraction in [0, 1]")


def at_least(n: int) -> Callable[[Any], Any]:
    """Integer option >= n."""
    return _check(lambda v: v >= n, f"must be >= {n}")


def output_file(value: Path | None) -> Path | None:
    """-o FILE: fail before any work when it is a folder or its folder cannot be made."""
    return None if value is None else io.output_file(value)


# -- output ----------------------------------------------------------------------------------------


def emit_json(data: Any, output: Path | None = None) -> None:
    """Write strict JSON (no NaN/Infinity) to a file when given, else print it plainly to stdout."""
    if output is not None:
        io.write_json(output, data)
    else:
        sys.stdout.write(io.dumps(data) + "\n")


def fail(message: str, code: int = EXIT_CHECK_FAILED) -> None:
    """Print one line to stderr and exit with the given code."""
    print_error(message)
    raise typer.Exit(code)


def main() -> None:
    """Console-script entry: bad input is one line and exit 2, never a traceback."""
    try:
        app()
    except InputError as exc:  # raised outside a command (e.g. while building the app)
        print_error(str(exc))
        sys.exit(EXIT_BAD_INPUT)
    except KeyboardInterrupt:
        err_console.print("interrupted", highlight=False)
        sys.exit(EXIT_INTERRUPTED)
