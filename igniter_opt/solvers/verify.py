"""Verify a plan against the performance model: every solver's plan passes through here.

A plan is feasible when on every GPU the shares are positive multiples of the unit summing to at
most 100, and every workload's predicted latency is within half its SLO and its predicted
throughput covers its rate. The predicted fields of the plan are filled from the model.
At a robustness margin m the limits are (1 - m/100) SLO/2 and (1 + m/100) rate
(igniter_opt.solvers.margin, the same limits every solver uses).
Over a mixed fleet (igniter_opt.solvers.fleet.Fleet) each GPU is predicted with its type's
profile, and a type used more often than its count is a problem.

All GPUs of one profile are predicted in one vector call (model.predict_gpus), so a plan of
10,000 workloads verifies in a fraction of a second.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import replace

import numpy as np

from igniter_opt.data.errors import InputError
from igniter_opt.data.plan import GpuPlan, Plan
from igniter_opt.model import Profile, check_colocation
from igniter_opt.model.predict import predict_gpus
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
    InputError naming `origin` and the field (model.check_colocation): an unknown model, a batch
    outside the profile's fitted range, a share below its unit, shares of one GPU summing past
    100%, a prediction that is not positive and finite. With a Fleet, each GPU is predicted with its
    type's profile (a GPU of no or an unknown type is an InputError).
    """
    margin = check_margin(plan.margin_pct if margin_pct is None else margin_pct)
    checked = replace(plan, gpus=[replace(g, workloads=[replace(w) for w in g.workloads])
                                  for g in plan.gpus])  # a deep copy of what verify fills in
    checked.margin_pct = margin
    problems: list[str] = []
    where = origin or f"plan {plan.instance!r}"
    groups: dict[int, tuple[Profile, list[int]]] = {}
    for j, gpu in enumerate(checked.gpus):
        prof = profile if isinstance(profile, Profile) else \
            profile.profile_of(gpu.gpu_type, where, f"gpus[{j}].gpu_type")
        if not gpu.workloads:
            problems.append(f"GPU {j}: no workloads")
            continue
        ws = gpu.workloads
        check_colocation(prof, [w.model for w in ws], [w.batch for w in ws], [w.resource_pct for w in ws],
                         _Labels(where, j), f"{where}: field gpus[{j}].workloads")  # type: ignore[arg-type]
        groups.setdefault(id(prof), (prof, []))[1].append(j)
    for prof, indices in groups.values():
        problems += _predict_all(prof, checked.gpus, indices, margin, where)
    problems.sort(key=_gpu_of)  # in GPU order, whatever the profiles (a stable sort)
    if isinstance(profile, Fleet):
        problems += _availability(profile, checked)
        checked.cost = profile.cost(checked)
    checked.feasible = not problems and plan.status != "infeasible" and bool(checked.gpus)
    return checked, problems


def _gpu_of(problem: str) -> int:
    head = problem.split(":", 1)[0]
    return int(head[4:]) if head.startswith("GPU ") and head[4:].isdigit() else -1


class _Labels:
    """The labels check_colocation names a workload by, made only when one is needed."""

    def __init__(self, origin: str, j: int) -> None:
        self.origin, self.j = origin, j

    def __iter__(self) -> Iterator[str]:
        i = 0
        while True:
            yield f"{self.origin}: field gpus[{self.j}].workloads[{i}]"
            i += 1


def _predict_all(profile: Profile, gpus: list[GpuPlan], indices: list[int], margin: float,
                 origin: str) -> list[str]:
    """Predict the GPUs `indices` (all of one profile) at once, fill the predicted fields, list the problems."""
    unit = profile.hardware.unit_pct
    ws = [w for j in indices for w in gpus[j].workloads]
    where = [(j, i) for j in indices for i in range(len(gpus[j].workloads))]
    if not ws:
        return []
    local = {j: k for k, j in enumerate(indices)}
    pred = predict_gpus(profile, [w.model for w in ws], [w.batch for w in ws], [w.resource_pct for w in ws],
                        [local[j] for j, _ in where])
    ok = (np.isfinite(pred.latency_ms) & np.isfinite(pred.throughput_rps) & (pred.latency_ms > 0)
          & (pred.throughput_rps > 0))
    if not ok.all():
        k = int(np.argmin(ok))
        j, i = where[k]
        raise InputError(f"{origin}: field gpus[{j}].workloads[{i}]: profile {profile.name!r} predicts latency "
                         f"{pred.latency_ms[k]:.4g} ms and throughput {pred.throughput_rps[k]:.4g} req/s here: "
                         f"outside where its coefficients hold (clock {np.asarray(pred.frequency_mhz)[local[j]]:.4g}"
                         f" MHz)")
    slo_half = np.array([latency_limit_ms(w.slo_ms, margin) for w in ws])
    rates = np.array([rate_target_rps(w.rate_rps, margin) for w in ws])
    slo_text = f"(1 - {margin:g}%) SLO/2" if margin else "SLO/2"
    rate_text = f"(1 + {margin:g}%) rate" if margin else "rate"
    latency_ok = (pred.latency_ms <= slo_half * (1 + TOLERANCE)).tolist()
    rate_ok = (pred.throughput_rps >= rates * (1 - TOLERANCE)).tolist()
    latency, throughput = pred.latency_ms.tolist(), pred.throughput_rps.tolist()
    problems = []
    for k, (w, (j, _)) in enumerate(zip(ws, where)):
        if not on_unit_grid(w.resource_pct, unit):
            problems.append(f"GPU {j}: {w.name}: share {w.resource_pct:g}% is not a multiple of {unit:g}%")
        w.predicted_latency_ms = latency[k]
        w.predicted_throughput_rps = throughput[k]
        w.meets_slo = bool(latency_ok[k] and rate_ok[k])
        if not latency_ok[k]:
            problems.append(f"GPU {j}: {w.name}: predicted latency {latency[k]:.3f} ms > "
                            f"{slo_text} = {slo_half[k]:g} ms")
        if not rate_ok[k]:
            problems.append(f"GPU {j}: {w.name}: predicted throughput {throughput[k]:.1f} req/s "
                            f"< {rate_text} {rates[k]:g} req/s")
    return problems


def _availability(fleet: Fleet, plan: Plan) -> list[str]:
    """A type used on more GPUs than the fleet has."""
    used = [0] * len(fleet.types)
    for g in plan.gpus:
        used[fleet.index(g.gpu_type)] += 1
    return [f"type {t.name}: {n} GPU(s) used, {t.count} available" for t, n in zip(fleet.types, used)
            if t.count is not None and n > t.count]
