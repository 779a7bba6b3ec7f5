"""How many requests/s the open-loop load generator sustains on loopback (not a timed test).

Starts tritonserver (local launcher, CPU) with a trivial model ("identity": 4 floats in, 4 out,
dynamic batching) for each of N workloads, offers a total rate split evenly over them for a few
seconds, and prints offered vs measured throughput, latency percentiles and errors.

    python benchmarks/bench_loadgen.py --rate 6000 --workloads 2 --duration 5
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from igniter_opt.deploy.loadgen import LoadOptions, Target, run_load
from igniter_opt.deploy.models import spec_for
from igniter_opt.deploy.session import DeployOptions, deploy
from igniter_opt.plan import GpuPlan, Plan, PlacedWorkload


def trivial_plan(total_rps: float, workloads: int, batch: int, slo_ms: float) -> Plan:
    ws = [PlacedWorkload(name=f"trivial{i}", model="identity", batch=batch, resource_pct=100.0 / workloads,
                         rate_rps=total_rps / workloads, slo_ms=slo_ms) for i in range(workloads)]
    return Plan(instance="bench-loadgen", solver="none", profile="none", status="feasible", gpus=[GpuPlan(ws)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=float, default=6000.0, help="total offered requests/s")
    ap.add_argument("--workloads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--slo-ms", type=float, default=50.0)
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--processes", type=int, default=None, help="load worker processes (default: CPUs)")
    ap.add_argument("--per-process", type=float, default=2000.0, help="max req/s one worker drives")
    ap.add_argument("--distribution", default="constant")
    ap.add_argument("--cache", action="store_true",
                    help="serve from Triton's response cache (C++ only: the python backend leaves the loop)")
    args = ap.parse_args()

    plan = trivial_plan(args.rate, args.workloads, args.batch, args.slo_ms)
    opts = LoadOptions(duration_s=args.duration, warmup_s=args.warmup, distribution=args.distribution,
                       processes=args.processes, max_rps_per_process=args.per_process)
    with tempfile.TemporaryDirectory(prefix="igniter-bench-") as tmp:
        with deploy(plan, DeployOptions(backend="local", run_dir=Path(tmp), device="cpu", mps=False,
                                       response_cache=args.cache)) as dep:
            by_name = {e.name: e for e in dep.endpoints}
            targets = [Target(w.name, by_name[w.name].model_name, by_name[w.name].grpc_url, w.rate_rps,
                              w.slo_ms, spec_for(w.model).input_dims) for w in plan.workloads()]
            t0 = time.monotonic()
            results = run_load(targets, opts)
            wall = time.monotonic() - t0
    table = Table(title=f"open-loop load generator on loopback: {args.rate:g} req/s offered, "
                        f"{args.workloads} server(s), {args.distribution}, {args.duration:g} s window"
                        f"{', response cache' if args.cache else ''}")
    for col in ("workload", "offered req/s", "measured req/s", "p50 ms", "p95 ms", "p99 ms", "max ms", "errors"):
        table.add_column(col, justify="left" if col == "workload" else "right")
    for r in results:
        table.add_row(r.name, f"{r.rate_rps:.0f}", f"{r.measured_throughput_rps:.1f}", f"{r.p50_ms or 0:.2f}",
                      f"{r.p95_ms or 0:.2f}", f"{r.p99_ms or 0:.2f}", f"{r.max_ms or 0:.2f}", str(r.errors))
    total = sum(r.measured_throughput_rps for r in results)
    table.add_section()
    table.add_row("total", f"{args.rate:.0f}", f"{total:.1f}", "", "", "", "", str(sum(r.errors for r in results)))
    Console(width=120).print(table)
    print(f"load run wall time {wall:.1f} s (worker start-up, warm-up, window, drain)")


if __name__ == "__main__":
    main()
