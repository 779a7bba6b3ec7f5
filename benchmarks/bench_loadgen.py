"""How many requests/s the open-loop load generator sustains on loopback (not a timed test).

Starts tritonserver (local launcher, CPU) with a trivial model ("identity": 4 floats in, 4 out,
dynamic batching; with --cache Triton's response cache answers repeated requests in C++, so the
python backend leaves the loop) for each of N workloads, then offers each total rate of --rates
split evenly over them, and prints offered vs measured throughput, latency percentiles and errors.
A rate counts as sustained when measured >= 95% of offered, no errors and p99 < 1 s.

    python benchmarks/bench_loadgen.py --rates 2000,3000,4000,5000,6000 --workloads 2 --cache
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from igniter_opt.data.plan import GpuPlan, PlacedWorkload, Plan
from igniter_opt.deploy.load.generator import LoadOptions, Target, WorkloadResult, run_load
from igniter_opt.deploy.models import spec_for
from igniter_opt.deploy.session import deploy
from igniter_opt.deploy.types import DeployOptions


def trivial_plan(total_rps: float, workloads: int, batch: int, slo_ms: float) -> Plan:
    ws = [PlacedWorkload(name=f"trivial{i}", model="identity", batch=batch, resource_pct=100.0 / workloads,
                         rate_rps=total_rps / workloads, slo_ms=slo_ms) for i in range(workloads)]
    return Plan(instance="bench-loadgen", solver="none", profile="none", status="feasible", gpus=[GpuPlan(ws)])


def sustained(results: list[WorkloadResult]) -> bool:
    return all(r.errors == 0 and r.measured_throughput_rps >= 0.95 * r.rate_rps and (r.p99_ms or 1e9) < 1000
               for r in results)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rates", default="2000,3000,4000,5000,6000", help="total offered req/s, comma-separated")
    ap.add_argument("--workloads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--slo-ms", type=float, default=10.0, help="sets the batcher's queue delay (SLO / 2 cap)")
    ap.add_argument("--duration", type=float, default=6.0)
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--processes", type=int, default=None, help="load worker processes (default: CPUs)")
    ap.add_argument("--per-process", type=float, default=3000.0, help="max req/s one worker drives")
    ap.add_argument("--distribution", default="constant")
    ap.add_argument("--cache", action="store_true", help="serve from Triton's response cache")
    args = ap.parse_args()
    rates = [float(r) for r in args.rates.split(",")]

    plan = trivial_plan(rates[0], args.workloads, args.batch, args.slo_ms)
    table = Table(title=f"open-loop load generator on loopback: {args.workloads} tritonserver(s), identity model"
                        f"{' + response cache' if args.cache else ''}, {args.distribution}, {args.duration:g} s "
                        f"window, {os.cpu_count()} CPUs")
    for col in ("offered req/s", "measured req/s", "p50 ms", "p99 ms", "max ms", "errors", "sustained", "wall s"):
        table.add_column(col, justify="right")
    with tempfile.TemporaryDirectory(prefix="igniter-bench-") as tmp:
        with deploy(plan, DeployOptions(backend="local", run_dir=Path(tmp), device="cpu", mps=False,
                                        response_cache=args.cache)) as dep:
            by_name = {e.name: e for e in dep.endpoints}
            for rate in rates:
                targets = [Target(w.name, by_name[w.name].model_name, by_name[w.name].grpc_url,
                                  rate / args.workloads, w.slo_ms, spec_for(w.model).input_dims)
                           for w in plan.workloads()]
                opts = LoadOptions(duration_s=args.duration, warmup_s=args.warmup, distribution=args.distribution,
                                   processes=args.processes, max_rps_per_process=args.per_process, drain_s=3.0)
                t0 = time.monotonic()
                results = run_load(targets, opts)
                wall = time.monotonic() - t0
                lat = [r for r in results if r.p50_ms is not None]
                table.add_row(f"{rate:.0f}", f"{sum(r.measured_throughput_rps for r in results):.1f}",
                              f"{max((r.p50_ms for r in lat), default=0):.2f}",
                              f"{max((r.p99_ms for r in lat), default=0):.2f}",
                              f"{max((r.max_ms for r in lat), default=0):.2f}", str(sum(r.errors for r in results)),
                              "yes" if sustained(results) else "NO", f"{wall:.1f}")
    Console(width=140).print(table)


if __name__ == "__main__":
    main()
