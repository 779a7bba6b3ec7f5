"""Core commands: predict, solve, verify, profile fit|show, export-igniter."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.markup import escape
from rich.table import Table

from igniter_opt.cli.app import (
    EXIT_CHECK_FAILED,
    EXIT_INTERRUPTED,
    app,
    at_least,
    console,
    emit_json,
    err_console,
    fail,
    non_negative,
    output_file,
    positive,
    print_error,
    profile_app,
    working,
)
from igniter_opt.cli.choices import BatchPolicy, SolverName, value
from igniter_opt.cli.render import plan_table
from igniter_opt.data import io
from igniter_opt.data.errors import InputError, SolveInterrupted
from igniter_opt.data.export import export_igniter
from igniter_opt.data.instance import Instance
from igniter_opt.data.plan import Plan, load_plan
from igniter_opt.model import Profile, load_profile, predict_checked
from igniter_opt.model.instances import load_checked_instance
from igniter_opt.solvers.base import SolveOptions
from igniter_opt.solvers.margin import check_margin
from igniter_opt.solvers.solve import solve
from igniter_opt.solvers.verify import verify

JsonOpt = typer.Option(False, "--json", help="Print JSON to stdout instead of a table.")
MARGIN_HELP = ("Robustness margin (%, 0 <= PCT < 100): every workload must hold with predicted latency "
               "<= (1 - PCT/100) SLO/2 and throughput >= (1 + PCT/100) rate.")


def parse_colocation(spec: str) -> tuple[str, int, float]:
    """MODEL:BATCH:SHARE -> (model, batch, share); an InputError names the bad argument."""
    parts = spec.split(":")
    try:
        model, batch, share = parts[0], int(parts[1]), float(parts[2])
        if len(parts) != 3 or batch < 1 or not 0 < share <= 100:
            raise ValueError
    except (ValueError, IndexError):
        raise InputError(f"argument {spec!r}: expected MODEL:BATCH:SHARE with BATCH >= 1 and "
                         f"0 < SHARE <= 100") from None
    return model, batch, share


@app.command("predict")
def predict_cmd(
    workloads: list[str] = typer.Argument(..., help="Co-located workloads as MODEL:BATCH:SHARE."),
    profile: str = typer.Option("v100", help="Bundled profile name or fitted profile JSON."),
    as_json: bool = JsonOpt,
) -> None:
    """Predict latency and throughput of workloads co-located on one GPU."""
    specs = [parse_colocation(s) for s in workloads]
    prof = load_profile(profile)
    models, batches, shares = zip(*specs)
    pred = predict_checked(prof, models, batches, shares, [f"argument {s!r}" for s in workloads],
                           "arguments " + " ".join(workloads))
    rows: list[dict[str, Any]] = [
        {"model": m, "batch": b, "resource_pct": s, "latency_ms": float(lat), "throughput_rps": float(h)}
        for (m, b, s), lat, h in zip(specs, pred.latency_ms, pred.throughput_rps)]
    if as_json:
        emit_json({"workloads": rows, "gpu": {"frequency_mhz": pred.frequency_mhz, "power_w": pred.power_w,
                                               "total_share_pct": float(sum(shares))}})
        return
    table = Table(title=f"{prof.name}: one GPU, {pred.frequency_mhz:.1f} MHz, {pred.power_w:.1f} W demanded")
    for col in ("model", "batch", "share %", "latency ms", "throughput req/s"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for r in rows:
        table.add_row(r["model"], str(r["batch"]), f"{r['resource_pct']:g}", f"{r['latency_ms']:.4f}",
                      f"{r['throughput_rps']:.2f}")
    console.print(table)


def show_plan(plan: Plan, as_json: bool, output: Path | None) -> None:
    """Write/print a verified plan and exit 1 when it is infeasible or breaks an SLO."""
    if output is not None:
        plan.save(output)
    if as_json:
        emit_json(plan.to_dict())
    else:
        console.print(plan_table(plan))
        if output is not None:
            console.print(f"plan written to {output}")
    if not plan.feasible:
        print_error(plan.message or plan.status, label="not feasible:")
        raise typer.Exit(EXIT_CHECK_FAILED)


@app.command("solve")
def solve_cmd(
    instance: Path = typer.Argument(..., help="Instance JSON."),
    solver: SolverName = typer.Option(SolverName["greedy"], help="Solver to run."),
    output: Path | None = typer.Option(None, "-o", "--output", help="Write the plan JSON here.",
                                       callback=output_file),
    time_limit: float = typer.Option(60.0, help="Exact solvers: seconds before giving the best found.",
                                     callback=positive),
    threads: int = typer.Option(1, help="Exact solvers: HiGHS threads.", callback=at_least(1)),
    mip_gap: float = typer.Option(0.0, help="Exact solvers: relative MIP gap to stop at.", callback=non_negative),
    batch_policy: BatchPolicy | None = typer.Option(None, help="Batch policy (default: the instance's)."),
    profile: str | None = typer.Option(None, help="Override the instance's profile."),
    force: bool = typer.Option(False, help="patterns: enumerate even above the size limit."),
    margin: float = typer.Option(0.0, "--margin", metavar="PCT", help=MARGIN_HELP),
    save_interrupted: bool = typer.Option(
        False, help="On Ctrl-C, still write the best plan found so far to -o (status interrupted)."),
    as_json: bool = JsonOpt,
    learned_margin: Path | None = typer.Option(None, "--learned-margin", metavar="FILE",
                                               help="Scale each listed model's predicted GPU time by its learned "
                                                    "factor (a file from `igniter learn`)."),
) -> None:
    """Solve an instance: a verified plan (exit 1 if infeasible or an SLO is predicted broken).

    Ctrl-C stops the solve: exit 130, and the best plan so far is written only with
    --save-interrupted."""
    if save_interrupted and output is None:
        raise InputError("--save-interrupted: needs -o/--output to write the plan to")
    options = SolveOptions(time_limit=time_limit, threads=threads, mip_gap=mip_gap,
                           batch_policy=value(batch_policy), force=force,
                           margin_pct=check_margin(margin, "--margin"))
    inst = load_checked_instance(instance)
    prof, note = learned_profile(inst, profile, learned_margin)
    try:
        with working(f"solving {inst.name} ({len(inst.workloads)} workloads) with {solver.value}, "
                      f"time limit {time_limit:g} s"):
            plan = solve(inst, solver.value, prof, options)
        if note:
            plan.message = f"{plan.message}; {note}" if plan.message else note
    except SolveInterrupted as exc:
        interrupted(exc.plan, output if save_interrupted else None)
    show_plan(plan, as_json, output)


def learned_profile(inst: Instance, profile: str | None, learned: Path | None) -> tuple[Profile | str | None, str]:
    """The profile to solve with: the learned margin applied when given, and a note for the plan."""
    if learned is None:
        return profile, ""
    from igniter_opt.model.learned import apply_learned, load_learned
    from igniter_opt.solvers.solve import resolve_profile

    base = resolve_profile(inst, profile)
    factors = load_learned(learned, base)
    text = ", ".join(f"{m} x{f:.3g}" for m, f in sorted(factors.items())) or "no model"
    return apply_learned(base, factors), f"learned margin {learned}: {text}"


def interrupted(plan: Plan | None, output: Path | None) -> NoReturn:
    """Ctrl-C during a solve: one line on stderr, the plan written only when asked, exit 130."""
    best = "no plan yet"
    if plan is not None and plan.gpus:
        bound = "" if plan.lower_bound is None else f", lower bound {plan.lower_bound}"
        verdict = "meets every SLO" if plan.feasible else "BREAKS THE MODEL"
        best = f"best plan so far {plan.num_gpus} GPU(s){bound}, {verdict}"
    seconds = f" after {plan.solve_seconds:.1f} s" if plan is not None else ""
    if output is not None and plan is not None and plan.gpus:
        plan.save(output)
        where = f"written to {output} (status interrupted)"
    elif plan is not None and plan.gpus:
        where = "not written (pass --save-interrupted with -o to keep it)"
    else:
        where = "nothing written"
    err_console.print(f"interrupted{seconds}: {best}; {where}", highlight=False, soft_wrap=True,
                      markup=False)
    raise typer.Exit(EXIT_INTERRUPTED)


@app.command("verify")
def verify_cmd(
    plan: Path = typer.Argument(..., help="Plan JSON."),
    profile: str | None = typer.Option(None, help="Override the plan's profile."),
    output: Path | None = typer.Option(None, "-o", "--output", help="Write the verified plan here.",
                                       callback=output_file),
    margin: float | None = typer.Option(None, "--margin", metavar="PCT",
                                        help="Robustness margin (%) to check at (default: the plan's margin_pct)."),
    as_json: bool = JsonOpt,
) -> None:
    """Predict every workload of a plan; exit 1 when any SLO or share constraint is broken."""
    at = None if margin is None else check_margin(margin, "--margin")
    loaded = load_plan(plan)
    if loaded.fleet is not None and profile is None:  # a fleet plan: each GPU with its type's profile
        from igniter_opt.solvers.fleet import plan_fleet

        checked, problems = verify(loaded, plan_fleet(loaded, str(plan)) or load_profile(loaded.profile), at,
                                   origin=str(plan))
    else:
        checked, problems = verify(loaded, load_profile(profile or loaded.profile), at, origin=str(plan))
    checked.message = "; ".join(problems) or checked.message
    show_plan(checked, as_json, output)


@profile_app.command("fit")
def profile_fit_cmd(
    raw: Path = typer.Argument(..., help="Raw profile (iGniter JSON lines)."),
    output: Path = typer.Option(..., "-o", "--output", help="Fitted profile JSON to write.", callback=output_file),
    name: str | None = typer.Option(None, help="Profile name (default: the output file's stem)."),
    gpu: str = typer.Option("", help="GPU description stored with the profile."),
) -> None:
    """Fit the performance model's coefficients from a raw profile."""
    from igniter_opt.data.profiles import load_raw
    from igniter_opt.model.fit import fit  # scipy only when fitting

    fitted = fit(load_raw(raw), name=name or output.stem, gpu=gpu, origin=str(raw))
    fitted.save(output)
    console.print(f"fitted {len(fitted.models)} models ({', '.join(fitted.models)}) -> {output}")


