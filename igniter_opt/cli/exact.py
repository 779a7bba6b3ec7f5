"""`igniter compare`: every solver on one instance, side by side."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from igniter_opt.cli.app import app, console, emit_json
from igniter_opt.cli.choices import BatchPolicy, value
from igniter_opt.data.errors import InputError
from igniter_opt.data.instance import load_instance
from igniter_opt.data.plan import Plan
from igniter_opt.solvers.base import SolveOptions
from igniter_opt.solvers.registry import SOLVERS
from igniter_opt.solvers.solve import solve

DEFAULT_SOLVERS = "greedy,ffd,milp,patterns"


def parse_solvers(spec: str) -> list[str]:
    """'greedy,milp' -> ['greedy', 'milp']; an unknown name is bad input."""
    names = [s.strip() for s in spec.split(",") if s.strip()]
    bad = [s for s in names if s not in SOLVERS]
    if bad or not names:
        raise InputError(f"--solvers {spec!r}: unknown solver(s) {', '.join(bad) or '(none given)'} "
                         f"(choose from {', '.join(SOLVERS)})")
    return names


def compare_row(plan: Plan) -> dict:
    """One solver's summary (the JSON row and the table row)."""
    return {"solver": plan.solver, "num_gpus": plan.num_gpus, "lower_bound": plan.lower_bound,
            "status": plan.status, "gap": plan.gap, "total_share_pct": round(plan.total_share, 6),
            "feasible": plan.feasible, "solve_seconds": plan.solve_seconds, "message": plan.message}


def compare_table(title: str, rows: list[dict]) -> Table:
    table = Table(title=title)
    for col in ("solver", "GPUs", "lower bound", "status", "gap", "total share %", "feasible", "seconds"):
        table.add_column(col, justify="left" if col in ("solver", "status") else "right")
    for r in rows:
        ok = "[green]yes[/green]" if r["feasible"] else "[red]NO[/red]"
        table.add_row(r["solver"], str(r["num_gpus"]), "-" if r["lower_bound"] is None else str(r["lower_bound"]),
                      r["status"], "-" if r["gap"] is None else f"{r['gap']:.1%}", f"{r['total_share_pct']:g}",
                      ok, f"{r['solve_seconds']:.2f}")
    return table


@app.command("compare")
def compare_cmd(
    instance: Path = typer.Argument(..., help="Instance JSON."),
    solvers: str = typer.Option(DEFAULT_SOLVERS, help="Comma-separated solvers to run."),
    time_limit: float = typer.Option(60.0, help="Exact solvers: seconds before giving the best found."),
    threads: int = typer.Option(1, help="Exact solvers: HiGHS threads."),
    batch_policy: BatchPolicy | None = typer.Option(None, help="Batch policy (default: the instance's)."),
    force: bool = typer.Option(False, help="patterns: enumerate even above the size limit."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list instead of a table."),
) -> None:
    """Run several solvers on one instance: GPUs, bound, status, gap, share, feasibility, time."""
    names = parse_solvers(solvers)
    inst = load_instance(instance)
    options = SolveOptions(time_limit=time_limit, threads=threads, batch_policy=value(batch_policy), force=force)
    rows = []
    for name in names:
        try:
            rows.append(compare_row(solve(inst, name, None, options)))
        except InputError as exc:  # e.g. patterns above its size limit: report, keep comparing
            if len(names) == 1:
                raise
            rows.append({"solver": name, "num_gpus": 0, "lower_bound": None, "status": "refused", "gap": None,
                         "total_share_pct": 0.0, "feasible": False, "solve_seconds": 0.0, "message": str(exc)})
    if as_json:
        emit_json(rows)
        return
    console.print(compare_table(f"{inst.name}: {len(inst.workloads)} workloads", rows))
    for r in rows:
        if r["message"]:
            console.print(f"{r['solver']}: {r['message']}", highlight=False, soft_wrap=True)
