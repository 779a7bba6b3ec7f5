"""`igniter serve --shadow`: a warm shadow server per workload, switched to when its SLO breaks.

Rule: deploy/shadow.py's `shadow_share` on the current plan (the least share above the workload's
at which the model predicts T_inf <= (1 - m/100) SLO/2 with every co-runner still within its SLO/2
and rate, capped by the GPU's free share; m = 50). A shadow is a server row with status `shadow`
(idle: no endpoint names it; emulated, it is idle in the emulation file). Shadows are (re)started
by the controller's background thread when the lock is free, never inside a client's request;
a workload whose place changed loses its shadow (a new one is made for the new place).

Switch: the client windows posted to /v1/windows are counted per workload; K consecutive windows
(`--shadow-windows`, 2) with p99 above the SLO (x time scale when emulated) switch it, in one
transaction: the plan's share raised to the shadow's (verified: co-runners within their SLOs, the
GPU's active shares <= 100%), the endpoint moved to the shadow server with a version bump (clients
following the long-poll protocol move), the old server draining, and the correction (measured p99
vs predicted, old and new share) recorded in the SQLite state (`GET /v1/corrections`). With no warm
shadow, or when the larger share no longer fits, the break is recorded as `replan-needed` (not
re-planned automatically here). Windows that began before a switch are not counted (the old
server's backlog is not the shadow's). Accounting: shares of idle shadows are not in the plan; MPS caps
of active servers plus idle shadows may sum above 100% (an idle shadow runs no kernels); the plan
guarantees the active servers' shares sum to <= 100% per GPU.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from igniter_opt.controller.dataplane import DataPlane
from igniter_opt.controller.live import ClientWindow, ServiceMonitor
from igniter_opt.controller.metrics import Metrics
from igniter_opt.controller.placement import Unplaceable, to_solver_plan, verified
from igniter_opt.controller.records import Endpoint, Placement, Plan, Server
from igniter_opt.controller.state import Store
from igniter_opt.deploy.shadow import others_fit, shadow_share
from igniter_opt.deploy.types import LaunchError
from igniter_opt.model import Profile


class Controller(Protocol):
    """What the shadows use of the controller (controller/core.py), named here so that core imports
    shadows and not the other way round."""

    lock: threading.Lock
    store: Store
    plane: DataPlane
    metrics: Metrics
    live: ServiceMonitor
    profile: Profile
    config: Any  # core.Config: grace_s

    def plan(self) -> Plan: ...


@dataclass
class Shadows:
    """The shadow rule, the break counters and the switch of one controller."""

    ctl: Controller
    windows: int = 2
    margin_pct: float = 50.0
    breaks: dict[str, int] = field(default_factory=dict)
    first: dict[str, ClientWindow] = field(default_factory=dict)
    shares: dict[str, tuple[str, int, float]] = field(default_factory=dict)   # shadow id -> (workload, gpu, share)
    noted: set[str] = field(default_factory=set)
    switched: dict[str, float] = field(default_factory=dict)   # workload -> unix time of its last switch

    def on_windows(self, windows: list[ClientWindow]) -> None:
        """Count consecutive violating windows per workload; switch at K."""
        plan = self.ctl.plan()
        scale = self.ctl.live.time_scale
        for w in windows:
            if w.workload not in plan or w.unix_s - w.window_s < self.switched.get(w.workload, 0.0):
                continue  # a window holding requests of the server it was switched from is not the shadow's
            slo = plan[w.workload].spec.slo_ms * scale
            if w.p99_ms is None or w.p99_ms <= slo:
                self.breaks[w.workload] = 0
                self.first.pop(w.workload, None)
                continue
            self.breaks[w.workload] = self.breaks.get(w.workload, 0) + 1
            self.first.setdefault(w.workload, w)
            if self.breaks[w.workload] >= self.windows:
                self.switch(w.workload, w)
                self.breaks[w.workload] = 0
                self.first.pop(w.workload, None)

    def _shadow_of(self, name: str) -> Server | None:
        return next((s for s in self.ctl.store.servers() if s.workload == name and s.status == "shadow"), None)

    def switch(self, name: str, window: ClientWindow) -> dict[str, Any]:
        """Move `name` to its warm shadow (or record that none can take it); the correction."""
        ctl = self.ctl
        with ctl.lock:
            plan = ctl.store.plan()
            if name not in plan:
                return {}
            p = plan[name]
            shadow = self._shadow_of(name)
            first = self.first.get(name, window)
            scale = ctl.live.time_scale
            record: dict[str, Any] = {
                "workload": name, "measured_p99_ms": window.p99_ms, "first_break_unix": first.unix_s,
                "predicted_ms": None if p.predicted_latency_ms is None else p.predicted_latency_ms * scale,
                "slo_ms": p.spec.slo_ms * scale, "time_scale": scale, "old_share_pct": p.share_pct}
            known = self.shares.get(shadow.id) if shadow is not None else None
            why = "no warm shadow: the GPU cannot hold a larger share" if known is None or shadow is None else \
                others_fit(ctl.profile, to_solver_plan(plan, ctl.profile), name, known[2], {})
            new = None
            if not why and known is not None:
                try:
                    new = verified({**plan, name: Placement(p.spec, p.gpu, known[2], p.batch)}, ctl.profile)
                except Unplaceable as exc:
                    why = exc.reason
            if new is None or shadow is None or known is None:
                record.update(action="replan-needed", reason=why)
                if name not in self.noted:
                    self.noted.add(name)
                    with ctl.store.transaction() as db:
                        ctl.store.add_correction(db, name, record)
                return record
            serving = [s for s in ctl.store.servers() if s.workload == name and s.status == "serving"]
            with ctl.store.transaction() as db:
                ctl.store.write_plan(db, new, ctl.store.plan_info())
                version = ctl.store.bump(db)
                shadow.status = "serving"
                ctl.store.put_server(db, shadow)
                ctl.store.put_endpoint(db, Endpoint(name, shadow.id, shadow.grpc_url, shadow.http_url, version))
                for s in serving:
                    s.status, s.drain_until = "draining", time.time() + ctl.config.grace_s
                    ctl.store.put_server(db, s)
                record.update(action="switched", new_share_pct=known[2], old_server=[s.id for s in serving],
                              new_server=shadow.id, version=version, switched_unix=time.time(),
                              switch_delay_s=time.time() - first.unix_s,
                              error_ratio=None if not record["predicted_ms"] or window.p99_ms is None
                              else window.p99_ms / record["predicted_ms"])
                ctl.store.add_correction(db, name, record)
            del self.shares[shadow.id]
            self.switched[name] = time.time()
            ctl.plane.observe(new, ctl.store.servers(), ctl.store.endpoints())
            ctl.metrics.replans.labels("shadow").inc()
            ctl.metrics.observe_plan(new, ctl.config.gpus)
            return record

    def ensure(self) -> list[str]:
        """Under the controller's lock: stop shadows whose workload left or moved, start the missing
        ones (where the rule finds a share); the ids started."""
        ctl = self.ctl
        plan = ctl.store.plan()
        started = []
        for s in ctl.store.servers():
            if s.status != "shadow":
                continue
            known = self.shares.get(s.id)
            p = plan.get(s.workload)
            if known is None or p is None or known[1] != p.gpu or known[2] <= p.share_pct:
                ctl.plane.stop(s)
                self.shares.pop(s.id, None)
                with ctl.store.transaction() as db:
                    ctl.store.delete_server(db, s.id)
        have = {s.workload for s in ctl.store.servers() if s.status == "shadow"}
        solver = to_solver_plan(plan, ctl.profile)
        for name, p in sorted(plan.items()):
            if name in have:
                continue
            choice = shadow_share(ctl.profile, solver, name, {}, self.margin_pct)
            if choice.share_pct is None:
                continue
            with ctl.store.transaction() as db:
                server = Server(id=ctl.store.next_server_id(db, name), workload=name, status="shadow")
                ctl.store.put_server(db, server)
            self.shares[server.id] = (name, p.gpu, choice.share_pct)
            try:
                server = ctl.plane.spawn(server, Placement(p.spec, p.gpu, choice.share_pct, p.batch))
                with ctl.store.transaction() as db:
                    ctl.store.put_server(db, server)
                ctl.plane.await_ready(server)
            except LaunchError:
                self.shares.pop(server.id, None)
                with ctl.store.transaction() as db:
                    ctl.store.delete_server(db, server.id)
                ctl.metrics.failures.labels("shadow_start").inc()
                continue
            started.append(server.id)
        ctl.plane.observe(plan, ctl.store.servers(), ctl.store.endpoints())
        return started