@profile_app.command("show")
def profile_show_cmd(
    profile: str = typer.Argument(..., help="Bundled profile name or fitted profile JSON."),
    as_json: bool = JsonOpt,
) -> None:
    """Show a fitted profile's coefficients (a bare name is a bundled profile; NAME.json or a path
    is a file; the line "read from" says which was shown)."""
    from igniter_opt.data.profiles import read_profile_json

    prof = load_profile(profile)
    if as_json:
        emit_json(prof.to_dict())
        return
    err_console.print(f"read from {read_profile_json(profile)[1]}", highlight=False, soft_wrap=True, markup=False)
    hw = prof.hardware
    console.print(f"[bold]{escape(prof.name)}[/bold] {escape(prof.gpu)} (from {escape(prof.source or '?')})\n"
                  f"F={hw.max_frequency_mhz:g} MHz  P_max={hw.power_cap_w:g} W  P_idle={hw.idle_power_w:g} W  "
                  f"B={hw.bandwidth_bytes_per_ms:g} B/ms  u={hw.unit_pct:g}%  a_f={hw.a_f:.6g}  "
                  f"a_sch={hw.a_sch:.6g}  b_sch={hw.b_sch:.6g}", markup=True)
    table = Table()
    for col in ("model", "kernels", "t_idle ms", "d_in B", "d_out B", "k1..k5", "a_p, b_p", "a_c, b_c", "k_l2"):
        table.add_column(col)
    for m in prof.models.values():
        table.add_row(escape(m.name), str(m.kernels), f"{m.t_idle_ms:.4g}", f"{m.input_bytes:g}", f"{m.output_bytes:g}",
                      ", ".join(f"{v:.4g}" for v in m.k), ", ".join(f"{v:.4g}" for v in m.power),
                      ", ".join(f"{v:.4g}" for v in m.l2), f"{m.k_l2:.4g}")
    console.print(table)


@app.command("export-igniter")
def export_igniter_cmd(
    plan: Path = typer.Argument(..., help="Plan JSON."),
    directory: Path = typer.Argument(..., help="Folder for config_gpuN.json files."),
    force: bool = typer.Option(False, "--force", help="Export even a plan that verify rejects."),
) -> None:
    """Write the reference's per-GPU config_gpuN.json files for a plan (exit 1, nothing written,
    when verify rejects the plan, unless --force)."""
    loaded = load_plan(plan)
    _, problems = verify(loaded, load_profile(loaded.profile), origin=str(plan))
    if problems and not force:
        fail(f"{plan}: verify rejects this plan ({problems[0]}{'; ...' if len(problems) > 1 else ''}); "
             "nothing exported (--force exports it anyway)")
    paths = export_igniter(loaded, io.output_dir(directory))
    console.print(io.dumps([str(p) for p in paths], indent=None), highlight=False, soft_wrap=True, markup=False)
