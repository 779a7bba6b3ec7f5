"""The service's emulated GPU (`igniter serve --device emulate`): local servers whose stand-ins
sleep the performance model's predicted latency for the controller's *current* plan.

`EmulatedPlane` is the local plane with the emulated device (deploy/emulation.py): every server's
config names STATE_DIR/emulation.json and its own key there (its server id); the file is rewritten
(atomically; the stand-ins reload it at their next batch) before a server is spawned (so it never
serves without its service times) and after every applied change (`observe`: the plan's shares and
co-runners, each workload's endpoint server active, a starting or draining one idle), so a
co-runner's arrival or a raised share changes the neighbours' service times at once.

Time scale F: the plan, /v1/plan and the clients' view stay in the plan's milliseconds; the servers
are a slowed-down copy (service times x F, the batcher's queue delay computed at SLO x F and
rate / F), so a client offers rate / F and compares latency / F with the plan (docs/service.md).
Labelled as emulation in serve's banner, /v1/plan, /healthz and /readyz.
"""

from __future__ import annotations

from typing import Any

from typing_extensions import override

from igniter_opt.controller.dataplane import LocalPlane
from igniter_opt.controller.placement import to_solver_plan
from igniter_opt.controller.records import Endpoint, Placement, Plan, Server
from igniter_opt.deploy.emulation import BANNER, EMULATION_FILE, EmulatedServer, emulation_spec, write_emulation
from igniter_opt.deploy.repository import ModelConfig, queue_delay_us
from igniter_opt.model import Profile


class EmulatedPlane(LocalPlane):
    """Local tritonserver processes serving emulated-GPU stand-ins that follow the plan."""

    def __init__(self, state_dir: Any, profile: Profile, errors: dict[str, float] | None = None,
                 time_scale: float = 1.0, tritonserver: str | None = None, ready_timeout_s: float = 120.0) -> None:
        super().__init__(state_dir, tritonserver, ready_timeout_s, device="cpu")
        self.profile = profile
        self.errors = dict(errors or {})
        self.time_scale = float(time_scale)
        self.file = self.root.parent / EMULATION_FILE
        self.warnings = [f"{BANNER} (time scale {self.time_scale:g}"
                         + (", injected errors " + ", ".join(f"{k}={v:g}" for k, v in sorted(self.errors.items()))
                            if self.errors else "") + ")"]
        self._plan: Plan = {}
        self._shares: dict[str, tuple[str, float]] = {}   # server id -> (workload, share it was started with)
        self._active: dict[str, str] = {}                 # workload -> server id its endpoint names
        self.write()

    @override
    def emulation(self) -> dict[str, Any] | None:
        return {"emulated": True, "time_scale": self.time_scale, "inject_error": dict(self.errors),
                "file": str(self.file), "note": BANNER}

    @override
    def model_config(self, server: Server, placement: Placement) -> ModelConfig:
        spec, f = placement.spec, self.time_scale
        return ModelConfig(name=spec.name, model=spec.model, batch=placement.batch,
                           queue_delay_us=queue_delay_us(spec.slo_ms * f, placement.batch, spec.rate_rps / f),
                           emulation=str(self.file), server_key=server.id)

    @override
    def spawn(self, server: Server, placement: Placement) -> Server:
        self._shares[server.id] = (placement.name, placement.share_pct)
        if placement.name not in self._plan:  # a new workload: its service times before it starts
            self._plan = {**self._plan, placement.name: placement}
        self.write()
        return super().spawn(server, placement)

    @override
    def observe(self, plan: Plan, servers: list[Server], endpoints: dict[str, Endpoint]) -> None:
        self._plan = dict(plan)
        known = {s.id for s in servers}
        for s in servers:  # adopted after a restart: started with the plan's share
            if s.id not in self._shares and s.workload in plan:
                self._shares[s.id] = (s.workload, plan[s.workload].share_pct)
        self._shares = {k: v for k, v in self._shares.items() if k in known}
        self._active = {n: e.server_id for n, e in endpoints.items() if e.server_id is not None}
        self.write()

    def servers(self) -> list[EmulatedServer]:
        """The servers the file describes: those of workloads in the plan (a draining server of a
        removed workload keeps the service times it last read)."""
        return [EmulatedServer(key, name, share, self._active.get(name) == key)
                for key, (name, share) in sorted(self._shares.items()) if name in self._plan]

    def write(self) -> dict[str, Any]:
        """Rewrite STATE_DIR/emulation.json for the plan and servers now; its content."""
        spec = emulation_spec(to_solver_plan(self._plan, self.profile), self.profile, self.servers(), self.errors,
                              self.time_scale)
        write_emulation(self.root.parent, spec)
        return spec
