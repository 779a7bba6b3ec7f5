"""Verify a plan against the performance model: every solver's plan passes through here.

A plan is feasible when on every GPU the shares are positive multiples of the unit summing to at
most 100, and every workload's predicted latency is within half its SLO and its predicted
throughput covers its rate. The predicted fields of the plan are filled from the model.
"""

from __future__ import annotations

import copy
import math

import numpy as np

from igniter_opt.data.plan import GpuPlan, Plan
from igniter_opt.model import Profile, predict

# Floating-point slack for comparisons (solvers work on the same model, so this is only noise).
TOLERANCE = 1e-9


def on_unit_grid(share: float, unit: float) -> bool:
    """Is the share a positive multiple of the unit (up to float noise)?"""
    steps = share / unit
    return share > 0 and math.isclose(steps, round(steps), abs_tol=1e-6)


def verify(plan: Plan, profile: Profile) -> tuple[Plan, list[str]]:
    """Return a copy of the plan with predictions filled in, and the list of problems found.

    The copy's `feasible` is True exactly when there are no problems and the solver did not
    report the instance infeasible.
    """
    checked = copy.deepcopy(plan)
    problems: list[str] = []
    unit = profile.hardware.unit_pct
    for j, gpu in enumerate(checked.gpus):
        if not gpu.workloads:
            problems.append(f"GPU {j}: no workloads")
            continue
        for w in gpu.workloads:
            profile.model(w.model)
            if not on_unit_grid(w.resource_pct, unit):
                problems.append(f"GPU {j}: {w.name}: share {w.resource_pct:g}% is not a multiple of {unit:g}%")
        if gpu.total_share > 100 + 1e-6:
            problems.append(f"GPU {j}: shares sum to {gpu.total_share:g}% > 100%")
        problems += _predict_gpu(profile, gpu, j)
    checked.feasible = not problems and plan.status != "infeasible" and bool(checked.gpus)
    return checked, problems


def _predict_gpu(profile: Profile, gpu: GpuPlan, j: int) -> list[str]:
    ws = gpu.workloads
    pred = predict(profile, [w.model for w in ws], [w.batch for w in ws], [w.resource_pct for w in ws])
    slo_half = np.array([w.slo_ms / 2 for w in ws])
    rates = np.array([w.rate_rps for w in ws])
    latency_ok = pred.latency_ms <= slo_half * (1 + TOLERANCE)
    rate_ok = pred.throughput_rps >= rates * (1 - TOLERANCE)
    problems = []
    for i, w in enumerate(ws):
        w.predicted_latency_ms = float(pred.latency_ms[i])
        w.predicted_throughput_rps = float(pred.throughput_rps[i])
        w.meets_slo = bool(latency_ok[i] and rate_ok[i])
        if not latency_ok[i]:
            problems.append(f"GPU {j}: {w.name}: predicted latency {pred.latency_ms[i]:.3f} ms > "
                            f"SLO/2 = {slo_half[i]:g} ms")
        if not rate_ok[i]:
            problems.append(f"GPU {j}: {w.name}: predicted throughput {pred.throughput_rps[i]:.1f} req/s "
                            f"< rate {rates[i]:g} req/s")
    return problems
