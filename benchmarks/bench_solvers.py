"""Benchmark greedy, milp and patterns on generated instances (igniter_opt.bench.generate.random_instance).

The datacenter sizes (32, 64, 100, 200, 500 mixed workloads) of the branch-and-price solver `exact`
are benchmarked by benchmarks/bench_exact.py (one process per solve, for its peak memory).

    python benchmarks/bench_solvers.py                      # sizes 4..32, 3 seeds each
    python benchmarks/bench_solvers.py --large              # plus 64 and 100 (60 s limit)
    python benchmarks/bench_solvers.py --ablate cliques     # milp with one strengthening off

Per size: median seconds and GPUs of each solver, milp's median and worst gap, how many instances
milp proved optimal, and on how many it uses fewer GPUs than the greedy (when the greedy's plan
verifies). Every exact plan must verify; the script stops loudly if one does not.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import fields

from rich.console import Console
from rich.table import Table

from igniter_opt.bench.generate import random_instance
from igniter_opt.solvers.base import SolveOptions
from igniter_opt.solvers.formulations import patterns
from igniter_opt.solvers.formulations.compact import CompactOptions
from igniter_opt.solvers.formulations.compactdata import CompactFeatures
from igniter_opt.solvers.solve import solve

SIZES = (4, 8, 12, 16, 24, 32)
LARGE = (64, 100)


def run_size(n: int, seeds: list[int], limit: float, threads: int,
             features: CompactFeatures = CompactFeatures()) -> dict:
    """Solve every seed of one size with every solver; summary statistics."""
    rows = {"greedy": [], "milp": [], "patterns": []}
    gaps, proved, beats, comparable = [], 0, 0, 0
    for seed in seeds:
        inst = random_instance(n, seed)
        opts = SolveOptions(time_limit=limit, threads=threads)
        milp_opts = CompactOptions(time_limit=limit, threads=threads, features=features)
        g = solve(inst, "greedy")
        start = time.perf_counter()
        m = solve(inst, "milp", options=opts, solver_options=milp_opts)
        m_sec = time.perf_counter() - start
        if not m.feasible:
            sys.exit(f"n={n} seed={seed}: milp plan does not verify: {m.message}")
        rows["greedy"].append((g.solve_seconds, g.num_gpus))
        rows["milp"].append((m_sec, m.num_gpus))
        gaps.append(m.gap or 0.0)
        proved += m.status == "optimal"
        if g.feasible:
            comparable += 1
            beats += m.num_gpus < g.num_gpus
        if n <= patterns.LIMIT:
            start = time.perf_counter()
            p = solve(inst, "patterns", options=opts)
            rows["patterns"].append((time.perf_counter() - start, p.num_gpus))
            if p.status == "optimal" and m.status == "optimal" and p.num_gpus != m.num_gpus:
                sys.exit(f"n={n} seed={seed}: milp {m.num_gpus} != patterns {p.num_gpus} GPUs")
    med = {k: (statistics.median(t for t, _ in v), statistics.median(g for _, g in v)) if v else None
           for k, v in rows.items()}
    return {"n": n, "count": len(seeds), "med": med, "gap_med": statistics.median(gaps),
            "gap_max": max(gaps), "proved": proved, "beats": beats, "comparable": comparable}


def table(results: list[dict], title: str) -> Table:
    t = Table(title=title)
    for col in ("n", "inst", "greedy GPUs", "greedy s", "milp GPUs", "milp s", "milp proved",
                "milp gap med/max", "milp < greedy", "patterns GPUs", "patterns s"):
        t.add_column(col, justify="right")
    for r in results:
        pat = r["med"]["patterns"]
        t.add_row(str(r["n"]), str(r["count"]), f"{r['med']['greedy'][1]:g}", f"{r['med']['greedy'][0]:.3f}",
                  f"{r['med']['milp'][1]:g}", f"{r['med']['milp'][0]:.2f}", f"{r['proved']}/{r['count']}",
                  f"{r['gap_med']:.1%} / {r['gap_max']:.1%}", f"{r['beats']}/{r['comparable']}",
                  "-" if pat is None else f"{pat[1]:g}", "-" if pat is None else f"{pat[0]:.2f}")
    return t


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default=",".join(map(str, SIZES)), help="comma-separated workload counts")
    ap.add_argument("--seeds", type=int, default=3, help="instances per size (seeds 0..k-1)")
    ap.add_argument("--time-limit", type=float, default=60.0, help="seconds per exact solve")
    ap.add_argument("--threads", type=int, default=1, help="HiGHS threads")
    ap.add_argument("--large", action="store_true", help="also 64 and 100 workloads (60 s limit)")
    ap.add_argument("--ablate", choices=sorted(f.name for f in fields(CompactFeatures)), action="append", default=[],
                    help="switch a milp strengthening off (repeatable)")
    args = ap.parse_args(argv)
    features = CompactFeatures(**{feature: False for feature in args.ablate})  # a variant, passed in
    sizes = [int(s) for s in args.sizes.split(",") if s] + (list(LARGE) if args.large else [])
    console = Console(width=150)
    results = []
    for n in sizes:
        results.append(run_size(n, list(range(args.seeds)), args.time_limit, args.threads, features))
        console.print(f"n={n} done", style="dim")
    off = f", off: {','.join(args.ablate)}" if args.ablate else ""
    console.print(table(results, f"random_instance, seeds 0..{args.seeds - 1}, limit {args.time_limit:g} s, "
                                 f"{args.threads} thread(s){off}"))


if __name__ == "__main__":
    main()
