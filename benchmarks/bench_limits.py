"""How long solves take against their time limits: the speed figures the tests do not assert.

    python benchmarks/bench_limits.py              # every case once, each in a fresh process
    python benchmarks/bench_limits.py --repeats 3  # median and max of three

The tests only guard against hangs (a time limit honoured within a generous margin, an optimum
proven within a generous limit); the figures live here. Cases: a time limit cut short (exact on
100 mixed workloads at 3 s; milp on 64 random workloads at 0.01 s and 3 s; patterns enumerating
16 workloads at 0.15 s; milp and patterns on 14 joint workloads with batches up to 900 at 2 s, with
their peak traced memory) and the time to a proven optimum (exact on mixed instances of 20 to 40
workloads, the sizes of tests/test_exact_bnp.py). Each case runs in a fresh process and is solved
twice there: cold (imports, numba loading or compiling its kernels) and warm. Overrun = warm wall
seconds minus the limit.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import sys
import time
import tracemalloc
from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent

# (label, solver, instance, time limit, batch policy)
CASES = [
    ("mixed n=100 (cut short)", "exact", "mixed:100:0", 3.0, "paper"),
    ("random n=64 (cut short)", "milp", "random:64:0", 0.01, "paper"),
    ("random n=64 (cut short)", "milp", "random:64:0", 3.0, "paper"),
    ("random-n16-00 (cut short)", "patterns", "file:instances/random/random-n16-00.json", 0.15, "paper"),
    ("random-n16-00 (cut short)", "patterns", "file:instances/random/random-n16-00.json", 0.15, "joint"),
    ("14 joint, batches to 900", "milp", "bigjoint", 2.0, "joint"),
    ("14 joint, batches to 900", "patterns", "bigjoint", 2.0, "joint"),
    ("mixed n=20 (to optimal)", "exact", "mixed:20:0", 600.0, "paper"),
    ("mixed n=24 (to optimal)", "exact", "mixed:24:15", 600.0, "paper"),
    ("mixed n=40 (to optimal)", "exact", "mixed:40:12", 600.0, "paper"),
]


def _instance(spec: str) -> tuple[Any, Any]:
    """The case's Instance and Profile (imported here: the worker process builds them)."""
    from igniter_opt.bench.generate import mixed_instance, random_instance
    from igniter_opt.data.instance import Instance, Workload, load_instance
    from igniter_opt.model import load_profile

    v100 = load_profile("v100")
    kind, *rest = spec.split(":")
    if kind == "mixed":
        return mixed_instance(int(rest[0]), int(rest[1])), v100
    if kind == "random":
        return random_instance(int(rest[0]), int(rest[1])), v100
    if kind == "file":
        return load_instance(ROOT / rest[0]), v100
    # the joint batches of a profile fitted far beyond the bundled one's 32 (tests/test_honest.py)
    wide = replace(v100, fitted_range={"batch": (1, 10**6), "share_pct": (10, 100)})
    models = ("alexnet", "resnet50", "vgg19")
    return Instance("big-joint", "v100", tuple(Workload(f"w{i}", models[i % 3], 2000.0, 300.0 + 50 * i)
                                               for i in range(14)), "joint"), wide


def _one(case: tuple[str, str, str, float, str]) -> dict:
    """Solve one case twice in this (fresh) process: cold (imports, numba loading or compiling its
    kernels, HiGHS start-up) and warm; wall seconds, status, GPUs, peak traced MB of the warm one."""
    from igniter_opt.solvers.base import SolveOptions
    from igniter_opt.solvers.solve import solve

    _, solver, spec, limit, policy = case
    inst, profile = _instance(spec)
    options = SolveOptions(time_limit=limit, batch_policy=policy, force=True)
    start = time.perf_counter()
    solve(inst, solver, profile, options=options)
    cold = time.perf_counter() - start
    tracemalloc.start()
    start = time.perf_counter()
    plan = solve(inst, solver, profile, options=options)
    warm = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"cold": cold, "warm": warm, "status": plan.status, "gpus": plan.num_gpus, "peak_mb": peak / 2**20}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=1)
    args = ap.parse_args()
    ctx = mp.get_context("spawn")
    table = Table(title=f"solve time against the time limit ({args.repeats} run(s) each, fresh process; "
                        f"cold: the first solve of the process, warm: the second)")
    for col in ("case", "solver", "policy", "limit s", "status", "GPUs", "cold s (max)", "warm s (median)",
                "warm s (max)", "warm overrun s (max)", "peak MB"):
        table.add_column(col, justify="left" if col in ("case", "solver", "policy", "status") else "right")
    for case in CASES:
        runs = []
        for _ in range(args.repeats):
            with ctx.Pool(1) as pool:
                runs.append(pool.apply(_one, (case,)))
        label, solver, _, limit, policy = case
        warm = [r["warm"] for r in runs]
        to_optimal = limit >= 600
        table.add_row(label, solver, policy, f"{limit:g}", "/".join(sorted({r['status'] for r in runs})),
                      "/".join(sorted({str(r['gpus']) for r in runs})), f"{max(r['cold'] for r in runs):.2f}",
                      f"{statistics.median(warm):.2f}", f"{max(warm):.2f}",
                      "-" if to_optimal else f"{max(warm) - limit:+.2f}", f"{max(r['peak_mb'] for r in runs):.0f}")
        print(f"done: {label} {solver} {policy}", file=sys.stderr)
    Console(width=200).print(table)


if __name__ == "__main__":
    main()
