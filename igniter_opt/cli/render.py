"""Rich tables for people; the JSON twins are the dataclasses' to_dict()."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from igniter_opt.data.plan import Plan
from igniter_opt.solvers.margin import latency_limit_ms
from igniter_opt.solvers.sizing import FIXED_SPLIT


def _fmt(value, spec: str = ".3f") -> str:
    return "-" if value is None else format(value, spec)


# What each status proves, in the header's words (the solver's claim, never the verify verdict).
PROOF = {"optimal": "proven optimal", "heuristic": "heuristic (no proof)",
         "feasible": "no proof", "time_limit": "time limit (not proven optimal)",
         "interrupted": "interrupted (not proven optimal)", "infeasible": "proven infeasible"}


def verdict(plan: Plan) -> str:
    """What verify found, in words that cannot be read as the solver's status."""
    if not plan.gpus:
        return "no plan"
    return "verify: every SLO met" if plan.feasible else "verify: BREAKS THE MODEL"


def plan_header(plan: Plan) -> str:
    """`instance - solver: N GPU(s), <what the solver proved>, lower bound B, verify: <verdict>`."""
    proof = PROOF.get(plan.status, plan.status)
    if plan.gap is not None and plan.status in ("time_limit", "interrupted"):
        proof = f"{proof[:-1]}, gap {plan.gap:.1%})"
    if plan.space and plan.status in ("optimal", "time_limit", "interrupted"):  # what the proof covers
        proof += " for the sizing's split" if plan.space == FIXED_SPLIT else f" over {plan.space}"
    margin = f"margin {plan.margin_pct:g}%, " if plan.margin_pct else ""
    if plan.cost is not None:  # a priced fleet: the objective is the cost, the bound is on it
        return (f"{plan.instance} - {plan.solver}: {plan.num_gpus} GPU(s) {_types(plan)}, "
                f"cost {plan.cost:g}/h, {proof}, cost bound {_fmt(plan.cost_bound, 'g')}/h, {margin}{verdict(plan)}")
    types = f" {_types(plan)}" if any(g.gpu_type for g in plan.gpus) else ""
    return (f"{plan.instance} - {plan.solver}: {plan.num_gpus} GPU(s){types}, {proof}, "
            f"lower bound {_fmt(plan.lower_bound, 'd')}, {margin}{verdict(plan)}")


def _types(plan: Plan) -> str:
    """`(2 v100 + 1 t4)`: GPUs per type, in first-use order."""
    counts: dict[str, int] = {}
    for g in plan.gpus:
        counts[g.gpu_type or "?"] = counts.get(g.gpu_type or "?", 0) + 1
    return "(" + " + ".join(f"{n} {t}" for t, n in counts.items()) + ")"


def plan_table(plan: Plan) -> Table:
    """One row per placed workload, grouped by GPU, predicted vs SLO."""
    title = plan_header(plan)
    table = Table(title=title)
    limit = "SLO/2 ms" if not plan.margin_pct else f"{100 - plan.margin_pct:g}% SLO/2 ms"
    typed = any(g.gpu_type for g in plan.gpus)
    for col in ("GPU", "workload", "model", "batch", "share %", "rate req/s", limit,
                "pred. latency ms", "pred. req/s", "meets SLO"):
        table.add_column(col, justify="right" if col not in ("workload", "model") else "left")
    for j, gpu in enumerate(plan.gpus):
        for w in gpu.workloads:
            ok = Text("yes", style="green") if w.meets_slo else Text("NO", style="red")
            table.add_row(f"{j} {gpu.gpu_type}" if typed else str(j), w.name, w.model, str(w.batch),
                          f"{w.resource_pct:g}", f"{w.rate_rps:g}",
                          f"{latency_limit_ms(w.slo_ms, plan.margin_pct):g}", _fmt(w.predicted_latency_ms),
                          _fmt(w.predicted_throughput_rps, ".1f"), ok)
        table.add_section()
    return table
