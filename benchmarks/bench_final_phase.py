"""The final phase of a datacenter-size exact solve, snapshotted once and replayed (issue 24, item 3).

At 200 and 500 workloads the root's column generation takes most of the limit, and what the
plan's side does with the rest (the final dives, their residual searches, the incumbent's
neighbourhoods: primal.py) decides the plan. `snap` runs one solve and pickles its search as the
final phase starts (a master pickles with its HiGHS model as arrays: Master.__getstate__).
`replay` runs that final phase again from the pickle, with ExactSettings fields changed, and
prints every residual search it ran. A replay takes the final phase's time (60 s at 500
workloads), not the solve's (300 s), and starts from the same root, so a change to the plan's
side is measured against the same LP and incumbent. Load only snapshots you made (pickle).

    python benchmarks/bench_final_phase.py snap --n 500 --seed 31101 --time-limit 300 --out /tmp/s.pkl
    python benchmarks/bench_final_phase.py replay /tmp/s.pkl --settings '{"lns_seconds": 10}'
    python benchmarks/bench_final_phase.py replay /tmp/s.pkl --seconds 150 --settings '{"lns_share": 0.8}'
    python benchmarks/bench_final_phase.py listing /tmp/s.pkl --threshold 0.99 --seconds 20   # 1 and 2 threads

Snapshots are taken where the master has at least --min-rows rows (150: every datacenter-size
solve), of the first search only (not a residual search's own final phase).
"""

from __future__ import annotations

import argparse
import json
import math
import pickle
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table


def snap(n: int, seed: int, limit: float, out: Path, min_rows: int, console: Console) -> None:
    """One solve of mixed_instance(n, seed) whose search is pickled to `out` at its final phase."""
    from igniter_opt.bench.generate import mixed_instance
    from igniter_opt.solvers.base import SolveOptions
    from igniter_opt.solvers.exact.bnp import BranchAndPrice
    from igniter_opt.solvers.exact.master import LpResult
    from igniter_opt.solvers.exact.solver import ExactOptions
    from igniter_opt.solvers.solve import solve

    final_phase = BranchAndPrice._final_phase
    taken: list[str] = []

    def snapped(search: BranchAndPrice, root_lp: LpResult) -> None:
        if not taken and math.isinf(search.cutoff) and len(search.master.demand) >= min_rows:
            left = search.final_deadline - time.perf_counter()
            out.write_bytes(pickle.dumps((search, root_lp, left)))
            taken.append(f"snapshot: {search.upper} GPUs, bound {search.lower}, root LP {root_lp.value:.4f}, "
                         f"{len(search.master.columns)} columns, {left:.1f} s left -> {out}")
        final_phase(search, root_lp)

    BranchAndPrice._final_phase = snapped  # type: ignore[method-assign,assignment]
    try:
        plan = solve(mixed_instance(n, seed), "exact", options=SolveOptions(time_limit=limit, threads=1),
                     solver_options=ExactOptions(time_limit=limit, threads=1))
    finally:
        BranchAndPrice._final_phase = final_phase  # type: ignore[method-assign]
    console.print(taken[0] if taken else f"no final phase with {min_rows} rows or more: nothing written")
    console.print(f"solve: {plan.num_gpus} GPUs, bound {plan.lower_bound}, {plan.status}", highlight=False)


def replay(path: Path, snapshot: tuple[Any, Any, float], seconds: float | None, tuning: dict, console: Console) -> None:
    """The final phase of a snapshot (read from `path`) again, with `tuning` applied: a row per
    residual search."""
    from igniter_opt.solvers.exact.residual import left as left_of

    search, root_lp, left = snapshot
    s = replace(search.s, **tuning)
    search.s = search.pricer.settings = s
    if search._residual_rows:  # derived from the settings when the search was built
        search._residual_rows = s.residual_rows if search.master.large else s.residual_rows_small
    start = time.perf_counter()
    search.final_deadline = search.deadline = start + (left if seconds is None else seconds)
    table = Table(title=f"final phase of {path.name}: {search.upper} GPUs, bound {search.lower}, "
                        f"root LP {root_lp.value:.4f}, {search.final_deadline - start:.1f} s, settings {tuning or '-'}")
    for name in ("at s", "rows asked", "cover GPUs", "took s", "GPUs after", "ended by its bound"):
        table.add_column(name, justify="right")
    complete = search._complete

    def traced(fixed: Any, cover: Any, until: float) -> None:
        begin, cut = time.perf_counter(), search.stats.cut_off
        rows = int((left_of(search.master, fixed) > 0).sum())
        complete(fixed, cover, until)
        table.add_row(f"{begin - start:.1f}", str(rows), str(len(cover)), f"{time.perf_counter() - begin:.2f}",
                      str(search.upper), "yes" if search.stats.cut_off > cut else "")

    search._complete = traced
    search._final_phase(root_lp)
    if search.lower < search.upper and time.perf_counter() < search.final_deadline - 0.2:
        search._final_integer()
    console.print(table)
    console.print(f"replay: {search.upper} GPUs, bound {search.lower}, {time.perf_counter() - start:.1f} s, "
                  f"{search.stats.neighbourhoods} neighbourhoods, {search.stats.cut_off} ended by their bound",
                  highlight=False)


