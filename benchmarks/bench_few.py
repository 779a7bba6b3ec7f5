"""A handful of high-rate workloads, each over several GPUs: exact over every split against milp.

    python benchmarks/bench_few.py                                   # sizes 3-8, both policies
    python benchmarks/bench_few.py --sizes 4,6 --seeds 10 --first-seed 500 --time-limit 20
    python benchmarks/bench_few.py --settings '{"close_rows_small": 0}'   # an A/B run

Instances: igniter_opt.bench.generate.few_instance (SLOs up to ten times the mixed family's,
rates 500-3000 req/s). exact searches every split of a workload into replicas; milp proves its
optimum for the sizing's split only (docs/exact.md, "What is proven"), so exact's plan may use
fewer GPUs and never more. Per size and policy: instances exact proves optimal within the limit,
its median and largest time, its GPUs against milp's, and where it ends above its bound. Every
plan must verify.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_exact import _tuning  # the same --settings checks

from igniter_opt.bench.generate import few_instance
from igniter_opt.solvers.base import SolveOptions
from igniter_opt.solvers.exact.settings import DEFAULT
from igniter_opt.solvers.exact.solver import ExactOptions
from igniter_opt.solvers.solve import solve


def one(n: int, seed: int, policy: str, limit: float, tuning: dict) -> dict:
    """exact and milp on one instance (one HiGHS thread each)."""
    inst = few_instance(n, seed, policy)
    common = SolveOptions(time_limit=limit, threads=1, batch_policy=policy)
    milp = solve(inst, "milp", options=common)
    begin = time.perf_counter()
    exact = solve(inst, "exact", options=common,
                  solver_options=ExactOptions(time_limit=limit, threads=1, settings=replace(DEFAULT, **tuning)))
    seconds = time.perf_counter() - begin
    if not (exact.feasible and milp.feasible):
        raise SystemExit(f"{inst.name} ({policy}): a plan that does not verify")
    return {"n": n, "seed": seed, "policy": policy, "gpus": exact.num_gpus, "bound": exact.lower_bound,
            "proven": exact.status == "optimal", "seconds": seconds, "milp": milp.num_gpus}


def table(rows: list[dict], title: str) -> Table:
    t = Table(title=title)
    for col in ("n", "policy", "inst", "proven", "median s", "max s", "exact GPUs", "milp GPUs",
                "exact < milp", "exact > milp", "open (plan / bound)"):
        t.add_column(col, justify="right")
    for key in sorted({(r["n"], r["policy"]) for r in rows}):
        rs = [r for r in rows if (r["n"], r["policy"]) == key]
        times = [r["seconds"] for r in rs]
        t.add_row(str(key[0]), key[1], str(len(rs)), f"{sum(r['proven'] for r in rs)}/{len(rs)}",
                  f"{statistics.median(times):.1f}", f"{max(times):.1f}", str(sum(r["gpus"] for r in rs)),
                  str(sum(r["milp"] for r in rs)), str(sum(r["gpus"] < r["milp"] for r in rs)),
                  str(sum(r["gpus"] > r["milp"] for r in rs)),
                  " ".join(f"{r['gpus']}/{r['bound']}" for r in rs if not r["proven"]) or "-")
    return t


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="3,4,5,6,8", help="comma-separated workload counts")
    ap.add_argument("--seeds", type=int, default=6, help="instances per size and policy")
    ap.add_argument("--first-seed", type=int, default=100)
    ap.add_argument("--policies", default="paper,joint")
    ap.add_argument("--time-limit", type=float, default=20.0, help="seconds per solve")
    ap.add_argument("--settings", default="{}", help="JSON object of ExactSettings fields to change (an A/B run)")
    args = ap.parse_args(argv)
    tuning = _tuning(args.settings)
    console = Console(width=160)
    rows = []
    for n in (int(s) for s in args.sizes.split(",") if s):
        for policy in args.policies.split(","):
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                row = one(n, seed, policy, args.time_limit, tuning)
                console.print(f"n={n} seed={seed} {policy}: exact {row['gpus']} / {row['bound']} in "
                              f"{row['seconds']:.1f} s, milp {row['milp']}", style="dim", highlight=False)
                rows.append(row)
    console.print(table(rows, f"few high-rate workloads, seeds from {args.first_seed}, limit {args.time_limit:g} s"
                              f"{f', settings {tuning}' if tuning else ''}"))


if __name__ == "__main__":
    main()
