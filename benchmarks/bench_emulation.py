"""Does the emulated GPU reproduce the plan? Measured p50 vs predicted T_inf + batching wait (not a timed test).

Solves an instance (greedy by default), deploys the plan on the emulated device (`--device
emulate`: real tritonserver, stand-ins that sleep the model's predicted latency), slowed down
`--time-scale` times so two CPU cores carry it (rates / F, SLOs and service times x F), drives it
with constant arrivals and prints, per workload: the predicted T_inf at the plan's batch, the batch
the dynamic batcher forms, the median request's batching wait, the expected p50 (service time of
that batch + wait), the measured p50 and their difference. Figures are in the dilated milliseconds.

    PYTHONPATH=. python benchmarks/bench_emulation.py instances/paper/motivation.json --time-scale 20
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from igniter_opt.data.instance import load_instance
from igniter_opt.deploy.emulation import batch_wait_ms, dilate
from igniter_opt.deploy.load.generator import LoadOptions
from igniter_opt.deploy.measure import measure
from igniter_opt.deploy.repository import queue_delay_us
from igniter_opt.deploy.session import deploy, read_endpoints
from igniter_opt.deploy.types import DeployOptions
from igniter_opt.solvers.solve import solve


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("instance", type=Path)
    ap.add_argument("--solver", default="greedy")
    ap.add_argument("--time-scale", type=float, default=20.0)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=2.0)
    args = ap.parse_args()
    plan = dilate(solve(load_instance(args.instance), args.solver), args.time_scale)
    with tempfile.TemporaryDirectory(prefix="igniter-emu-") as tmp:
        options = DeployOptions(backend="local", run_dir=Path(tmp), device="emulate", time_scale=args.time_scale)
        with deploy(plan, options):
            endpoints = read_endpoints(tmp)
            report, _ = measure(plan, endpoints, LoadOptions(duration_s=args.duration, warmup_s=args.warmup))
    expected = report["emulation"]["expected_p50_ms"]
    table = Table(title=f"{plan.instance} ({args.solver}) on the EMULATED GPU, time scale {args.time_scale:g}: "
                        f"rates / {args.time_scale:g}, ms x {args.time_scale:g}")
    for col in ("workload", "rate req/s", "batch", "share %", "pred. T_inf ms", "batch formed", "median wait ms",
                "expected p50 ms", "measured p50 ms", "diff %", "p99 ms", "SLO ms", "errors"):
        table.add_column(col, justify="left" if col == "workload" else "right")
    rows = {r["name"]: r for r in report["workloads"]}
    for w in plan.workloads():
        n, wait = batch_wait_ms(w, queue_delay_us(w.slo_ms, w.batch, w.rate_rps) / 1000.0)
        r, e = rows[w.name], expected[w.name]
        table.add_row(w.name, f"{w.rate_rps:g}", str(w.batch), f"{w.resource_pct:g}", f"{w.predicted_latency_ms:.1f}",
                      str(n), f"{wait:.1f}", f"{e:.1f}", f"{r['p50_ms']:.1f}", f"{100 * (r['p50_ms'] / e - 1):+.1f}",
                      f"{r['p99_ms']:.1f}", f"{w.slo_ms:g}", str(r["errors"]))
    Console(width=200).print(table)


if __name__ == "__main__":
    main()
