"""The controller's records: a workload's spec, its place in the plan, a server, an endpoint."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Spec:
    """What a client asked for: a DNN with a latency SLO (ms) at a rate (req/s)."""

    name: str
    model: str
    slo_ms: float
    rate_rps: float
    margin_pct: float = 0.0           # robustness margin: latency <= (1 - m) SLO/2, throughput >= (1 + m) rate


@dataclass(frozen=True)
class Placement:
    """A workload's place: GPU slot (0..fleet-1), MPS share, batch, and the model's prediction."""

    spec: Spec
    gpu: int
    share_pct: float
    batch: int
    predicted_latency_ms: float | None = None
    predicted_throughput_rps: float | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    def same_config(self, other: Placement) -> bool:
        """Same server configuration: GPU, share, batch, model, SLO and rate (the queue delay)."""
        return (self.gpu, self.share_pct, self.batch, self.spec) == (other.gpu, other.share_pct, other.batch,
                                                                    other.spec)

    def same_place(self, other: Placement) -> bool:
        """Unchanged in the re-plan objective's sense: GPU, share and batch."""
        return (self.gpu, self.share_pct, self.batch) == (other.gpu, other.share_pct, other.batch)


Plan = dict[str, Placement]


@dataclass
class PlanInfo:
    """What the planner proved about the current plan (stored with it)."""

    policy: str = "igniter"
    status: str = "heuristic"             # GPU count: optimal | time_limit | heuristic
    lower_bound: int | None = None
    objectives: dict[str, Any] = field(default_factory=dict)
    gpu_types: dict[str, str] = field(default_factory=dict)  # slot -> GPU type (a --fleet service)
    cost: float | None = None             # price per hour of the slots in use (a priced --fleet)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Server:
    """One tritonserver process serving one workload at one configuration."""

    id: str
    workload: str
    status: str                           # starting | serving | draining
    pid: int = 0
    http_port: int = 0
    grpc_port: int = 0
    metrics_port: int = 0
    repository: str = ""
    host: str = "127.0.0.1"
    drain_until: float = 0.0              # unix time after which a draining server is stopped

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"{self.host}:{self.grpc_port}"


@dataclass(frozen=True)
class Endpoint:
    """The server a workload's clients should use; `version` is the controller's counter when it
    last changed."""

    workload: str
    server_id: str | None
    grpc_url: str | None
    http_url: str | None
    version: int
