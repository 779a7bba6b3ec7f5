"""Benchmark commands: `batch`, `report` and `instances generate`."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import typer

from igniter_opt.cli.app import (
    EXIT_CHECK_FAILED,
    app,
    at_least,
    console,
    err_console,
    instances_app,
    non_negative,
    output_file,
    positive,
    print_error,
)
from igniter_opt.cli.choices import Family
from igniter_opt.data import io
from igniter_opt.data.errors import InputError, MissingExtraError, require


def _csv_list(text: str, what: str) -> list[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise InputError(f"{what}: expected a comma-separated list, got {text!r}")
    return items


def _int_list(text: str, what: str) -> tuple[int, ...]:
    try:
        values = tuple(int(t) for t in _csv_list(text, what))
    except ValueError:
        raise InputError(f"{what}: expected comma-separated integers, got {text!r}") from None
    if min(values) < 1:
        raise InputError(f"{what}: every value must be >= 1, got {text!r}")
    return values


def _figures(report, output: Path) -> list[Path]:
    """The report's PNGs, or none (one warning line) without the plot extra."""
    try:
        require("matplotlib", "plot", "report figures")
    except MissingExtraError as exc:
        print_error(f"{exc}; writing the tables and report.md without them", label="warning:")
        return []
    from igniter_opt.bench.plots import write_figures

    return write_figures(report, output)


