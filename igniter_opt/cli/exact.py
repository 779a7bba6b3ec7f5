"""`igniter compare`: every solver on one instance, side by side (and, with --margins, at each
robustness margin: the price of robustness)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import typer
from rich.table import Table
from rich.text import Text

from igniter_opt.cli.app import (
    EXIT_CHECK_FAILED,
    EXIT_INTERRUPTED,
    app,
    at_least,
    console,
    emit_json,
    err_console,
    positive,
    working,
)
from igniter_opt.cli.choices import BatchPolicy, value
from igniter_opt.data.errors import InfeasibleError, InputError, SolveInterrupted
from igniter_opt.data.instance import Instance
from igniter_opt.data.plan import Plan
from igniter_opt.model import load_profile
from igniter_opt.model.instances import load_checked_instance
from igniter_opt.solvers.base import SolveOptions
from igniter_opt.solvers.margin import check_margin
from igniter_opt.solvers.registry import SOLVERS
from igniter_opt.solvers.sizing import size_instance
from igniter_opt.solvers.solve import solve

DEFAULT_SOLVERS = "greedy,ffd,exact"  # milp and patterns stay available as cross-checks


def parse_solvers(spec: str) -> list[str]:
    """'greedy,milp' -> ['greedy', 'milp']; an unknown name is bad input."""
    names = [s.strip() for s in spec.split(",") if s.strip()]
    bad = [s for s in names if s not in SOLVERS]
    if bad or not names:
        raise InputError(f"--solvers {spec!r}: unknown solver(s) {', '.join(bad) or '(none given)'} "
                         f"(choose from {', '.join(SOLVERS)})")
    return names


def parse_margins(spec: str) -> list[float]:
    """'0,5,10' -> [0.0, 5.0, 10.0] (sorted, once each); each in [0, 100) or bad input."""
    items = [s.strip() for s in spec.split(",") if s.strip()]
    if not items:
        raise InputError(f"--margins {spec!r}: expected comma-separated percents, e.g. 0,5,10,20")
    margins = []
    for item in items:
        try:
            number = float(item)
        except ValueError:
            raise InputError(f"--margins {spec!r}: {item!r} is not a number") from None
        margins.append(check_margin(number, "--margins"))
    return sorted(set(margins))


def compare_row(plan: Plan) -> dict:
    """One solver's summary (the JSON row and the table row)."""
    return {"instance": plan.instance, "solver": plan.solver, "margin_pct": plan.margin_pct,
            "num_gpus": plan.num_gpus, "lower_bound": plan.lower_bound,
            **({} if plan.cost is None else {"cost": plan.cost, "cost_bound": plan.cost_bound}),
            "status": plan.status, "gap": plan.gap, "total_share_pct": round(plan.total_share, 6),
            "feasible": plan.feasible, "solve_seconds": plan.solve_seconds, "message": plan.message,
            **({} if plan.space is None else {"space": plan.space})}


def compare_table(title: str, rows: list[dict]) -> Table:
    """One row per solver; with a priced fleet, cost per hour and its proven bound beside the GPUs."""
    table = Table(title=title)
    priced = any("cost" in r for r in rows)
    costs = ("cost/h", "cost bound") if priced else ()
    for col in ("solver", "GPUs", *costs, "lower bound", "status", "gap", "total share %", "feasible", "seconds"):
        table.add_column(col, justify="left" if col in ("solver", "status") else "right")
    for r in rows:
        ok = Text("yes", style="green") if r["feasible"] else Text("NO", style="red")
        money = tuple("-" if r.get(k) is None else f"{r[k]:g}" for k in ("cost", "cost_bound")) if priced else ()
        table.add_row(r["solver"], str(r["num_gpus"]), *money,
                      "-" if r["lower_bound"] is None else str(r["lower_bound"]),
                      _status(r), "-" if r["gap"] is None else f"{r['gap']:.1%}", f"{r['total_share_pct']:g}",
                      ok, f"{r['solve_seconds']:.2f}")
    return table


def _status(row: dict) -> str:
    """The status, with the space it holds over when that is only the sizing's split (docs/exact.md)."""
    return f"{row['status']} (fixed split)" if row.get("space") == "fixed split" else row["status"]


def cell(row: dict) -> str:
    """GPUs of one (solver, margin): '-' without a plan, '!' breaks the model, '~' not proven."""
    if row["status"] in ("refused", "infeasible") or not row["num_gpus"]:
        return "-"
    mark = "" if row["feasible"] else "!"
    if row["feasible"] and row["status"] == "time_limit":
        mark = "~"
    return f"{row['num_gpus']}{mark}"


MARGIN_LEGEND = "-: no plan; !: the plan breaks the model at that margin; ~: time limit, not proven optimal"