def listing(snapshot: tuple[Any, Any, float], threshold: float, seconds: float, threads: list[int],
            repeats: int, console: Console) -> None:
    """One exhaustive set search (no column cap, no hand-off) on a snapshot's root duals, above
    `threshold`, for `seconds`, on each thread count in turn: sets per second (setwalk.py)."""
    from igniter_opt.solvers.exact.branching import Rules
    from igniter_opt.solvers.exact.closing import TINY

    search, root_lp, _ = snapshot
    search.final_deadline = search.deadline = time.perf_counter() + 3600
    lp = search._resolved([]) or root_lp
    table = Table(title=f"one listing above {threshold:g} on the snapshot's root duals "
                        f"(LP {lp.value:.4f}), {seconds:g} s")
    for name in ("threads", "sets", "seconds", "M sets/s", "columns", "complete"):
        table.add_column(name, justify="right")
    for _ in range(repeats):
        for k in threads:
            search.s = search.pricer.settings = replace(search.s, set_threads=k)
            t = time.perf_counter()
            res = search.pricer.price(lp.duals + TINY, threshold, beam=None, deadline=t + seconds, rules=Rules(),
                                      max_columns=2_000_000, max_nodes=10**12)
            dt = time.perf_counter() - t
            table.add_row(str(k), f"{res.nodes:,}", f"{dt:.1f}", f"{res.nodes / dt / 1e6:.2f}", f"{len(res.columns):,}",
                          str(res.complete))
    console.print(table)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    take = sub.add_parser("snap", help="solve once and pickle the search at its final phase")
    take.add_argument("--n", type=int, default=500)
    take.add_argument("--seed", type=int, required=True)
    take.add_argument("--time-limit", type=float, default=300.0)
    take.add_argument("--min-rows", type=int, default=150)
    take.add_argument("--out", type=Path, required=True)
    again = sub.add_parser("replay", help="run a snapshot's final phase again")
    again.add_argument("snapshot", type=Path)
    again.add_argument("--seconds", type=float, default=None, help="the final phase's time (default: the solve's)")
    again.add_argument("--settings", default="{}", help="ExactSettings fields to change, as JSON")
    rate = sub.add_parser("listing", help="one listing on a snapshot's root duals, on 1 and 2 threads")
    rate.add_argument("snapshot", type=Path)
    rate.add_argument("--threshold", type=float, default=0.99)
    rate.add_argument("--seconds", type=float, default=20.0)
    rate.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    rate.add_argument("--repeats", type=int, default=2)
    rate.set_defaults(settings="{}")  # the thread counts are its only settings
    args = parser.parse_args(argv)
    console = Console()
    if args.command == "snap":
        snap(args.n, args.seed, args.time_limit, args.out, args.min_rows, console)
        return
    from igniter_opt.solvers.exact.settings import DEFAULT

    try:
        tuning = json.loads(args.settings)
        replace(DEFAULT, **tuning)  # every field must exist
    except (ValueError, TypeError) as err:
        parser.error(f"--settings {args.settings!r}: {err}")
    try:
        snapshot = pickle.loads(args.snapshot.read_bytes())
    except (OSError, pickle.UnpicklingError, EOFError, KeyError) as err:
        parser.error(f"{args.snapshot}: not a snapshot of this version ({type(err).__name__}: {err})")
    if args.command == "listing":
        listing(snapshot, args.threshold, args.seconds, args.threads, args.repeats, console)
        return
    replay(args.snapshot, snapshot, args.seconds, tuning, console)

if __name__ == "__main__":
    main()
