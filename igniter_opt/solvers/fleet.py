"""Mixed GPU fleets: each type's profile, availability and price; sizing and costs over types.

A `Fleet` maps GPU type -> profile (plus count and price). `verify` predicts each GPU of a plan
with its type's profile. The objective (docs/fleets.md) is the least total price per hour when the
fleet has prices, else the least GPU count; availability per type is a hard limit; ties go to
fewer GPUs. Solvers work on integer column costs (`Costs`): the price in units of the prices'
common step (4 decimals; 1 per GPU when unpriced), so a bound may be rounded up. The tie towards
fewer GPUs is broken after the cost is proven, among the plans the search generated (exact) or
enumerated (patterns): the GPU count is not part of the proof.

Sizing over a fleet (`size_fleet`): a workload that one GPU of some type carries is one row of
the master, with a Demand per type (its batch and least share under that type's profile; not
servable on a type where one GPU cannot carry it). A workload no single GPU of any type carries is
split into full-GPU replicas on the type of the least price per replica rate (the fewest GPUs when
unpriced), by the single-profile rule of `sizing.split_workload`; its rest is a row like any
other. The split is fixed before the search, as in the single-type solvers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from igniter_opt.data.errors import InfeasibleError, InputError
from igniter_opt.data.instance import GpuType, Instance, Workload
from igniter_opt.data.plan import Plan
from igniter_opt.model import Profile, load_profile
from igniter_opt.model.predict import Array
from igniter_opt.solvers.sizing import (
    Demand,
    _demand,
    _fits_one_gpu,
    max_rate_alone,
    split_workload,
)

PRICE_DECIMALS = 4  # prices are compared in steps of 1e-4 per hour


@dataclass(frozen=True)
class FleetType:
    """One GPU type with its loaded profile."""

    name: str
    profile: Profile
    count: int | None = None  # None: unlimited
    price: float | None = None  # per hour; None: unpriced

    @property
    def spec(self) -> GpuType:
        return GpuType(self.name, self.profile.name, self.count, self.price)


@dataclass(frozen=True)
class Fleet:
    """GPU types by name, in the instance's order."""

    types: tuple[FleetType, ...]
    sources: tuple[str, ...] = ()  # the profile names or paths as the instance gave them

    @classmethod
    def single(cls, profile: Profile, name: str | None = None) -> Fleet:
        return cls((FleetType(name or profile.name, profile),), (profile.name,))

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.types]

    @property
    def priced(self) -> bool:
        return all(t.price is not None for t in self.types)

    def index(self, gpu_type: str | None, origin: str = "plan", field: str = "gpu_type") -> int:
        """Index of a plan GPU's type; a plan without types is valid only for a one-type fleet."""
        if gpu_type is None:
            if len(self.types) == 1:
                return 0
            raise InputError(f"{origin}: field {field}: missing (the fleet has types {', '.join(self.names)})")
        for k, t in enumerate(self.types):
            if t.name == gpu_type:
                return k
        raise InputError(f"{origin}: field {field}: unknown GPU type {gpu_type!r} "
                         f"(the fleet has {', '.join(self.names)})")

    def profile_of(self, gpu_type: str | None, origin: str = "plan", field: str = "gpu_type") -> Profile:
        return self.types[self.index(gpu_type, origin, field)].profile

    def cost(self, plan: Plan) -> float | None:
        """Price per hour of a plan's GPUs (None when the fleet has no prices)."""
        if not self.priced:
            return None
        return round(sum(float(self.types[self.index(g.gpu_type)].price or 0.0) for g in plan.gpus), 6)

    def to_specs(self) -> list[dict[str, Any]]:
        """The fleet as instance JSON (profiles as given), recorded in a fleet plan."""
        out = []
        for t, src in zip(self.types, self.sources or [t.profile.name for t in self.types]):
            out.append(GpuType(t.name, src, t.count, t.price).to_dict())
        return out


def load_fleet(types: tuple[GpuType, ...] | list[GpuType], origin: str = "instance") -> Fleet:
    """Load every type's profile; errors name the field."""
    loaded = []
    for k, t in enumerate(types):
        try:
            loaded.append(FleetType(t.name, load_profile(t.profile), t.count, t.price_per_hour))
        except InputError as exc:
            raise InputError(f"{origin}: field fleet[{k}].profile: {exc}") from None
    return Fleet(tuple(loaded), tuple(t.profile for t in types))


def plan_fleet(plan: Plan, origin: str = "plan") -> Fleet | None:
    """The fleet a plan records (its "fleet" field), profiles loaded; None for a one-profile plan."""
    if plan.fleet is None:
        return None
    from igniter_opt.data.instance import parse_fleet

    return load_fleet(parse_fleet(plan.fleet, origin), origin)


def instance_fleet(instance: Instance) -> Fleet:
    """The instance's fleet with profiles loaded, models checked against each type's profile."""
    fleet = load_fleet(instance.gpu_types(), instance.name)
    for k, t in enumerate(fleet.types):
        for i, w in enumerate(instance.workloads):
            if w.model not in t.profile.models:
                raise InputError(f"{instance.name}: field fleet[{k}].profile: profile {t.profile.name!r} of type "
                                 f"{t.name!r} has no model {w.model!r} (used by workloads[{i}])")
    return fleet


