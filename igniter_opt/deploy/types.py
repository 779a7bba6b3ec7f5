"""The deploy package's records, shared by the session and every backend: what to deploy
(DeployOptions), one server to start (ServerSpec) and a started one (Endpoint), and what is up
(Deployment). A module of its own so that the session and the backends (the Ray backend above
all) import it and never each other.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from igniter_opt.data.errors import InputError, require
from igniter_opt.data.plan import PlacedWorkload, Plan
from igniter_opt.deploy.emulation import check_emulation_use

ENDPOINTS = "endpoints.json"  # in RUN_DIR while the servers are up
BACKENDS = ("local", "docker", "ray")
DEVICES = ("auto", "cpu", "gpu", "emulate")


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
    metrics_url: str = ""             # Triton's Prometheus endpoint (local launcher), "" if unknown
    key: str = ""                     # the server's own key (its repository folder): a workload's shadow differs
    role: str = "primary"             # primary | shadow (a shadow server answering for its workload)
    since_unix: float = 0.0           # when it started answering for its workload (0: from the start)

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
    inject_error: dict[str, float] = field(default_factory=dict)  # emulate: workload -> error factor
    time_scale: float = 1.0           # emulate: the plan given is already dilated by this (emulation.py)
    shadow: bool = False              # start a warm shadow server per workload (deploy/shadow.py)
    shadow_margin_pct: float = 50.0   # shadow rule: least share meeting (1 - m) SLO/2
    shadow_windows: int = 2           # switch after this many consecutive windows with p99 > SLO
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
        if self.device not in DEVICES:
            raise InputError(f"--device: must be one of {', '.join(DEVICES)}, got {self.device!r}")
        check_emulation_use(self.device, self.backend, self.inject_error, self.time_scale)
        if self.shadow and self.backend != "local":
            raise InputError(f"--shadow runs with --backend local (got --backend {self.backend})")
        if not 0 <= self.shadow_margin_pct < 100:
            raise InputError(f"--shadow-margin: must be in [0, 100), got {self.shadow_margin_pct:g}")
        if self.shadow_windows < 1:
            raise InputError(f"--shadow-windows: must be >= 1, got {self.shadow_windows}")
        self.run_dir = Path(self.run_dir).resolve()


@dataclass
class Deployment:
    """What is up: the endpoints, whether GPUs and MPS shares are in use, and warnings to show."""

    plan: Plan
    run_dir: Path
    backend: str
    gpu: bool
    mps: bool
    emulated: bool = False
    endpoints: list[Endpoint] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)   # backend-specific (ray: placement group, nodes)
    version: int = 1                  # endpoints.json's version: +1 at every switch to a shadow
    shadows: list[Endpoint] = field(default_factory=list)  # warm, idle shadow servers (role "shadow")
    retired: list[Endpoint] = field(default_factory=list)  # servers switched away from (idle until tear-down)
    options: DeployOptions | None = field(default=None, repr=False)
    # the session's way to start more servers: [(workload, share, key)] -> endpoints (LaunchError)
    starter: Callable[[list[tuple[PlacedWorkload, float, str]]], list[Endpoint]] | None = \
        field(default=None, repr=False)
    shadow_controller: Any = field(default=None, repr=False)  # deploy/shadow.ShadowController with --shadow

    def to_dict(self) -> dict[str, Any]:
        shadows = [{**e.to_dict(), "workload": e.name, "state": "warm"} for e in self.shadows]
        return {"instance": self.plan.instance, "backend": self.backend, "gpu": self.gpu, "mps": self.mps,
                "emulated": self.emulated, "run_dir": str(self.run_dir), "started_unix": time.time(), **self.extra,
                "version": self.version, "servers": [e.to_dict() for e in self.endpoints], "shadows": shadows,
                "retired": [e.to_dict() for e in self.retired],
                "workloads": [{"name": w.name, "model": w.model, "batch": w.batch, "resource_pct": w.resource_pct,
                               "gpu": j} for j, g in enumerate(self.plan.gpus) for w in g.workloads]}

    def write_endpoints(self) -> None:
        """Write RUN_DIR/endpoints.json atomically (clients following it re-read on change)."""
        path = self.run_dir / ENDPOINTS
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        os.replace(tmp, path)

    def start_servers(self, items: list[tuple[PlacedWorkload, float, str, str]]) -> list[Endpoint]:
        """Start more servers at once, each (workload, share, key, role) (shadows): the workload's model
        name and GPU, its own repository RUN_DIR/repos/<key>; LaunchError when one does not come up."""
        if self.starter is None:
            raise LaunchError("this deployment cannot start more servers")
        endpoints = self.starter([(w, share, key) for w, share, key, _ in items])
        for e, (_, _, key, role) in zip(endpoints, items):
            e.key, e.role = key, role
        return endpoints

    def start_server(self, w: PlacedWorkload, share_pct: float, key: str, role: str) -> Endpoint:
        """One more server (start_servers for one)."""
        return self.start_servers([(w, share_pct, key, role)])[0]


def shares_warning(gpu: bool, mps: bool) -> str | None:
    """The loud line to print when MPS shares are not enforced, else None."""
    if not gpu:
        return "no GPU on this host: models run on the CPU and MPS shares are NOT enforced (CPU)"
    if not mps:
        return "MPS is off: every server may use the whole GPU, the plan's shares are NOT enforced"
    return None
