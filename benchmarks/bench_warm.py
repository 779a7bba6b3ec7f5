"""Warm re-plans of `exact` against cold solves, after one change (issue 24, item 4).

    python benchmarks/bench_warm.py                                  # 100 workloads, seeds 13000-13004
    python benchmarks/bench_warm.py --n 100 --first-seed 13000 --seeds 3 --time-limit 120 --base-time-limit 300

Per seed: the mixed instance (bench_exact's family) solved cold (the service's previous solve;
`--base-time-limit`, by default the same limit), its warm start kept (solvers/exact/warm.py);
then for each change (a random workload's rate +20%, -20%, a random workload removed) the changed
instance solved warm from it and cold, in this process (the compiled
kernels loaded once), one HiGHS thread. Every plan must verify. The table gives time, status and
GPUs/bound of both and the ratio warm/cold; the load average next to each row (the machine is
shared: figures are wall seconds under that load).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np
from rich.console import Console
from rich.table import Table

from igniter_opt.bench.changes import one_change
from igniter_opt.bench.generate import mixed_instance
from igniter_opt.data.instance import Instance
from igniter_opt.data.plan import Plan
from igniter_opt.solvers.exact import ExactOptions
from igniter_opt.solvers.exact.warm import ExactWarmStart, WarmRecord
from igniter_opt.solvers.solve import solve

CHANGES = ("up", "down", "remove")


def _solve(inst: Instance, limit: float, warm: ExactWarmStart | None = None,
           record: WarmRecord | None = None) -> tuple[Plan, float]:
    begin = time.perf_counter()
    plan = solve(inst, "exact", solver_options=ExactOptions(time_limit=limit, threads=1, warm=warm, record=record))
    seconds = time.perf_counter() - begin
    if not plan.feasible:
        sys.exit(f"{inst.name}: the plan does not verify: {plan.message}")
    return plan, seconds


def run(n: int, seeds: list[int], limit: float, console: Console, base_limit: float | None = None) -> list[dict]:
    rows = []
    for seed in seeds:
        inst = mixed_instance(n, seed)
        rec = WarmRecord()
        base, base_s = _solve(inst, base_limit or limit, record=rec)
        assert rec.last is not None
        console.print(f"seed {seed}: cold {base.num_gpus}/{base.lower_bound} {base.status} {base_s:.1f} s",
                      style="dim", highlight=False)
        rng = np.random.default_rng(seed)
        for kind in CHANGES:
            index = int(rng.integers(len(inst.workloads)))
            changed, name = one_change(inst, kind, index)
            got = WarmRecord()
            warm, warm_s = _solve(changed, limit, warm=rec.last, record=got)
            cold, cold_s = _solve(changed, limit)
            stats = got.stats
            row = {"seed": seed, "base": f"{base.num_gpus}/{base.lower_bound} {base.status} {base_s:.1f}",
                   "change": f"{kind} {name}", "warm": warm, "warm_s": warm_s, "cold": cold, "cold_s": cold_s,
                   "columns": "" if stats is None else f"{stats.kept}+{stats.rechecked - stats.rejected}"
                                                       f" (-{stats.rejected})",
                   "load": os.getloadavg()[0]}
            console.print(f"  {kind} {name}: warm {warm.num_gpus}/{warm.lower_bound} {warm.status} {warm_s:.1f} s, "
                          f"cold {cold.num_gpus}/{cold.lower_bound} {cold.status} {cold_s:.1f} s, "
                          f"load {row['load']:.1f}", style="dim", highlight=False)
            rows.append(row)
    return rows


def table(rows: list[dict], title: str) -> Table:
    t = Table(title=title)
    for col in ("seed", "cold before (GPUs/bound status s)", "change", "columns kept+rechecked (-stale)",
                "warm GPUs/bound", "warm status", "warm s", "cold GPUs/bound", "cold status", "cold s",
                "warm/cold", "load"):
        t.add_column(col, justify="right")
    for r in rows:
        w, c = r["warm"], r["cold"]
        t.add_row(str(r["seed"]), r["base"], r["change"], r["columns"], f"{w.num_gpus}/{w.lower_bound}", w.status,
                  f"{r['warm_s']:.1f}", f"{c.num_gpus}/{c.lower_bound}", c.status, f"{r['cold_s']:.1f}",
                  f"{r['warm_s'] / r['cold_s']:.3f}", f"{r['load']:.1f}")
    return t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--first-seed", type=int, default=13000)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--time-limit", type=float, default=120.0, help="of the warm and cold solves after the change")
    ap.add_argument("--base-time-limit", type=float, default=None, help="of the solve before it (default: the same)")
    args = ap.parse_args()
    console = Console(width=200)
    rows = run(args.n, list(range(args.first_seed, args.first_seed + args.seeds)), args.time_limit, console,
               args.base_time_limit)
    ratios = [r["warm_s"] / r["cold_s"] for r in rows]
    console.print(table(rows, f"exact warm vs cold re-plan after one change, n={args.n}, {args.time_limit:g} s limit "
                              f"(before: {args.base_time_limit or args.time_limit:g} s), one HiGHS thread"))
    rate = [r["warm_s"] / r["cold_s"] for r in rows if not r["change"].startswith("remove")]
    console.print(f"warm/cold: median {statistics.median(ratios):.3f}, max {max(ratios):.3f}; "
                  f"rate changes only: median {statistics.median(rate):.3f}, max {max(rate):.3f}; "
                  f"same GPUs {sum(r['warm'].num_gpus == r['cold'].num_gpus for r in rows)}/{len(rows)}; "
                  f"load average at the end {os.getloadavg()[0]:.1f}", highlight=False)


if __name__ == "__main__":
    main()