# -- integer costs -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Costs:
    """Integer cost per GPU of each type (price units; 1 per GPU when unpriced)."""

    per_gpu: tuple[int, ...]
    step: float  # price per hour of one unit (0 when unpriced: the cost is the GPU count)

    def price_bound(self, bound: int) -> float:
        """The least price per hour a plan of integer cost >= bound has."""
        return bound * self.step


def integer_costs(fleet: Fleet) -> Costs:
    """Costs of the fleet's types: prices rounded to PRICE_DECIMALS, over their common divisor."""
    if not fleet.priced:
        return Costs(tuple(1 for _ in fleet.types), 0.0)
    nums = [round(float(t.price or 0.0) * 10**PRICE_DECIMALS) for t in fleet.types]
    g = math.gcd(*nums) or 1
    return Costs(tuple(n // g for n in nums), g / 10**PRICE_DECIMALS)


# -- sizing --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FleetDemands:
    """One row per workload; per type, how the row is realized on that type: its shareable demand
    (the whole workload, or the rest of a split) and the full-GPU replicas that come with it."""

    per_type: list[list[Demand]]  # per type, the row's shareable demand (same names across types)
    servable: Array  # (types, rows) bool: the type can realize the row
    replicas: list[list[list[Demand]]]  # per type, per row: the full-GPU replicas on that type

    @property
    def rows(self) -> int:
        return len(self.per_type[0]) if self.per_type else 0

    def extra(self, k: int, r: int) -> int:
        """Full GPUs of type k that realizing row r on type k takes besides its shared part."""
        return len(self.replicas[k][r])


def _realize(profile: Profile, w: Workload, margin_pct: float) -> tuple[Demand, list[Demand]] | None:
    """A workload on one type: whole when one GPU carries it, else the single-type split (full-GPU
    replicas plus a rest; a split with no rest keeps its last replica as the shareable part); None
    when no GPU of the type serves it at all."""
    if _fits_one_gpu(profile, w, w.rate_rps, margin_pct):
        return _demand(profile, w, w.name, w.rate_rps, None, margin_pct=margin_pct), []
    if max_rate_alone(profile, w.model, w.slo_ms, w.rate_rps, margin_pct) <= 0:
        return None
    split = split_workload(profile, w, margin_pct)
    full = [d for d in split if d.full_gpu]
    rest = [d for d in split if not d.full_gpu]
    if rest:
        return rest[0], full
    last = full.pop()
    return _demand(profile, w, last.name, last.rate_rps, w.name, margin_pct=margin_pct), full


def size_fleet(instance: Instance, fleet: Fleet, margin_pct: float = 0.0) -> FleetDemands:
    """Every workload's realization on every type (see the module docstring)."""
    types = fleet.types
    per_type: list[list[Demand]] = [[] for _ in types]
    servable: list[list[bool]] = [[] for _ in types]
    replicas: list[list[list[Demand]]] = [[] for _ in types]
    for w in instance.workloads:
        found = [_realize(t.profile, w, margin_pct) for t in types]
        if all(f is None for f in found):
            at = f" with a {margin_pct:g}% margin" if margin_pct else ""
            raise InfeasibleError(f"workload {w.name!r} ({w.model}, SLO {w.slo_ms:g} ms): no GPU type of the "
                                  f"fleet ({', '.join(fleet.names)}) can serve it under its SLO{at}, even alone "
                                  f"at 100% and batch 1")
        anyone = next(f for f in found if f is not None)
        for k, f in enumerate(found):
            shared, full = f if f is not None else anyone
            per_type[k].append(shared)
            servable[k].append(f is not None)
            replicas[k].append(full if f is not None else [])
    demands = FleetDemands(per_type, np.array(servable, dtype=bool).reshape(len(types), -1), replicas)
    check_availability(fleet, demands)
    return demands


def check_availability(fleet: Fleet, demands: FleetDemands) -> None:
    """Infeasible, with the reason, when the fleet is too small for what is already certain: a row
    that no type with enough GPUs can realize, or more GPUs than the whole fleet has by the volume
    of least shares (plus replicas)."""
    count = [math.inf if t.count is None else t.count for t in fleet.types]
    types = range(len(fleet.types))
    for r in range(demands.rows):
        need = {k: 1 + demands.extra(k, r) for k in types if demands.servable[k, r]}
        if not any(need[k] <= count[k] for k in need):
            name = demands.per_type[0][r].name
            k = min(need, key=lambda k: need[k] - count[k])
            raise InfeasibleError(f"workload {name!r} needs {need[k]} GPU(s) of type {fleet.types[k].name!r}, "
                                  f"{int(count[k])} available (short by {need[k] - int(count[k])}; no other type "
                                  f"has enough either)")
    total = sum(count)
    if math.isfinite(total) and demands.rows:
        volume = sum(min(demands.extra(k, r) + float(demands.per_type[k][r].r_lower) / 100 for k in types
                         if demands.servable[k, r]) for r in range(demands.rows))
        need_all = math.ceil(volume - 1e-9)
        if need_all > total:
            raise InfeasibleError(f"the fleet is too small: the workloads' least shares and replicas need at least "
                                  f"{need_all} GPU(s), the fleet has {int(total)} (short by {need_all - int(total)})")
