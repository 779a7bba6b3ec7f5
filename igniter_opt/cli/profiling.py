"""`igniter profile run` (measure a raw profile) and `igniter validate` (model vs measurements)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from igniter_opt.cli.app import (
    EXIT_CHECK_FAILED,
    app,
    at_least,
    console,
    emit_json,
    err_console,
    fraction,
    output_file,
    positive,
    profile_app,
    share_pct,
    unit_pct,
)
from igniter_opt.cli.choices import Dtype, L2Source
from igniter_opt.data.errors import InputError
from igniter_opt.model import load_profile
from igniter_opt.profiling import grid
from igniter_opt.profiling import validate as val


def _progress() -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                    TimeElapsedColumn(), TextColumn("{task.fields[last]}"), console=err_console)


@profile_app.command("run")
def profile_run_cmd(
    models: str = typer.Option("alexnet,resnet50,vgg19,ssd", help="DNNs to profile, comma separated."),
    out: Path = typer.Option(..., "--out", "-o", help="Raw profile (JSON lines) to write.", callback=output_file),
    budget_s: float = typer.Option(360.0, "--budget-s", help="Time budget of the whole run, seconds.",
                                   callback=positive),
    dtype: Dtype = typer.Option(Dtype.float32, help="Compute dtype."),
    eager: bool = typer.Option(False, "--eager", help="Time eager PyTorch instead of CUDA graphs."),
    l2_source: L2Source = typer.Option(L2Source.ncu, "--l2", help="L2 demand from ncu, or none (unit proxy)."),
    unit: float | None = typer.Option(None, help="Share step in % (default: 100 / (SMs / 2)).", callback=unit_pct),
    work_dir: Path | None = typer.Option(None, help="Where worker logs and ncu reports go."),
) -> None:
    """Measure a raw profile of this host's GPU (needs a GPU, torch, MPS; ncu for L2)."""
    from igniter_opt.profiling.run import RunOptions, check_environment, profile_run

    names = grid.parse_models(models)
    dtype_name, l2_name = dtype.value, l2_source.value
    budget = grid.plan_budget(budget_s, len(names), l2_name == "ncu")
    check_environment(l2_name)
    opts = RunOptions(models=names, out=out, budget_s=budget_s, dtype=dtype_name, eager=eager,
                      l2_source=l2_name, unit_step=unit, work_dir=work_dir)
    with _progress() as progress:
        task = progress.add_task("profiling", total=grid.count_steps(names, l2_name == "ncu"), last="")

        def step(message: str) -> None:
            progress.update(task, advance=1, last=message)
        progress.update(task, last=f"~{budget.estimate_s:.0f} s planned, {budget.point_s:.1f} s per point")
        path = profile_run(opts, step)
    console.print(f"raw profile written to {path}; fit it with: igniter profile fit {path} -o PROFILE.json")


def _dry_run(profile_name: str, colocations: list[list[val.Colocated]], as_json: bool) -> None:
    prof = load_profile(profile_name)
    rows: list[list[dict[str, Any]]] = []
    for col in colocations:
        pred = val.predictions(prof, col)
        rows.append([{"model": w.model, "batch": w.batch, "share": w.share,
                      "predicted_latency_ms": float(pred["latency_ms"][j]),
                      "predicted_throughput_rps": float(pred["throughput_rps"][j])} for j, w in enumerate(col)])
    if as_json:
        emit_json({"profile": prof.name, "colocations": rows})
        return
    table = Table(title=f"{len(rows)} co-locations to measure ({prof.name})")
    for name in ("#", "model", "batch", "share %", "pred. latency ms", "pred. req/s"):
        table.add_column(name, justify="left" if name == "model" else "right")
    for i, group in enumerate(rows):
        for w in group:
            table.add_row(str(i), w["model"], str(w["batch"]), f"{w['share']:g}",
                          f"{w['predicted_latency_ms']:.3f}", f"{w['predicted_throughput_rps']:.1f}")
    console.print(table)


def stats_table(stats: dict, title: str) -> Table:
    """Per-model error table: median, p90 and max of latency and throughput error, in %."""
    table = Table(title=title)
    for col in ("model", "n", "latency median", "p90", "max", "throughput median", "p90 ", "max "):
        table.add_column(col, justify="left" if col == "model" else "right")
    for name, s in stats.items():
        lat, thr = s["latency"], s["throughput"]
        table.add_row(name, str(lat["n"]), *(f"{100 * lat[k]:.1f}%" for k in ("median", "p90", "max")),
                      *(f"{100 * thr[k]:.1f}%" for k in ("median", "p90", "max")))
    return table


