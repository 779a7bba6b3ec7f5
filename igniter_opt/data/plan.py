"""Plans: which workloads share each GPU, with batch size and MPS share, plus the solver's proof.

JSON (docs/model.md, "Formats"): {"instance", "solver", "profile", "status", "num_gpus", "lower_bound",
"solve_seconds", "feasible", "gpus": [{"workloads": [{"name", "model", "batch", "resource_pct",
"rate_rps", "slo_ms", "predicted_latency_ms", "predicted_throughput_rps", "meets_slo"}]}]}
plus "gap", "message" and "margin_pct" (the robustness margin, %, the plan was solved for, or in
`verify`'s output checked at; optional, 0 when absent, so older plans still load), and "space"
when some workload needs more than one GPU: the space of replica splits the status and bound
hold over ("fixed split": the sizing's; or every split on a stated rate grid). Absent when no
workload is split (the status then holds over every plan).
A plan for a mixed fleet (docs/fleets.md) also has "gpu_type" on each GPU and, when the fleet has
prices, "cost" (price per hour of its GPUs) and "cost_bound" (the proven least cost), and "fleet"
(the instance's types, so that `verify` needs no instance); all optional.
The predicted fields are filled by `verify`, never by a solver.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from igniter_opt.data.io import read_json, write_json
from igniter_opt.data.schema import PlanSpec, fail, parse

# What the solver proved (the verify verdict is the separate boolean `feasible`):
# optimal: the GPU count meets a proven lower bound; heuristic: a heuristic's plan, no proof;
# feasible: a plan with no proof from elsewhere (accepted on input); infeasible: no plan can exist;
# time_limit: the time limit ended the search (incumbent and bound so far); interrupted: Ctrl-C did.
STATUSES = ("optimal", "heuristic", "feasible", "infeasible", "time_limit", "interrupted")


@dataclass
class PlacedWorkload:
    """One workload (or replica) on a GPU: its configuration and, once verified, its prediction."""

    name: str
    model: str
    batch: int
    resource_pct: float
    rate_rps: float
    slo_ms: float
    predicted_latency_ms: float | None = None
    predicted_throughput_rps: float | None = None
    meets_slo: bool | None = None


@dataclass
class GpuPlan:
    """The workloads co-located on one GPU (of a fleet's type `gpu_type`; None: the one profile)."""

    workloads: list[PlacedWorkload] = field(default_factory=list)
    gpu_type: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"workloads": [asdict(w) for w in self.workloads]}
        if self.gpu_type is not None:
            out["gpu_type"] = self.gpu_type
        return out

    @property
    def total_share(self) -> float:
        return sum(w.resource_pct for w in self.workloads)


@dataclass
class Plan:
    """A solver's answer: GPUs and their workloads, the status and bound it proved, and timing."""

    instance: str
    solver: str
    profile: str
    status: str
    gpus: list[GpuPlan] = field(default_factory=list)
    lower_bound: int | None = None
    gap: float | None = None
    solve_seconds: float = 0.0
    feasible: bool = False
    message: str = ""
    margin_pct: float = 0.0  # latency <= (1 - m/100) SLO/2 and throughput >= (1 + m/100) rate
    cost: float | None = None  # price per hour of the plan's GPUs (a fleet with prices)
    cost_bound: float | None = None  # the least cost proven (a fleet with prices)
    fleet: list[dict[str, Any]] | None = None  # the fleet's types as in the instance (a fleet plan)
    space: str = ""  # the replica splits the status holds over ("" when no workload is split)

    @property
    def num_gpus(self) -> int:
        return len(self.gpus)

    @property
    def total_share(self) -> float:
        return sum(g.total_share for g in self.gpus)

    def workloads(self) -> list[PlacedWorkload]:
        return [w for g in self.gpus for w in g.workloads]

    def to_dict(self) -> dict[str, Any]:
        space = {"space": self.space} if self.space else {}
        return {
            "instance": self.instance, "solver": self.solver, "profile": self.profile,
            "status": self.status, "margin_pct": self.margin_pct, "num_gpus": self.num_gpus,
            "lower_bound": self.lower_bound,
            "gap": self.gap, "solve_seconds": self.solve_seconds, "feasible": self.feasible,
            "message": self.message, **space,
            **({} if self.cost is None else {"cost": self.cost}),
            **({} if self.cost_bound is None else {"cost_bound": self.cost_bound}),
            **({} if self.fleet is None else {"fleet": self.fleet}),
            "gpus": [g.to_dict() for g in self.gpus],
        }

    def save(self, path: str | Path) -> None:
        write_json(path, self.to_dict())

    @classmethod
    def from_dict(cls, data: Any, origin: str = "<plan>") -> Plan:
        """Validate and build a plan (data/schema.py: PlanSpec); errors name file, field and value."""
        spec = parse(PlanSpec, data, origin, what="a plan")
        if spec.status not in STATUSES:
            raise fail(origin, "status", f"must be one of {STATUSES}", spec.status)
        gpus = [GpuPlan([PlacedWorkload(**w.model_dump()) for w in g.workloads], g.gpu_type) for g in spec.gpus]
        return cls(instance=spec.instance, solver=spec.solver, profile=spec.profile, status=spec.status,
                   gpus=gpus, lower_bound=spec.lower_bound, gap=spec.gap, solve_seconds=spec.solve_seconds,
                   feasible=spec.feasible, message=spec.message, margin_pct=spec.margin_pct,
                   cost=spec.cost, cost_bound=spec.cost_bound, space=spec.space,
                   fleet=None if spec.fleet is None else [t.model_dump(exclude_none=True) for t in spec.fleet])

    def gpu_types(self) -> list[str | None]:
        """Each GPU's type, in order."""
        return [g.gpu_type for g in self.gpus]


def load_plan(path: str | Path) -> Plan:
    """Load a plan file, validating its structure."""
    return Plan.from_dict(read_json(path, "a plan file"), origin=str(path))
