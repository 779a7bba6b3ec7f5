"""CLI: watch a deployment at run time (`igniter top`)."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from igniter_opt.cli.app import EXIT_CHECK_FAILED, app, console, err_console, positive
from igniter_opt.deploy.top import RunDirSource, render_table


@app.command("top")
def top_cmd(run_dir: Path = typer.Option(Path("igniter-run"), "--run-dir",
                                         help="The run directory of a running `igniter run` or `measure`."),
            interval: float = typer.Option(0.5, "--interval", help="Refresh every S seconds.", callback=positive),
            once: bool = typer.Option(False, "--once", help="Print the newest windows once and exit.")) -> None:
    """Live table of each workload's newest window: rate, p99 vs SLO, share, GPU, shadow state."""
    source = RunDirSource(run_dir)
    if once:
        records = source.latest()
        if not records:
            err_console.print(f"no windows yet in {source.describe()}", highlight=False)
            raise typer.Exit(EXIT_CHECK_FAILED)
        console.print(render_table(records))
        return
    from rich.live import Live

    try:
        with Live(render_table([], f"waiting for {source.describe()}"), console=console,
                  refresh_per_second=max(1.0, 1 / interval)) as live:
            while True:
                records = source.latest()
                live.update(render_table(records) if records else render_table([], f"waiting for {source.describe()}"))
                time.sleep(interval)
    except KeyboardInterrupt:
        pass
