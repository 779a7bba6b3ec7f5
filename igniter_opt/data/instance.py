"""Instances: the inference workloads to provision (model, latency SLO, request rate).

JSON: {"name", "profile": "v100" | path, "batch_policy": "paper" | "joint" (optional),
"workloads": [{"name", "model", "slo_ms", "rate_rps"}]}. Validation errors name the file,
the field and the value.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from igniter_opt.data.io import read_json, write_json
from igniter_opt.data.schema import InstanceSpec, parse

BATCH_POLICIES = ("paper", "joint")


@dataclass(frozen=True)
class Workload:
    """One inference service: a DNN with a latency SLO (ms) at a request rate (req/s)."""

    name: str
    model: str
    slo_ms: float
    rate_rps: float


@dataclass(frozen=True)
class Instance:
    """A provisioning problem: workloads plus the GPU profile they run on."""

    name: str
    profile: str
    workloads: tuple[Workload, ...]
    batch_policy: str = "paper"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "profile": self.profile, "batch_policy": self.batch_policy,
                "workloads": [asdict(w) for w in self.workloads]}

    def save(self, path: str | Path) -> None:
        write_json(path, self.to_dict())

    @classmethod
    def from_dict(cls, data: Any, origin: str = "<instance>") -> Instance:
        """Validate and build an instance; errors say `origin: field F: problem, got V`."""
        spec = parse(InstanceSpec, data, origin, what="an instance")
        workloads = tuple(Workload(w.name, w.model, w.slo_ms, w.rate_rps) for w in spec.workloads)
        return cls(name=spec.name, profile=spec.profile, workloads=workloads, batch_policy=spec.batch_policy)


def load_instance(path: str | Path) -> Instance:
    """Load and validate an instance file (its fields; a relative profile path is taken from the
    file's folder). Whether its models are in its profile is the model's check:
    `igniter_opt.model.instances.load_checked_instance` does both."""
    inst = Instance.from_dict(read_json(path, "an instance file"), origin=str(path))
    if inst.profile.endswith(".json") and not Path(inst.profile).is_absolute():
        candidate = Path(path).parent / inst.profile
        if candidate.is_file():
            inst = Instance(inst.name, str(candidate), inst.workloads, inst.batch_policy)
    return inst
