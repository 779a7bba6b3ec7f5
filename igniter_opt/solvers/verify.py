"""Verify a plan against the performance model: every solver's plan passes through here.

A plan is feasible when on every GPU the shares are positive multiples of the unit summing to at
most 100, and every workload's predicted latency is within half its SLO and its predicted
throughput covers its rate. The predicted fields of the plan are filled from the model.
At a robustness margin m the limits are (1 - m/100) SLO/2 and (1 + m/100) rate
(igniter_opt.solvers.margin, the same limits every solver uses).
Over a mixed fleet (igniter_opt.solvers.fleet.Fleet) each GPU is predicted with its type's
profile, and a type used more often than its count is a problem.
"""

from __future__ import annotations

import copy
import math

import numpy as np

from igniter_opt.data.plan import GpuPlan, Plan
from igniter_opt.model import Profile, predict_checked
from igniter_opt.solvers.fleet import Fleet
from igniter_opt.solvers.margin import check_margin, latency_limit_ms, rate_target_rps

# Floating-point slack for comparisons (solvers work on the same model, so this is only noise).
TOLERANCE = 1e-9


def on_unit_grid(share: float, unit: float) -> bool:
    """Is the share a positive multiple of the unit (up to float noise)?"""
    steps = share / unit
    return share > 0 and math.isclose(steps, round(steps), abs_tol=1e-6)


def verify(plan: Plan, profile: Profile | Fleet, margin_pct: float | None = None,
           origin: str = "") -> tuple[Plan, list[str]]:
    """Return a copy of the plan with predictions filled in, and the list of problems found.

    The copy's `feasible` is True exactly when there are no problems and the solver did not
    report the instance infeasible. The margin is the plan's own unless `margin_pct` is given;
    the copy records the margin it was checked at. What the model cannot judge is refused with an
    InputError naming `origin` and the field (model.predict_checked): an unknown model, a batch
    outside the profile's fitted range, shares of one GPU summing past 100%. With a Fleet, each GPU
    is predicted with its type's profile (a GPU of no or an unknown type is an InputError).
    """
    margin = check_margin(plan.margin_pct if margin_pct is None else margin_pct)
    checked = copy.deepcopy(plan)
    checked.margin_pct = margin
    problems: list[str] = []
    where = origin or f"plan {plan.instance!r}"
    for j, gpu in enumerate(checked.gpus):
        prof = profile if isinstance(profile, Profile) else \
            profile.profile_of(gpu.gpu_type, where, f"gpus[{j}].gpu_type")
        unit = prof.hardware.unit_pct
        if not gpu.workloads:
            problems.append(f"GPU {j}: no workloads")
            continue
        for w in gpu.workloads:
            if not on_unit_grid(w.resource_pct, unit):
                problems.append(f"GPU {j}: {w.name}: share {w.resource_pct:g}% is not a multiple of {unit:g}%")
        problems += _predict_gpu(prof, gpu, j, margin, where)
    if isinstance(profile, Fleet):
        problems += _availability(profile, checked)
        checked.cost = profile.cost(checked)
    checked.feasible = not problems and plan.status != "infeasible" and bool(checked.gpus)
    return checked, problems


def _predict_gpu(profile: Profile, gpu: GpuPlan, j: int, margin: float, origin: str) -> list[str]:
    ws = gpu.workloads
    pred = predict_checked(profile, [w.model for w in ws], [w.batch for w in ws], [w.resource_pct for w in ws],
                           [f"{origin}: field gpus[{j}].workloads[{i}]" for i in range(len(ws))],
                           f"{origin}: field gpus[{j}].workloads")
    slo_half = np.array([latency_limit_ms(w.slo_ms, margin) for w in ws])
    rates = np.array([rate_target_rps(w.rate_rps, margin) for w in ws])
    slo_text = f"(1 - {margin:g}%) SLO/2" if margin else "SLO/2"
    rate_text = f"(1 + {margin:g}%) rate" if margin else "rate"
    latency_ok = pred.latency_ms <= slo_half * (1 + TOLERANCE)
    rate_ok = pred.throughput_rps >= rates * (1 - TOLERANCE)
    problems = []
    for i, w in enumerate(ws):
        w.predicted_latency_ms = float(pred.latency_ms[i])
        w.predicted_throughput_rps = float(pred.throughput_rps[i])
        w.meets_slo = bool(latency_ok[i] and rate_ok[i])
        if not latency_ok[i]:
            problems.append(f"GPU {j}: {w.name}: predicted latency {pred.latency_ms[i]:.3f} ms > "
                            f"{slo_text} = {slo_half[i]:g} ms")
        if not rate_ok[i]:
            problems.append(f"GPU {j}: {w.name}: predicted throughput {pred.throughput_rps[i]:.1f} req/s "
                            f"< {rate_text} {rates[i]:g} req/s")
    return problems


def _availability(fleet: Fleet, plan: Plan) -> list[str]:
    """A type used on more GPUs than the fleet has."""
    used = [0] * len(fleet.types)
    for g in plan.gpus:
        used[fleet.index(g.gpu_type)] += 1
    return [f"type {t.name}: {n} GPU(s) used, {t.count} available" for t, n in zip(fleet.types, used)
            if t.count is not None and n > t.count]
