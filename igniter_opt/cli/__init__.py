"""The `igniter` command line: a thin shell over the library, one module per group of commands."""

from igniter_opt.cli import (  # noqa: F401  (register commands)
    batch,
    client,
    core,
    deploy,
    exact,
    profiling,
    runtime,
    serve,
)
from igniter_opt.cli.app import app, main

__all__ = ["app", "main"]
