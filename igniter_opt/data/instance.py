"""Instances: the inference workloads to provision (model, latency SLO, request rate).

JSON: {"name", "profile": "v100" | path, "batch_policy": "paper" | "joint" (optional),
"workloads": [{"name", "model", "slo_ms", "rate_rps"}]}. Validation errors name the file,
the field and the value.

A mixed fleet (docs/fleets.md) replaces "profile" by "fleet": [{"type", "profile", "count"
(optional, absent = unlimited), "price_per_hour" (optional; all types or none)}]. An instance with
"profile" alone is a fleet of one type, unlimited and unpriced: every solver runs as before.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from igniter_opt.data.errors import InputError
from igniter_opt.data.io import read_json, write_json
from igniter_opt.data.schema import GpuTypeSpec, InstanceSpec, parse

BATCH_POLICIES = ("paper", "joint")


@dataclass(frozen=True)
class Workload:
    """One inference service: a DNN with a latency SLO (ms) at a request rate (req/s)."""

    name: str
    model: str
    slo_ms: float
    rate_rps: float


@dataclass(frozen=True)
class GpuType:
    """One GPU type of a fleet: its profile (a bundled name or a path), how many are available
    (None: unlimited) and its price per hour (None: unpriced, the objective counts GPUs)."""

    name: str
    profile: str
    count: int | None = None
    price_per_hour: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.name, "profile": self.profile}
        if self.count is not None:
            out["count"] = self.count
        if self.price_per_hour is not None:
            out["price_per_hour"] = self.price_per_hour
        return out


@dataclass(frozen=True)
class Instance:
    """A provisioning problem: workloads plus the GPU profile they run on (or a fleet of types:
    then `profile` is the first type's, for readers that know one profile only)."""

    name: str
    profile: str
    workloads: tuple[Workload, ...]
    batch_policy: str = "paper"
    fleet: tuple[GpuType, ...] | None = None

    @property
    def mixed(self) -> bool:
        """Does the fleet need the fleet solvers: several types, a price or an availability limit?
        (A fleet of one unlimited, unpriced type is the single-profile problem.)"""
        if self.fleet is None:
            return False
        only = self.fleet[0]
        return len(self.fleet) > 1 or only.count is not None or only.price_per_hour is not None

    def gpu_types(self) -> tuple[GpuType, ...]:
        """The fleet, or the single profile as one unlimited, unpriced type named like it."""
        if self.fleet is not None:
            return self.fleet
        return (GpuType(Path(self.profile).stem if self.profile.endswith(".json") else self.profile,
                        self.profile),)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "profile": self.profile, "batch_policy": self.batch_policy}
        if self.fleet is not None:
            out["fleet"] = [t.to_dict() for t in self.fleet]
        out["workloads"] = [asdict(w) for w in self.workloads]
        return out

    def save(self, path: str | Path) -> None:
        write_json(path, self.to_dict())

    @classmethod
    def from_dict(cls, data: Any, origin: str = "<instance>") -> Instance:
        """Validate and build an instance; errors say `origin: field F: problem, got V`."""
        spec = parse(InstanceSpec, data, origin, what="an instance")
        workloads = tuple(Workload(w.name, w.model, w.slo_ms, w.rate_rps) for w in spec.workloads)
        fleet = None if spec.fleet is None else tuple(
            GpuType(t.type, t.profile, t.count, t.price_per_hour) for t in spec.fleet)
        profile = spec.profile if fleet is None else fleet[0].profile
        assert profile is not None  # InstanceSpec.check: a profile or a fleet
        return cls(name=spec.name, profile=profile, workloads=workloads, batch_policy=spec.batch_policy,
                   fleet=fleet)


def parse_fleet(items: Any, origin: str = "<fleet>") -> tuple[GpuType, ...]:
    """A fleet's list of types as recorded in a plan ("fleet"), validated like an instance's."""
    if not isinstance(items, list) or not items:
        raise InputError(f"{origin}: field fleet: must be a non-empty list of GPU types")
    specs = [parse(GpuTypeSpec, t, origin, prefix=f"fleet[{k}]") for k, t in enumerate(items)]
    return tuple(GpuType(t.type, t.profile, t.count, t.price_per_hour) for t in specs)


def load_instance(path: str | Path) -> Instance:
    """Load and validate an instance file (its fields; a relative profile path, also a fleet type's,
    is taken from the file's folder). Whether its models are in its profiles is the model's check:
    `igniter_opt.model.instances.load_checked_instance` does both."""
    inst = Instance.from_dict(read_json(path, "an instance file"), origin=str(path))
    if inst.fleet is not None:
        fleet = tuple(replace(t, profile=_relative(path, t.profile)) for t in inst.fleet)
        return replace(inst, profile=fleet[0].profile, fleet=fleet)
    if inst.profile.endswith(".json") and not Path(inst.profile).is_absolute():
        candidate = Path(path).parent / inst.profile
        if candidate.is_file():
            inst = Instance(inst.name, str(candidate), inst.workloads, inst.batch_policy)
    return inst


def _relative(path: str | Path, profile: str) -> str:
    """A relative profile path taken from the instance file's folder (when that file exists)."""
    if profile.endswith(".json") and not Path(profile).is_absolute():
        candidate = Path(path).parent / profile
        if candidate.is_file():
            return str(candidate)
    return profile
