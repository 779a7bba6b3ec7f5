"""Placement policy `igniter`: the reference greedy applied to one arrival on the running plan.

The arriving workload is tried on every GPU in use at its least share r_lower, co-runners'
shares raised one unit at a time while any breaks its limits (the reference raises on latency;
here throughput counts too, as in the exact solvers' fixed point, so every plan verifies); the GPU
needing the least added share wins (first on ties). A new GPU slot is opened only when none fits
and the fleet has one left; otherwise `Unplaceable` names what is short. Shares are never lowered
and nothing else moves: a running workload keeps its server.

Shared with the `exact` policy (replan.py): the demands of specs, the verify of a plan, the
plan's conversion to and from igniter_opt.data.plan.Plan.
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np

from igniter_opt.controller.records import Placement, Plan, Spec
from igniter_opt.data.errors import InfeasibleError, InputError
from igniter_opt.data.instance import Workload
from igniter_opt.data.plan import GpuPlan, PlacedWorkload
from igniter_opt.data.plan import Plan as SolverPlan
from igniter_opt.model import Profile
from igniter_opt.solvers.colocation import raise_violators
from igniter_opt.solvers.fleet import Fleet
from igniter_opt.solvers.margin import latency_limit_ms, rate_target_rps
from igniter_opt.solvers.sizing import FULL_SHARE, Demand, split_workload
from igniter_opt.solvers.verify import verify


class ServiceFleet(Protocol):
    """GPU slots of several types (fleetplace.ServiceFleet): what the plan's conversion needs."""

    @property
    def fleet(self) -> Fleet: ...

    def type_name(self, slot: int) -> str: ...


class Unplaceable(Exception):
    """A change the fleet cannot take (HTTP 409): `field` is the short resource or the field at fault."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


_CACHE: dict[tuple[int, Spec], Demand] = {}


def _demand(profile: Profile, spec: Spec) -> Demand:
    try:
        demands = split_workload(profile, Workload(spec.name, spec.model, spec.slo_ms, spec.rate_rps),
                                 spec.margin_pct)
    except InfeasibleError as exc:
        raise Unplaceable("slo_ms", str(exc)) from None
    except InputError as exc:
        raise Unplaceable("rate_rps", str(exc)) from None
    if len(demands) > 1:
        raise Unplaceable("rate_rps", f"workload {spec.name!r}: {spec.rate_rps:g} req/s at SLO {spec.slo_ms:g} ms "
                                      f"needs more than one GPU ({len(demands)} replicas); the service places "
                                      f"each workload on one GPU")
    if not math.isfinite(demands[0].r_lower) or demands[0].r_lower > FULL_SHARE:
        raise Unplaceable("slo_ms", f"workload {spec.name!r}: no share of one GPU meets its SLO")
    return demands[0]


def demand(profile: Profile, spec: Spec) -> Demand:
    """The sized demand of a spec (cached: specs and profiles are immutable); Unplaceable when the
    workload needs more than one GPU or no GPU can serve it."""
    key = (id(profile), spec)
    if key not in _CACHE:
        if len(_CACHE) > 8192:
            _CACHE.clear()
        _CACHE[key] = _demand(profile, spec)
    return _CACHE[key]


def gpus_of(plan: Plan) -> dict[int, list[Placement]]:
    """The plan's GPU slots and their members (slots in order, members by name)."""
    out: dict[int, list[Placement]] = {}
    for p in sorted(plan.values(), key=lambda p: (p.gpu, p.name)):
        out.setdefault(p.gpu, []).append(p)
    return out


def gpu_shares(profile: Profile, specs: list[Spec], batches: list[int], start: list[float]) -> np.ndarray | None:
    """Least shares of these members on one GPU from `start` (raised while any breaks its latency
    or rate limit), or None when they do not fit in 100%."""
    if sum(start) > FULL_SHARE + 1e-9:
        return None
    demands = [demand(profile, s) for s in specs]
    shares = raise_violators(profile, demands, list(range(len(demands))), np.array(start, dtype=float),
                             batch=np.array(batches, dtype=float), throughput=True)
    return shares if shares.sum() <= FULL_SHARE + 1e-9 else None


