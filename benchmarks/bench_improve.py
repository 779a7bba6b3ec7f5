"""Exact's incumbent before/after the destroy-and-repair phase (issue 24), against a multi-start search.

    python benchmarks/bench_improve.py instances/stress/stress-small-n32-0[0-2].json --time-limit 60

Per instance: exact without the phase (its reserve set to 0), exact with it (default
ImproveSettings), and `multistart` (first fit in random orders, best verified plan) for the same
time: GPUs, lower bound and status. Every plan must verify. One HiGHS thread.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time

from rich.console import Console
from rich.table import Table


def main(argv: list[str] | None = None) -> None:
    from igniter_opt.data.instance import load_instance
    from igniter_opt.solvers.base import FunctionSolver, SolveOptions
    from igniter_opt.solvers.exact import solver as exact
    from igniter_opt.solvers.exact.improve import ImproveSettings, multistart
    from igniter_opt.solvers.registry import register
    from igniter_opt.solvers.sizing import size_instance
    from igniter_opt.solvers.solve import resolve_profile, solve

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("instances", nargs="+")
    ap.add_argument("--time-limit", type=float, default=60.0)
    args = ap.parse_args(argv)
    off = ImproveSettings(share=0.0, max_seconds=0.0)
    register("exact-noimprove", FunctionSolver("exact-noimprove", functools.partial(exact.solve, tuning=off),
                                               exact.ExactOptions.from_common), exact=True)
    opts = SolveOptions(time_limit=args.time_limit, threads=1)
    t = Table(title=f"exact before/after destroy-and-repair, {args.time_limit:g} s, one HiGHS thread")
    for col in ("instance", "before GPUs/bound/status", "after GPUs/bound/status", "after s", "multistart GPUs"):
        t.add_column(col, justify="right")
    console = Console(width=160)
    for path in args.instances:
        inst = load_instance(path)
        before = solve(inst, "exact-noimprove", options=opts)
        begin = time.perf_counter()
        after = solve(inst, "exact", options=opts)
        seconds = time.perf_counter() - begin
        prof = resolve_profile(inst)
        ms = multistart(prof, size_instance(inst, prof, 0.0), args.time_limit)
        if not (before.feasible and after.feasible):
            sys.exit(f"{path}: a plan does not verify")
        row = [inst.name, f"{before.num_gpus}/{before.lower_bound}/{before.status}",
               f"{after.num_gpus}/{after.lower_bound}/{after.status}", f"{seconds:.1f}", str(len(ms))]
        console.print(" ".join(row), style="dim", highlight=False)
        t.add_row(*row)
    console.print(t)


if __name__ == "__main__":
    main()
