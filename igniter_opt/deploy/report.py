"""The measurement report: JSON for scripts, a predicted-vs-measured table for people.

JSON: {"workloads": [{"name", "model", "rate_rps", "slo_ms", "measured_throughput_rps", "p50_ms",
"p95_ms", "p99_ms", "slo_violation_pct", "errors", "predicted_latency_ms"}], "gpu": {...} | null}.
"gpu" is null without NVML; otherwise {"devices": [{"index", "name", "max_sm_clock_mhz",
"power_limit_w", "memory_mib", "samples", "power_w", "sm_clock_mhz", "util_pct"}]} where the last
three are {"mean", "max", "min"} over the measurement.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.table import Table

from igniter_opt.data.io import write_json
from igniter_opt.data.plan import Plan
from igniter_opt.deploy.load.generator import WorkloadResult

KEYS = ("name", "model", "rate_rps", "slo_ms", "measured_throughput_rps", "p50_ms", "p95_ms", "p99_ms",
        "slo_violation_pct", "errors", "predicted_latency_ms", "predicted_throughput_rps")


def measurement_report(plan: Plan, results: list[WorkloadResult], gpu: dict[str, Any] | None) -> dict[str, Any]:
    """The report of one measurement (results in the plan's workload order or any order by name)."""
    by_name = {r.name: r for r in results}
    rows = []
    for w in plan.workloads():
        r = by_name[w.name]
        rows.append({"name": w.name, "model": w.model, "rate_rps": w.rate_rps, "slo_ms": w.slo_ms,
                     "measured_throughput_rps": r.measured_throughput_rps, "p50_ms": r.p50_ms,
                     "p95_ms": r.p95_ms, "p99_ms": r.p99_ms, "slo_violation_pct": r.slo_violation_pct,
                     "errors": r.errors, "predicted_latency_ms": w.predicted_latency_ms,
                     "predicted_throughput_rps": w.predicted_throughput_rps})
    return {"workloads": rows, "gpu": gpu}


def save_report(report: dict[str, Any], path: str | Path) -> None:
    write_json(path, report)


def _f(value: float | None, spec: str = ".2f") -> str:
    return "-" if value is None else format(value, spec)


def report_table(report: dict[str, Any], results: list[WorkloadResult] | None = None, title: str = "") -> Table:
    """Predicted vs measured, one row per workload."""
    max_ms = {r.name: r.max_ms for r in results or []}
    table = Table(title=title or "predicted vs measured")
    for col in ("workload", "model", "rate req/s", "pred. req/s", "measured req/s", "SLO ms", "pred. ms", "p50 ms",
                "p95 ms", "p99 ms", "max ms", "SLO viol. %", "errors"):
        table.add_column(col, justify="left" if col in ("workload", "model") else "right")
    for w in report["workloads"]:
        table.add_row(w["name"], w["model"], f"{w['rate_rps']:g}", _f(w.get("predicted_throughput_rps"), ".1f"),
                      _f(w["measured_throughput_rps"], ".1f"),
                      f"{w['slo_ms']:g}", _f(w["predicted_latency_ms"]), _f(w["p50_ms"]), _f(w["p95_ms"]),
                      _f(w["p99_ms"]), _f(max_ms.get(w["name"])), _f(w["slo_violation_pct"]),
                      str(w["errors"]))
    return table
