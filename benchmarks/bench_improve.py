"""Exact's incumbent before/after the improvement phase (issue 24), against a multi-start search.

    python benchmarks/bench_improve.py instances/stress/stress-small-n32-0[0-2].json --time-limit 60
    python benchmarks/bench_improve.py instances/stress/stress-heavytail-*.json --time-limit 120 \\
        --no-before --json /tmp/heavytail.json
    python benchmarks/bench_improve.py /tmp/ht25/*.json --time-limit 120 --no-before --settings '{"dive_state": 0}'

Per instance: exact without the phase (its reserve set to 0; skipped with --no-before), exact with
it (default ImproveSettings), and `multistart` (first fit in random orders, best verified plan)
for as long as that exact solve took (when exact proves its plan optimal no plan can beat it, so
the comparison only matters where exact ran to its limit): GPUs, lower bound and status. Every
plan must verify. One HiGHS thread. The last lines: how many were proven, how many exact plans
multistart beat, and the load average. --json writes the rows; --settings changes ExactSettings
fields of every exact solve (an A/B run, as bench_exact's).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time
from dataclasses import replace

from rich.console import Console
from rich.table import Table


def main(argv: list[str] | None = None) -> None:
    from igniter_opt.data.instance import load_instance
    from igniter_opt.solvers.base import FunctionSolver, SolveOptions
    from igniter_opt.solvers.exact import solver as exact
    from igniter_opt.solvers.exact.improve import ImproveSettings, multistart
    from igniter_opt.solvers.exact.settings import DEFAULT
    from igniter_opt.solvers.registry import register
    from igniter_opt.solvers.sizing import size_instance
    from igniter_opt.solvers.solve import resolve_profile, solve

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("instances", nargs="+")
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument("--no-before", action="store_true", help="skip exact without the phase")
    ap.add_argument("--json", help="write the rows to this file")
    ap.add_argument("--settings", default="{}", help="JSON object of ExactSettings fields to change (an A/B run)")
    args = ap.parse_args(argv)
    tuned = exact.ExactOptions(time_limit=args.time_limit, threads=1,
                               settings=replace(DEFAULT, **json.loads(args.settings)))
    off = ImproveSettings(share=0.0, max_seconds=0.0)
    register("exact-noimprove", FunctionSolver("exact-noimprove", functools.partial(exact.solve, tuning=off),
                                               exact.ExactOptions.from_common), exact=True)
    opts = SolveOptions(time_limit=args.time_limit, threads=1)
    t = Table(title=f"exact before/after the improvement phase, {args.time_limit:g} s, one HiGHS thread")
    cols = ["instance", "greedy", "before GPUs/bound/status", "after GPUs/bound/status", "after s",
            "multistart GPUs"]
    for col in cols if not args.no_before else [c for c in cols if not c.startswith("before")]:
        t.add_column(col, justify="right")
    console = Console(width=160)
    rows: list[dict[str, object]] = []
    for path in args.instances:
        inst = load_instance(path)
        greedy = solve(inst, "greedy", options=opts)
        before = None if args.no_before else solve(inst, "exact-noimprove", options=opts, solver_options=tuned)
        begin = time.perf_counter()
        after = solve(inst, "exact", options=opts, solver_options=tuned)
        seconds = time.perf_counter() - begin
        prof = resolve_profile(inst)
        ms = multistart(prof, size_instance(inst, prof, 0.0), max(1.0, seconds))
        if not after.feasible or (before is not None and not before.feasible):
            sys.exit(f"{path}: a plan does not verify")
        row = {"instance": inst.name, "greedy": greedy.num_gpus if greedy.feasible else None,
               "gpus": after.num_gpus, "bound": after.lower_bound, "status": after.status,
               "seconds": round(seconds, 1), "multistart": len(ms)}
        if before is not None:
            row.update(before_gpus=before.num_gpus, before_bound=before.lower_bound, before_status=before.status)
        rows.append(row)
        cells = [inst.name, str(row["greedy"])]
        if before is not None:
            cells.append(f"{before.num_gpus}/{before.lower_bound}/{before.status}")
        cells += [f"{after.num_gpus}/{after.lower_bound}/{after.status}", f"{seconds:.1f}", str(len(ms))]
        console.print(" ".join(cells), style="dim", highlight=False)
        t.add_row(*cells)
    console.print(t)
    proven = sum(r["status"] == "optimal" for r in rows)
    beaten = sum(int(r["multistart"]) < int(r["gpus"]) for r in rows)  # type: ignore[call-overload]
    worse = sum(r["greedy"] is not None and int(r["gpus"]) > int(r["greedy"]) for r in rows)  # type: ignore[call-overload]
    load = os.getloadavg()
    console.print(f"proven {proven}/{len(rows)}; multistart better than exact on {beaten}; exact above the "
                  f"greedy on {worse}; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"time_limit": args.time_limit, "load": load, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