@app.command("validate")
def validate_cmd(
    profile: str = typer.Option(..., help="Fitted profile (bundled name or JSON) of this host's GPU."),
    samples: int = typer.Option(20, help="Random co-locations to measure.", callback=at_least(1)),
    seed: int = typer.Option(0, help="Seed of the co-location sampler."),
    seconds: float = typer.Option(3.0, help="Measured window per co-location, seconds.", callback=positive),
    budget_s: float = typer.Option(540.0, "--budget-s", help="Stop starting new co-locations after this.",
                                   callback=positive),
    min_share: float = typer.Option(10.0, help="Smallest share a sampled workload gets, %.", callback=share_pct),
    dtype: Dtype = typer.Option(Dtype.float32, help="Compute dtype (use the profile's)."),
    eager: bool = typer.Option(False, "--eager", help="Eager PyTorch instead of CUDA graphs (as profiled)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only sample and predict; no GPU needed."),
    max_median_error: float | None = typer.Option(None, help="Exit 1 if the median latency error (fraction) "
                                                                 "exceeds this.", callback=fraction),
    as_json: bool = typer.Option(False, "--json", help="Print JSON to stdout instead of tables."),
    output: Path | None = typer.Option(None, "-o", "--output", help="Also write the JSON report here.",
                                       callback=output_file),
) -> None:
    """Measure random co-locations under MPS and report predicted vs measured error per model."""
    if samples < 1:
        raise InputError("--samples must be >= 1")
    prof = load_profile(profile)
    models = sorted(prof.models)
    try:
        colocations = val.sample_colocations(models, samples, prof.hardware.unit_pct, seed, min_share=min_share,
                                             max_batch=min(val.MAX_BATCH, prof.max_batch))
    except ValueError as exc:
        raise InputError(f"--min-share {min_share:g}: {exc}") from None
    if dry_run:
        _dry_run(profile, colocations, as_json)
        return
    from igniter_opt.profiling.run import check_environment

    check_environment(l2_source="none")
    with _progress() as progress:
        task = progress.add_task("validating", total=len(colocations), last="")
        results = val.run_validation(prof, colocations, seconds, budget_s, dtype.value, eager,
                                     step=lambda m: progress.update(task, advance=1, last=m))
    stats = val.error_stats(results)
    report = {"profile": prof.name, "gpu": prof.gpu, "samples": samples,
              "measured": len({r.colocation for r in results}),
              "seed": seed, "seconds": seconds, "dtype": dtype.value, "cuda_graphs": not eager,
              "median_latency_error": stats["all"]["latency"]["median"] if results else None,
              "errors": stats, "results": [r.to_dict() for r in results]}
    if output is not None:
        emit_json(report, output)
    if as_json:
        emit_json(report)
    else:
        console.print(stats_table(stats, f"{prof.name}: predicted vs measured ({report['measured']} co-locations)"))
        if results:
            console.print(f"median error: {100 * stats['all']['latency']['median']:.1f}%")
    if max_median_error is not None and results and stats["all"]["latency"]["median"] > max_median_error:
        err_console.print(f"median latency error above {100 * max_median_error:.1f}%")
        raise typer.Exit(EXIT_CHECK_FAILED)


@profile_app.command("report")
def profile_report_cmd(
    validation: Path = typer.Argument(..., help="The JSON report of `igniter validate -o`."),
    raw: Path = typer.Option(..., help="The raw profile the fitted profile came from."),
    profile: str = typer.Option(..., help="The fitted profile that was validated (bundled name or JSON)."),
    output: Path = typer.Option(..., "-o", "--output", help="Markdown file to write.", callback=output_file),
    gpu: str = typer.Option("", help="GPU name for the title (default: the profile's)."),
    smi: str = typer.Option("n/a", help="nvidia-smi's line for the GPU."),
    command: list[str] = typer.Option([], "--command", help="A command that made the files (repeat, in order)."),
    run_seconds: int = typer.Option(0, help="Seconds the profile run took."),
    validate_seconds: int = typer.Option(0, help="Seconds the validation took."),
) -> None:
    """Write docs/validation-<gpu>.md: error table, commands and what the profile rests on."""
    from igniter_opt.data.io import read_json
    from igniter_opt.data.profiles import load_raw
    from igniter_opt.profiling.report import validation_markdown

    report = read_json(validation, "a validation report")
    if not isinstance(report, dict) or not {"errors", "measured", "samples", "median_latency_error"} <= set(report):
        raise InputError(f"{validation}: not a report of `igniter validate -o` (errors, measured, samples, "
                         "median_latency_error)")
    prof = load_profile(profile)
    text = validation_markdown(report, load_raw(raw), prof, gpu=gpu or prof.gpu, smi=smi, commands=command,
                               run_seconds=run_seconds, validate_seconds=validate_seconds, source=str(validation))
    output.write_text(text)
    console.print(f"wrote {output}")