def margin_table(title: str, rows: list[dict], solvers: list[str], margins: list[float]) -> Table:
    """GPUs per solver (rows) per margin (columns), plus the GPUs added from the first to the last."""
    by = {(r["solver"], r["margin_pct"]): r for r in rows}
    table = Table(title=title)
    table.add_column("solver")
    for m in margins:
        table.add_column(f"{m:g}%", justify="right")
    table.add_column(f"+GPUs {margins[0]:g}->{margins[-1]:g}%", justify="right")
    for s in solvers:  # a (solver, margin) missing (an interrupted comparison) is "-"
        first, last = by.get((s, margins[0])), by.get((s, margins[-1]))
        added = "-"
        if first is not None and last is not None and all(r["feasible"] and r["num_gpus"] for r in (first, last)):
            added = f"{last['num_gpus'] - first['num_gpus']:+d}"
        table.add_row(s, *(cell(by[(s, m)]) if (s, m) in by else "-" for m in margins), added)
    return table


@app.command("compare")
def compare_cmd(
    instance: Path = typer.Argument(..., help="Instance JSON."),
    solvers: str = typer.Option(DEFAULT_SOLVERS, help="Comma-separated solvers to run."),
    time_limit: float = typer.Option(60.0, help="Exact solvers: seconds before giving the best found.",
                                     callback=positive),
    threads: int = typer.Option(1, help="Exact solvers: HiGHS threads.", callback=at_least(1)),
    batch_policy: BatchPolicy | None = typer.Option(None, help="Batch policy (default: the instance's)."),
    force: bool = typer.Option(False, help="patterns: enumerate even above the size limit."),
    margins: str = typer.Option("0", "--margins", metavar="PCT,...",
                                help="Robustness margins (%) to solve at, e.g. 0,5,10,20: GPUs per solver per "
                                     "margin (latency <= (1 - PCT/100) SLO/2, throughput >= (1 + PCT/100) rate)."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list instead of a table."),
) -> None:
    """Run several solvers on one instance: GPUs, bound, status, gap, share, feasibility, time."""
    names = parse_solvers(solvers)
    levels = parse_margins(margins)
    inst = load_checked_instance(instance)
    try:  # what every solver would refuse (e.g. an absurd rate) is bad input, not a per-solver row
        if inst.mixed:
            from igniter_opt.solvers.fleet import instance_fleet, size_fleet

            size_fleet(inst, instance_fleet(inst))
        else:
            size_instance(inst, load_profile(inst.profile))
    except InfeasibleError:
        pass
    options = SolveOptions(time_limit=time_limit, threads=threads, batch_policy=value(batch_policy), force=force)
    rows, stop = _compare_rows(inst, names, levels, options)
    if as_json:
        emit_json(rows)
    elif rows:
        _print_comparison(inst, names, levels, rows)
    if stop is not None:
        err_console.print(f"interrupted in {stop}: the rows shown are the solves that finished (and the "
                          "interrupted one's best plan so far, status interrupted)", highlight=False,
                          soft_wrap=True, markup=False)
        raise typer.Exit(EXIT_INTERRUPTED)
    if not any(r["feasible"] for r in rows):
        err_console.print("no solver found a feasible plan", highlight=False, soft_wrap=True, markup=False)
        raise typer.Exit(EXIT_CHECK_FAILED)


def _compare_rows(inst: Instance, names: list[str], levels: list[float], options: SolveOptions
                  ) -> tuple[list[dict], str | None]:
    """One row per (margin, solver); on Ctrl-C the rows so far, the interrupted solve's best plan
    (when it had one) and that solver's name."""
    rows: list[dict] = []
    for margin in levels:
        at_margin = replace(options, margin_pct=margin)
        for name in names:
            try:
                with working(f"{name} on {inst.name} ({len(inst.workloads)} workloads)"
                             + (f" at margin {margin:g}%" if margin else "")):
                    rows.append(compare_row(solve(inst, name, None, at_margin)))
            except SolveInterrupted as exc:
                if exc.plan is not None and exc.plan.gpus:
                    rows.append(compare_row(exc.plan))
                return rows, name
            except InputError as exc:  # e.g. patterns above its size limit: report, keep comparing
                if len(names) == 1:
                    raise
                rows.append({"instance": inst.name, "solver": name, "margin_pct": margin, "num_gpus": 0,
                             "lower_bound": None, "status": "refused", "gap": None, "total_share_pct": 0.0,
                             "feasible": False, "solve_seconds": 0.0, "message": str(exc)})
    return rows, None


def _print_comparison(inst: Instance, names: list[str], levels: list[float], rows: list[dict]) -> None:
    """The comparison table (or the margin table), then each solve's message."""
    title = f"{inst.name}: {len(inst.workloads)} workloads"
    if len(levels) > 1:
        console.print(margin_table(f"{title}, GPUs per solver per robustness margin", rows, names, levels))
        console.print(MARGIN_LEGEND, highlight=False)
    else:
        console.print(compare_table(title + (f", margin {levels[0]:g}%" if levels[0] else ""), rows))
    for r in rows:
        if r["message"]:
            at = f" @ {r['margin_pct']:g}%" if len(levels) > 1 else ""
            console.print(f"{r['solver']}{at}: {r['message']}", highlight=False, soft_wrap=True, markup=False)
