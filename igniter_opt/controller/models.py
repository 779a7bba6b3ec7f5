"""The service's request and response bodies (pydantic), and the rules every field must meet.

A workload name becomes a directory and a Triton model name, so it is one path component of
[A-Za-z0-9][A-Za-z0-9_-]{0,63}: no dot, no separator, bounded. Rates and SLOs are finite, positive
and capped (a typo like 1e12 req/s is refused here, not by the planner). Unknown fields are refused.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
MAX_RATE_RPS = 100_000.0
MAX_SLO_MS = 60_000.0
MAX_BATCH_ADD = 256          # workloads in one POST
MAX_MARGIN_PCT = 50.0

Name = Annotated[str, Field(pattern=NAME_PATTERN, description="[A-Za-z0-9][A-Za-z0-9_-]{0,63}: "
                                                              "becomes a directory and a Triton model name")]
Rate = Annotated[float, Field(gt=0, le=MAX_RATE_RPS, allow_inf_nan=False, description="requests/s")]
Slo = Annotated[float, Field(gt=0, le=MAX_SLO_MS, allow_inf_nan=False, description="latency SLO, ms")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WorkloadIn(Strict):
    """One workload to admit: a DNN with a latency SLO at a request rate."""

    name: Name
    model: str = Field(min_length=1, max_length=64)
    slo_ms: Slo
    rate_rps: Rate
    margin_pct: float | None = Field(None, ge=0, le=MAX_MARGIN_PCT, allow_inf_nan=False,
                                     description="robustness margin %: latency <= (1 - m) SLO/2, throughput >= "
                                                 "(1 + m) rate (default: the controller's --margin)")


class WorkloadsIn(Strict):
    """Several workloads admitted together (all or none)."""

    workloads: list[WorkloadIn] = Field(min_length=1, max_length=MAX_BATCH_ADD)

    @model_validator(mode="after")
    def _unique(self) -> WorkloadsIn:
        seen: set[str] = set()
        for w in self.workloads:
            if w.name in seen:
                raise ValueError(f"duplicate workload name {w.name!r} in the request")
            seen.add(w.name)
        return self


class WorkloadChange(Strict):
    """A change of a running workload's rate and/or SLO."""

    rate_rps: Rate | None = None
    slo_ms: Slo | None = None

    @model_validator(mode="after")
    def _something(self) -> WorkloadChange:
        if self.rate_rps is None and self.slo_ms is None:
            raise ValueError("give rate_rps and/or slo_ms")
        return self


Ms = Annotated[float | None, Field(ge=0, le=3_600_000, allow_inf_nan=False, description="ms")]


class WindowIn(Strict):
    """One client-side window of one workload (what `igniter client measure` posts every step)."""

    workload: Name
    window_s: float = Field(gt=0, le=3600, allow_inf_nan=False)
    completed: int = Field(ge=0)
    throughput_rps: float = Field(ge=0, le=10 * MAX_RATE_RPS, allow_inf_nan=False)
    p50_ms: Ms = None
    p99_ms: Ms = None
    violation_pct: float = Field(ge=0, le=100, allow_inf_nan=False)
    errors: int = Field(ge=0)
    unix_s: float = Field(gt=0, allow_inf_nan=False, description="the window's end, unix time")


class WindowsIn(Strict):
    """Client-side windows for the service's live metrics."""

    windows: list[WindowIn] = Field(min_length=1, max_length=1000)


class EndpointOut(BaseModel):
    """Where a workload is served; `version` grows whenever the endpoint changes."""

    workload: str
    model_name: str
    grpc_url: str | None
    http_url: str | None
    version: int
    server_id: str | None = None


class WorkloadOut(BaseModel):
    """A workload as placed: GPU slot, MPS share, batch, the model's prediction, its endpoint."""

    name: str
    model: str
    slo_ms: float
    rate_rps: float
    margin_pct: float
    gpu: int
    share_pct: float
    batch: int
    predicted_latency_ms: float | None
    predicted_throughput_rps: float | None
    endpoint: EndpointOut | None


class ErrorOut(BaseModel):
    """Every error: the field at fault (or the resource that is short) and why."""

    field: str
    reason: str


class PlanOut(BaseModel):
    """The current plan: GPUs used, status and bound of the GPU count, and the change objective."""

    policy: str
    fleet_gpus: int
    num_gpus: int
    status: str
    lower_bound: int | None
    feasible: bool
    version: int
    objectives: dict[str, Any]
    gpus: list[dict[str, Any]]
    cost: float | None = None  # price per hour of the GPUs in use (a priced --fleet); GPUs then carry gpu_type
    emulated: bool = False                # the servers are emulated GPUs (--device emulate): not GPU figures
    emulation: dict[str, Any] | None = None
