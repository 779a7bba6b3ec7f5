"""Policy `igniter` over a mixed fleet (`igniter serve --fleet FILE`, issue 21; docs/fleets.md).

The fleet file is a JSON list of GPU types, {"type", "profile", "count", "price_per_hour"},
validated as an instance's "fleet" (data/schema.py: GpuTypeSpec; a relative profile path is taken
from the file's folder); every type needs a count, since the service's GPU slots are finite. The
slots are numbered in the file's order: type 0's `count` slots first, then type 1's, ...

An arrival is placed by the fleet greedy's rule (solvers/heuristics/fleetgreedy.py) on the
running plan: on every GPU in use of a type that can serve it (at its least share on that type,
co-runners raised as in placement.py), the one with the least added cost (added share x the type's
price; unpriced: x 1) wins, first on ties; a new GPU is of the type with the least cost of the
share that serves the workload alone (price x r_lower), among the types with a slot left, its
first free slot. The plan records each slot's type (PlanInfo.gpu_types) and its cost per hour.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from igniter_opt.controller.placement import Unplaceable, demand, gpu_shares, gpus_of
from igniter_opt.controller.records import Placement, Plan, PlanInfo, Spec
from igniter_opt.data.errors import InputError
from igniter_opt.data.instance import _relative, parse_fleet
from igniter_opt.data.io import read_json
from igniter_opt.model import Profile
from igniter_opt.solvers.fleet import Fleet, load_fleet
from igniter_opt.solvers.sizing import FULL_SHARE, Demand


@dataclass(frozen=True)
class ServiceFleet:
    """A fleet whose every type has a count: its slots' types (slot -> type index)."""

    fleet: Fleet
    slot_types: tuple[int, ...]

    @property
    def gpus(self) -> int:
        return len(self.slot_types)

    @property
    def models(self) -> set[str]:
        """The models some type's profile knows."""
        return {m for t in self.fleet.types for m in t.profile.models}

    def type_name(self, slot: int) -> str:
        return self.fleet.types[self.slot_types[slot]].name

    def profile(self, slot: int) -> Profile:
        return self.fleet.types[self.slot_types[slot]].profile

    def price(self, k: int) -> float:
        """Type k's price per hour (1 when the fleet is unpriced: then costs count GPUs)."""
        return float(self.fleet.types[k].price or 0.0) if self.fleet.priced else 1.0

    def cost(self, plan: Plan) -> float | None:
        """Price per hour of the slots in use (None when the fleet has no prices)."""
        if not self.fleet.priced:
            return None
        return round(sum(self.price(self.slot_types[g]) for g in gpus_of(plan)), 6)


def load_service_fleet(path: str | Path) -> ServiceFleet:
    """Read and validate a fleet file; InputError naming the file, the field and the value."""
    origin = str(path)
    types = parse_fleet(read_json(path, "a fleet file"), origin)
    names = [t.name for t in types]
    for k, t in enumerate(types):
        if names.index(t.name) != k:
            raise InputError(f"{origin}: field fleet[{k}].type: GPU type {t.name!r} is named twice")
        if t.count is None:
            raise InputError(f"{origin}: field fleet[{k}].count: missing (the service needs how many GPUs of "
                             f"type {t.name!r} it may use)")
    priced = [t.price_per_hour is not None for t in types]
    if any(priced) and not all(priced):
        raise InputError(f"{origin}: field fleet[{priced.index(False)}].price_per_hour: missing: give every type "
                         f"a price, or none (the objective is then the GPU count)")
    types = tuple(replace(t, profile=_relative(path, t.profile)) for t in types)
    fleet = load_fleet(types, origin)
    slots = tuple(k for k, t in enumerate(types) for _ in range(t.count or 0))
    if not slots:
        raise InputError(f"{origin}: field fleet: every count is 0 (the service needs at least one GPU)")
    return ServiceFleet(fleet, slots)


def _demand_on(profile: Profile, spec: Spec) -> tuple[Demand | None, Unplaceable | None]:
    """The spec's demand on a type, or why the type cannot serve it."""
    if spec.model not in profile.models:
        return None, Unplaceable("model", f"profile {profile.name!r} has no model {spec.model!r}")
    try:
        return demand(profile, spec), None
    except Unplaceable as exc:
        return None, exc


