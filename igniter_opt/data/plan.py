"""Plans: which workloads share each GPU, with batch size and MPS share, plus the solver's proof.

JSON (docs/model.md, "Formats"): {"instance", "solver", "profile", "status", "num_gpus", "lower_bound",
"solve_seconds", "feasible", "gpus": [{"workloads": [{"name", "model", "batch", "resource_pct",
"rate_rps", "slo_ms", "predicted_latency_ms", "predicted_throughput_rps", "meets_slo"}]}]}
plus "gap", "message" and "margin_pct" (the robustness margin, %, the plan was solved for, or in
`verify`'s output checked at; optional, 0 when absent, so older plans still load).
The predicted fields are filled by `verify`, never by a solver.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from igniter_opt.data.errors import InputError
from igniter_opt.data.instance import read_json

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
    """The workloads co-located on one GPU."""

    workloads: list[PlacedWorkload] = field(default_factory=list)

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

    @property
    def num_gpus(self) -> int:
        return len(self.gpus)

    @property
    def total_share(self) -> float:
        return sum(g.total_share for g in self.gpus)

    def workloads(self) -> list[PlacedWorkload]:
        return [w for g in self.gpus for w in g.workloads]

    def to_dict(self) -> dict[str, Any]:
        return {
            "instance": self.instance, "solver": self.solver, "profile": self.profile,
            "status": self.status, "margin_pct": self.margin_pct, "num_gpus": self.num_gpus,
            "lower_bound": self.lower_bound,
            "gap": self.gap, "solve_seconds": self.solve_seconds, "feasible": self.feasible,
            "message": self.message,
            "gpus": [{"workloads": [asdict(w) for w in g.workloads]} for g in self.gpus],
        }

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def from_dict(cls, data: Any, origin: str = "<plan>") -> Plan:
        if not isinstance(data, dict):
            raise InputError(f"{origin}: a plan must be a JSON object")
        for key in ("instance", "solver", "profile", "status", "gpus"):
            if key not in data:
                raise InputError(f"{origin}: field {key}: missing")
        if data["status"] not in STATUSES:
            raise InputError(f"{origin}: field status: must be one of {STATUSES}, got {data['status']!r}")
        if not isinstance(data["gpus"], list):
            raise InputError(f"{origin}: field gpus: must be a list, got {data['gpus']!r}")
        gpus = [GpuPlan([_placed(w, f"gpus[{j}].workloads[{i}]", origin)
                         for i, w in enumerate(_workload_list(g, j, origin))])
                for j, g in enumerate(data["gpus"])]
        return cls(
            instance=str(data["instance"]), solver=str(data["solver"]), profile=str(data["profile"]),
            status=data["status"], gpus=gpus, lower_bound=data.get("lower_bound"),
            gap=data.get("gap"), solve_seconds=float(data.get("solve_seconds", 0.0)),
            feasible=bool(data.get("feasible", False)), message=str(data.get("message", "")),
            margin_pct=_margin(data.get("margin_pct", 0.0), origin),
        )


def _margin(value: Any, origin: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 100:
        raise InputError(f"{origin}: field margin_pct: must be a number of percent in [0, 100), got {value!r}")
    return float(value)


def _workload_list(gpu: Any, j: int, origin: str) -> list:
    if not isinstance(gpu, dict) or not isinstance(gpu.get("workloads"), list):
        raise InputError(f"{origin}: field gpus[{j}].workloads: must be a list")
    return gpu["workloads"]


_NUMERIC = {"batch": int, "resource_pct": float, "rate_rps": float, "slo_ms": float}


def _placed(item: Any, where: str, origin: str) -> PlacedWorkload:
    if not isinstance(item, dict):
        raise InputError(f"{origin}: field {where}: must be an object")
    known = {f.name for f in fields(PlacedWorkload)}
    values = {k: v for k, v in item.items() if k in known}
    for key in ("name", "model", *_NUMERIC):
        if key not in values:
            raise InputError(f"{origin}: field {where}.{key}: missing")
    for key, kind in _NUMERIC.items():
        value = values[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise InputError(f"{origin}: field {where}.{key}: must be a number > 0, got {value!r}")
        if kind is int and value != int(value):
            raise InputError(f"{origin}: field {where}.{key}: must be an integer, got {value!r}")
        values[key] = kind(value)
    return PlacedWorkload(**values)


def load_plan(path: str | Path) -> Plan:
    """Load a plan file, validating its structure."""
    return Plan.from_dict(read_json(path), origin=str(path))