@app.command("batch")
def batch_cmd(
    instances: list[str] = typer.Argument(..., help="Instance folders (recursive), globs or files."),
    solvers: str = typer.Option("greedy,ffd", help="Comma-separated solvers: greedy,ffd,exact,milp,patterns."),
    time_limit: float = typer.Option(60.0, "--time-limit", help="Seconds per task (exact solvers).",
                                     callback=positive),
    jobs: int = typer.Option(0, "-j", "--jobs", help="Parallel workers (0: one per core).", callback=at_least(0)),
    output: Path = typer.Option(Path("results.csv"), "-o", "--output", help="Results CSV (appended).",
                                callback=output_file),
    kill_margin: float | None = typer.Option(
        None, help="Kill a task this many seconds past its limit (default 10 + 25% of the limit).",
        callback=non_negative),
    retry_failed: bool = typer.Option(False, help="Rerun tasks recorded as error, crashed or timeout."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    ray: bool = typer.Option(False, "--ray", help="Run each task as a Ray task on a cluster (--address, else "
                                                  "$RAY_ADDRESS, else a local Ray); -j 0: the cluster's CPUs."),
    address: str | None = typer.Option(None, "--address", help="--ray: the cluster's HOST:PORT."),
) -> None:
    """Solve every (instance, solver) pair not yet in the results CSV, in parallel; resumable."""
    from igniter_opt.bench.batch import run_batch

    if address and not ray:
        raise InputError("--address is for --ray")
    pool = None
    if ray:
        from igniter_opt.bench.raypool import RayPool
        from igniter_opt.platform.raycluster import import_ray

        import_ray()  # the install hint before any work
        pool = RayPool(address, jobs or None, kill_margin)
    summary = run_batch(instances, _csv_list(solvers, "--solvers"), time_limit=time_limit,
                        jobs=jobs or None, results_csv=output, kill_margin=kill_margin,
                        retry_failed=retry_failed, console=err_console, progress=not quiet,
                        command=shlex.join(["igniter", *sys.argv[1:]]), pool=pool)
    for note in pool.notes if pool is not None else []:
        err_console.print(note, highlight=False)
    counts = ", ".join(f"{k}: {v}" for k, v in sorted(summary.statuses.items())) or "nothing to run"
    err_console.print(f"{summary.total} tasks, {summary.skipped} already in {output}, ran {summary.ran} "
                      f"in {summary.seconds:.1f} s ({counts})", highlight=False)
    if summary.interrupted:
        err_console.print("interrupted: rerun the same command to resume", highlight=False)
        raise typer.Exit(130)


@app.command("report")
def report_cmd(
    results: Path = typer.Argument(..., help="Results CSV written by `igniter batch`, or the JSON of "
                                             "`igniter compare --margins ... --json` (price of robustness)."),
    output: Path = typer.Option(Path("report"), "-o", "--output", help="Folder for report.md and the PNGs."),
    exact: str | None = typer.Option(None, help="Solver compared with the baseline (default: exact, milp, "
                                                   "else patterns)."),
    baseline: str = typer.Option("greedy", help="Solver the exact one is compared with."),
    by_kind: bool = typer.Option(False, help="Split families by kind from the file names "
                                             "(stress/tight, paper/loose, ...)."),
    plots: bool = typer.Option(True, help="Write the matplotlib figures."),
) -> None:
    """Per family and size: mean GPUs, exact vs greedy, solve times, broken SLOs (table, Markdown, PNGs)."""
    from igniter_opt.bench.report import load_meta, load_report, markdown, rich_tables

    io.read_text(results, "a results file")  # a folder, a missing or non-UTF-8 file: one line
    if results.suffix == ".json":
        return _robustness_report(results, output, plots)
    report = load_report(results, exact, baseline, by_kind)
    if report.skipped:
        print_error(f"{results}: {report.skipped} row(s) cut short (a killed batch?) skipped, not counted",
                    label="warning:")
    if not report.results:
        err_console.print(f"{results}: no rows")
        raise typer.Exit(EXIT_CHECK_FAILED)
    for table in rich_tables(report):
        console.print(table)
    io.output_dir(output)
    figures = _figures(report, output) if plots else []
    io.write_text(output / "report.md", markdown(report, str(results), [str(f) for f in figures],
                                                 load_meta(results)))
    console.print(f"report written to {output / 'report.md'} with {len(figures)} figures")


def _robustness_report(source: Path, output: Path, plots: bool) -> None:
    """`igniter report compare.json`: GPUs per solver per margin (table, report.md, margins.png)."""
    from igniter_opt.bench.robustness import load_margin_rows, markdown, plot_margins, rich_table, summarize

    summary = summarize(load_margin_rows(source))
    console.print(rich_table(summary))
    io.output_dir(output)
    figures = []
    if plots:
        try:
            require("matplotlib", "plot", "report figures")
            figures = [str(plot_margins(summary, output / "margins.png"))]
        except MissingExtraError as exc:
            print_error(f"{exc}; writing the table and report.md without them", label="warning:")
    io.write_text(output / "report.md", markdown(summary, str(source), figures))
    console.print(f"report written to {output / 'report.md'} with {len(figures)} figures")


@instances_app.command("generate")
def generate_cmd(
    family: Family = typer.Option(..., help="Instance family."),
    sizes: str = typer.Option(..., help="Comma-separated workload counts, e.g. 8,16,24,32,48."),
    count: int = typer.Option(1, help="Instances per size (paper: load steps per size and SLO level).",
                              callback=at_least(1)),
    seed: int = typer.Option(0, help="Family seed (paper ignores it: it is deterministic)."),
    kinds: str | None = typer.Option(None, help="stress: tight,replicas,small,powercap (default: these four) "
                                                    "or heavytail (only when named)."),
    profile: str = typer.Option("v100", help="Profile whose models the instances use."),
    output: Path = typer.Option(..., "-o", "--output", help="Folder to write <name>.json into."),
) -> None:
    """Write a family's instances (reproducible: same arguments, same bytes)."""
    from igniter_opt.bench.families import FamilySpec, write_family
    from igniter_opt.model import load_profile

    load_profile(profile)  # one line naming the profile when it does not exist

    spec = FamilySpec(family.value, _int_list(sizes, "--sizes"), count, seed,
                      tuple(_csv_list(kinds, "--kinds")) if kinds else (), profile)
    paths = write_family(spec, io.output_dir(output, create=False))
    console.print(f"{len(paths)} instances written to {output}")
