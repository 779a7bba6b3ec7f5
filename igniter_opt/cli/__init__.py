"""The `igniter` command line: a thin shell over the library, one module per group of commands."""

from igniter_opt.cli import batch, client, core, deploy, exact, profiling, serve  # noqa: F401  (register commands)
from igniter_opt.cli.app import app, main

__all__ = ["app", "main"]
