"""CLI commands of this group (registered on the shared typer app)."""

from igniter_opt.cli.app import app  # noqa: F401