def place_one(profile: Profile, fleet: int, plan: Plan, spec: Spec) -> Plan:
    """The plan with `spec` placed by the reference greedy (a new dict; `plan` is not changed)."""
    d = demand(profile, spec)
    best: tuple[float, int, np.ndarray] | None = None
    for slot, members in gpus_of(plan).items():
        start = [m.share_pct for m in members] + [d.r_lower]
        shares = gpu_shares(profile, [m.spec for m in members] + [spec], [m.batch for m in members] + [d.batch],
                            start)
        if shares is None:
            continue
        added = float(shares.sum()) - sum(m.share_pct for m in members)
        if best is None or added < best[0] - 1e-9:
            best = (added, slot, shares)
    out = dict(plan)
    if best is not None:
        _, slot, shares = best
        members = gpus_of(plan)[slot]
        for m, s in zip(members, shares[:-1]):
            out[m.name] = Placement(m.spec, slot, float(s), m.batch)
        out[spec.name] = Placement(spec, slot, float(shares[-1]), d.batch)
        return out
    used = {p.gpu for p in plan.values()}
    free = [g for g in range(fleet) if g not in used]
    if not free:
        raise Unplaceable("gpus", f"no room for {spec.name!r} ({spec.model}, needs at least {d.r_lower:g}% of a GPU "
                                  f"alone): all {fleet} GPUs of the fleet are in use and none fits it")
    shares = gpu_shares(profile, [spec], [d.batch], [d.r_lower])
    if shares is None:
        raise Unplaceable("slo_ms", f"workload {spec.name!r}: no share of one GPU meets its SLO and rate")
    out[spec.name] = Placement(spec, free[0], float(shares[0]), d.batch)
    return out


def place_igniter(profile: Profile, fleet: int, plan: Plan, arrivals: list[Spec]) -> Plan:
    """Place several arrivals one by one, largest least share first (the reference's order)."""
    order = sorted(arrivals, key=lambda s: -demand(profile, s).r_lower)
    for spec in order:
        plan = place_one(profile, fleet, plan, spec)
    return plan


def to_solver_plan(plan: Plan, profile: Profile, solver: str = "service",
                   fleet: ServiceFleet | None = None) -> SolverPlan:
    """The plan as igniter_opt's Plan (GPU slots in order, empty slots skipped; with a fleet, each
    GPU with its slot's type and the plan with the fleet)."""
    gpus = [GpuPlan([PlacedWorkload(p.name, p.spec.model, p.batch, p.share_pct, p.spec.rate_rps, p.spec.slo_ms)
                     for p in members], None if fleet is None else fleet.type_name(g))
            for g, members in gpus_of(plan).items()]
    return SolverPlan(instance="service", solver=solver, profile=profile.name, status="feasible", gpus=gpus,
                      fleet=None if fleet is None else fleet.fleet.to_specs())


def verified(plan: Plan, profile: Profile, fleet: ServiceFleet | None = None) -> Plan:
    """The plan with the model's predictions, after `verify` passed and every workload holds at
    its own margin; Unplaceable naming the problems otherwise (a plan that breaks an SLO or passes
    100% is never applied). With a fleet, each GPU is predicted with its slot's type's profile."""
    if not plan:
        return {}
    checked, problems = verify(to_solver_plan(plan, profile, fleet=fleet), profile if fleet is None else fleet.fleet)
    for w in checked.workloads():
        m = plan[w.name].spec.margin_pct
        if m and not problems and (w.predicted_latency_ms is None or w.predicted_throughput_rps is None or
                                   w.predicted_latency_ms > latency_limit_ms(w.slo_ms, m) * (1 + 1e-9) or
                                   w.predicted_throughput_rps < rate_target_rps(w.rate_rps, m) * (1 - 1e-9)):
            problems.append(f"{w.name}: does not hold at its {m:g}% margin")
    if problems:
        raise Unplaceable("plan", "the plan does not verify: " + "; ".join(problems))
    predicted = {w.name: w for w in checked.workloads()}
    return {n: Placement(p.spec, p.gpu, p.share_pct, p.batch, predicted[n].predicted_latency_ms,
                         predicted[n].predicted_throughput_rps) for n, p in plan.items()}
