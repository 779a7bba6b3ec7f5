"""The deploy package's records, shared by the session and every backend: what to deploy
(DeployOptions), one server to start (ServerSpec) and a started one (Endpoint), and what is up
(Deployment). A module of its own so that the session and the backends (the Ray backend above
all) import it and never each other.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from igniter_opt.data.errors import InputError, require
from igniter_opt.data.plan import Plan

ENDPOINTS = "endpoints.json"  # in RUN_DIR while the servers are up
BACKENDS = ("local", "docker", "ray")


class LaunchError(RuntimeError):
    """A server did not start or did not become ready."""


@dataclass
class ServerSpec:
    """One server to start: a workload's repository, its GPU (None: CPU) and its MPS client env."""

    name: str
    model_name: str
    repository: Path
    gpu: int | None = None
    share_pct: float = 100.0
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class Endpoint:
    """A started server: where to reach it and how to find it again (pid or container id)."""

    name: str
    model_name: str
    grpc_url: str
    http_url: str
    handle: str
    log: str
    gpu: int | None = None
    share_pct: float = 100.0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class DeployOptions:
    """How to deploy: backend, where, MPS or not, which binary/image, device and precision."""

    backend: str = "local"
    run_dir: Path = Path("igniter-run")
    mps: bool = True
    tritonserver: str | None = None
    image: str | None = None
    device: str = "auto"              # auto | cpu | gpu
    fp16: bool = False
    ready_timeout_s: float = 120.0
    response_cache: bool = False      # Triton's response cache (the load benchmark's trivial model)
    address: str | None = None        # ray: the cluster (else $RAY_ADDRESS, else a local one)
    cpus_per_server: float = 0.5      # ray: CPUs reserved per server (bundle CPU = this x members)
    placement_timeout_s: float = 30.0 # ray: how long the placement group may stay pending
    gpu_map: dict[str, list[int]] = field(default_factory=dict)  # local: GPU type -> device indices

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise InputError(f"--backend: must be one of {BACKENDS}, got {self.backend!r}")
        if self.cpus_per_server <= 0:
            raise InputError(f"--cpus-per-server: must be > 0, got {self.cpus_per_server}")
        if self.backend == "docker":
            require("docker", "deploy", "--backend docker")
        if self.device == "gpu":
            require("pynvml", "deploy", "--device gpu (NVML)")
        if self.device not in ("auto", "cpu", "gpu"):
            raise InputError(f"--device: must be auto, cpu or gpu, got {self.device!r}")
        self.run_dir = Path(self.run_dir).resolve()


@dataclass
class Deployment:
    """What is up: the endpoints, whether GPUs and MPS shares are in use, and warnings to show."""

    plan: Plan
    run_dir: Path
    backend: str
    gpu: bool
    mps: bool
    endpoints: list[Endpoint] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)   # backend-specific (ray: placement group, nodes)

    def to_dict(self) -> dict[str, Any]:
        return {"instance": self.plan.instance, "backend": self.backend, "gpu": self.gpu, "mps": self.mps,
                "run_dir": str(self.run_dir), "started_unix": time.time(), **self.extra,
                "servers": [e.to_dict() for e in self.endpoints]}


def shares_warning(gpu: bool, mps: bool) -> str | None:
    """The loud line to print when MPS shares are not enforced, else None."""
    if not gpu:
        return "no GPU on this host: models run on the CPU and MPS shares are NOT enforced (CPU)"
    if not mps:
        return "MPS is off: every server may use the whole GPU, the plan's shares are NOT enforced"
    return None