def place_one_fleet(sf: ServiceFleet, plan: Plan, spec: Spec) -> Plan:
    """The plan with `spec` placed by the fleet greedy's rule (a new dict; `plan` is not changed)."""
    types = range(len(sf.fleet.types))
    sized = [_demand_on(t.profile, spec) for t in sf.fleet.types]
    if all(d is None for d, _ in sized):
        first = next(exc for _, exc in sized if exc is not None)
        raise Unplaceable(first.field, f"no GPU type of the fleet ({', '.join(sf.fleet.names)}) can serve it: "
                                       f"{first.reason}")
    best: tuple[float, int, np.ndarray] | None = None
    for slot, members in gpus_of(plan).items():
        d = sized[sf.slot_types[slot]][0]
        if d is None:
            continue
        shares = gpu_shares(sf.profile(slot), [m.spec for m in members] + [spec],
                            [m.batch for m in members] + [d.batch], [m.share_pct for m in members] + [d.r_lower])
        if shares is None:
            continue
        added = sf.price(sf.slot_types[slot]) * (float(shares.sum()) - sum(m.share_pct for m in members))
        if best is None or added < best[0] - 1e-9:
            best = (added, slot, shares)
    out = dict(plan)
    if best is not None:
        _, slot, shares = best
        for m, s in zip(gpus_of(plan)[slot], shares[:-1]):
            out[m.name] = Placement(m.spec, slot, float(s), m.batch)
        d = sized[sf.slot_types[slot]][0]
        assert d is not None  # only slots of a type that serves it were tried
        out[spec.name] = Placement(spec, slot, float(shares[-1]), d.batch)
        return out
    used = {p.gpu for p in plan.values()}
    free = {k: [g for g, t in enumerate(sf.slot_types) if t == k and g not in used] for k in types}
    alone: list[tuple[float, int, np.ndarray]] = []
    for k in types:
        d = sized[k][0]
        if d is None or not free[k]:
            continue
        shares = gpu_shares(sf.fleet.types[k].profile, [spec], [d.batch], [d.r_lower])
        if shares is not None:
            alone.append((sf.price(k) * d.r_lower / FULL_SHARE, k, shares))
    if not alone:
        servable = [sf.fleet.types[k].name for k in types if sized[k][0] is not None]
        raise Unplaceable("gpus", f"no room for {spec.name!r} ({spec.model}): no GPU in use fits it and no GPU of "
                                  f"type(s) {', '.join(servable)} is left (the fleet: "
                                  + ", ".join(f"{t.name} {t.count}" for t in sf.fleet.types) + ")")
    _, k, shares = min(alone, key=lambda a: (a[0], a[1]))
    d = sized[k][0]
    assert d is not None
    out[spec.name] = Placement(spec, free[k][0], float(shares[0]), d.batch)
    return out


def place_igniter_fleet(sf: ServiceFleet, plan: Plan, arrivals: list[Spec]) -> Plan:
    """Place several arrivals one by one, by the cost of their least share on their cheapest type,
    largest first (the fleet greedy's order)."""
    def need(spec: Spec) -> float:
        costs = [sf.price(k) * d.r_lower for k, t in enumerate(sf.fleet.types)
                 for d in [_demand_on(t.profile, spec)[0]] if d is not None]
        return min(costs, default=math.inf)

    for spec in sorted(arrivals, key=lambda s: -need(s)):
        plan = place_one_fleet(sf, plan, spec)
    return plan


def with_types(info: PlanInfo, plan: Plan, sf: ServiceFleet | None) -> PlanInfo:
    """The plan info with the slots' GPU types and the plan's cost per hour (a fleet service)."""
    if sf is None:
        return info
    return replace(info, gpu_types={str(g): sf.type_name(g) for g in gpus_of(plan)}, cost=sf.cost(plan))


def check_adopted(sf: ServiceFleet, info: PlanInfo, plan: Plan, origin: str) -> None:
    """A restart must give the slots in use the types the stored plan recorded (InputError)."""
    for g in sorted(gpus_of(plan)):
        if g >= sf.gpus:
            raise InputError(f"--fleet: the plan in {origin} uses GPU slot {g}; the fleet has {sf.gpus} slot(s)")
        recorded = info.gpu_types.get(str(g))
        if recorded != sf.type_name(g):
            raise InputError(f"--fleet: the plan in {origin} has GPU slot {g} of type {recorded!r}; "
                             f"this fleet makes it {sf.type_name(g)!r}")
