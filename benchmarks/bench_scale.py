"""Scale of every solver from 10 to 10,000 workloads: time, peak memory, and the time-limit overrun.

    python benchmarks/bench_scale.py                          # sizes 10,100,1000,10000, limit 5 s
    python benchmarks/bench_scale.py --sizes 10,100,1000 --limit 10 --solvers greedy,exact

Each (size, solver) runs `solvers.solve` on `bench.generate.random_instance(n, seed)` in a fresh
process (so its peak resident memory, from getrusage, is its own and numba/Pyomo imports are not
counted in the time), with `--time-limit`. `patterns` runs with force (it is refused above 16
workloads otherwise); a run refused by a memory bound (patterns' MAX_PATTERNS) is a row `refused`.
The overrun is the call's wall time past the limit; the promise is overrun <= max(2 s, 10% of the
limit) at every size (README, "Exact solvers"), and the script exits 1 when a run breaks it.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import sys
import time
from typing import Any

from rich.console import Console
from rich.table import Table


def _run(n: int, solver: str, limit: float, seed: int, out: Any) -> None:
    from igniter_opt.bench.generate import random_instance
    from igniter_opt.data.errors import InputError
    from igniter_opt.solvers.base import SolveOptions
    from igniter_opt.solvers.registry import get_solver
    from igniter_opt.solvers.solve import solve

    instance = random_instance(n, seed)
    get_solver(solver)  # imports (Pyomo, numba) outside the timed call
    start = time.perf_counter()
    try:
        plan = solve(instance, solver, options=SolveOptions(time_limit=limit, force=True))
    except InputError:  # a memory bound refused the run in one line (patterns' MAX_PATTERNS)
        seconds = time.perf_counter() - start
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        out.send((seconds, peak_mb, 0, None, "refused", False))
        return
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out.send((seconds, peak_mb, plan.num_gpus, plan.lower_bound, plan.status, plan.feasible))


def measure(n: int, solver: str, limit: float, seed: int = 0) -> tuple[float, float, int, int | None, str, bool]:
    """(seconds, peak MB, GPUs, lower bound, status, feasible) of one solve in a fresh process."""
    ctx = mp.get_context("spawn")
    here, there = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_run, args=(n, solver, limit, seed, there))
    proc.start()
    try:
        if not here.poll(limit * 20 + 120):
            raise RuntimeError(f"{solver} at {n} workloads gave no answer in {limit * 20 + 120:g} s")
        result: tuple[float, float, int, int | None, str, bool] = here.recv()
        return result
    finally:
        proc.join(5)
        if proc.is_alive():
            proc.kill()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,100,1000,10000")
    parser.add_argument("--solvers", default="greedy,ffd,exact,milp,patterns")
    parser.add_argument("--limit", type=float, default=5.0, help="time limit of every solve (s)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    solvers = args.solvers.split(",")
    allowed = max(2.0, 0.1 * args.limit)
    table = Table(title=f"random instances, --time-limit {args.limit:g} s (allowed overrun {allowed:g} s)")
    for col in ("workloads", "solver", "seconds", "peak MB", "GPUs", "bound", "status", "verifies", "overrun s"):
        table.add_column(col, justify="right")
    worst: dict[str, float] = {}
    for n in sizes:
        for solver in solvers:
            seconds, peak, gpus, bound, status, feasible = measure(n, solver, args.limit, args.seed)
            overrun = max(0.0, seconds - args.limit)
            worst[solver] = max(worst.get(solver, 0.0), overrun)
            table.add_row(str(n), solver, f"{seconds:.2f}", f"{peak:.0f}", str(gpus), str(bound), status,
                          "yes" if feasible else "no", f"{overrun:.2f}")
            print(f"{n:>6} {solver:>8} {seconds:8.2f} s {peak:7.0f} MB {gpus:>6} GPUs {status}", file=sys.stderr)
    console = Console()
    console.print(table)
    for solver, over in worst.items():
        console.print(f"max overrun {solver}: {over:.2f} s ({'ok' if over <= allowed else 'BROKEN'})")
    return 0 if all(over <= allowed for over in worst.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
