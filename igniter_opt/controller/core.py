"""The controller: admits, changes and removes workloads on a live data plane, one change at a time.

Every mutation takes one lock (one planner at a time), plans with the configured policy, passes
`verify`, and is applied make-before-break (apply.py) with the state in SQLite (state.py). On start
it re-adopts the servers the state says are serving, stops what should not run, and restarts the
servers of planned workloads that died. A background thread stops drained servers.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

from igniter_opt.controller.apply import apply_plan, drain_due
from igniter_opt.controller.dataplane import DataPlane
from igniter_opt.controller.fleetplace import check_adopted, load_service_fleet, place_igniter_fleet, with_types
from igniter_opt.controller.live import LiveGauges, ServiceMonitor
from igniter_opt.controller.metrics import Metrics
from igniter_opt.controller.placement import Unplaceable, gpus_of, place_igniter, verified
from igniter_opt.controller.records import Endpoint, Placement, Plan, PlanInfo, Server, Spec
from igniter_opt.controller.replan import replan_exact
from igniter_opt.controller.shadows import Shadows
from igniter_opt.controller.state import Store
from igniter_opt.data.dnn import ALIASES, SPECS
from igniter_opt.data.errors import InputError
from igniter_opt.model import Profile, load_profile
from igniter_opt.solvers.exact.warm import WarmRecord

POLICIES = ("igniter", "exact")


class NotFound(Exception):
    """An unknown workload (HTTP 404)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field, self.reason = field, reason


class BadRequest(Exception):
    """A request the models accept but the controller cannot (HTTP 422: e.g. an unknown model)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field, self.reason = field, reason


@dataclass
class Config:
    """What `igniter serve` was started with."""

    state_dir: Path
    gpus: int
    profile: str = "v100"
    policy: str = "igniter"
    margin_pct: float = 0.0
    batch_policy: str = "paper"
    max_changes: int | None = None
    time_limit_s: float = 10.0
    grace_s: float = 5.0
    fleet: str | None = None  # a fleet file (policy igniter; `gpus` is then its slots): fleetplace.py
    monitor_step_s: float = 1.0           # the live monitor's scrape period (live.py)
    shadow: bool = False                  # a warm shadow per workload, switched to on SLO breaks (shadows.py)
    shadow_windows: int = 2               # consecutive violating client windows that switch a workload


class Controller:
    """The service's logic, independent of HTTP (api.py is a thin layer over it)."""

    def __init__(self, config: Config, plane: DataPlane, profile: Profile | None = None) -> None:
        if config.policy not in POLICIES:
            raise ValueError(f"policy must be one of {POLICIES}")
        self.fleet = None if config.fleet is None else load_service_fleet(config.fleet)
        if self.fleet is not None and config.policy != "igniter":
            raise InputError(f"--fleet: policy {config.policy!r} does not take a fleet (only igniter)")
        if config.shadow and self.fleet is not None:
            raise InputError("--shadow: not with --fleet yet (the shadow rule predicts with one profile)")
        self.config = config if self.fleet is None else replace(config, gpus=self.fleet.gpus)
        self.plane = plane
        self.profile = profile or (load_profile(config.profile) if self.fleet is None
                                   else self.fleet.fleet.types[0].profile)
        self.store = Store(config.state_dir)
        # policy exact: the last stage-1 solve, which the next re-plan starts from (in memory: a restart solves cold)
        self.warm = WarmRecord()
        self.metrics = Metrics()
        self.lock = threading.Lock()
        self.ready = False
        self.notes: list[str] = []
        self._stop = threading.Event()
        self._drainer: threading.Thread | None = None
        self._closed = False                  # the state is closed (a refused start, or close())
        self._refused = False                 # start() was refused: close() still releases the plane
        emulation = plane.emulation() or {}
        self.live = ServiceMonitor(LiveGauges(self.metrics.registry), self._serving,
                                   float(emulation.get("time_scale", 1.0)), config.monitor_step_s)
        self.shadows = Shadows(self, config.shadow_windows) if config.shadow and plane.kind != "none" else None
        if self.shadows is not None:
            self.live.listeners.append(self.shadows.on_windows)

    # -- life cycle --------------------------------------------------------------------------------

    def start(self) -> None:
        """Re-adopt what the state says runs, stop the rest, restart dead servers; then ready."""
        with self.lock:
            try:
                self._adopt()
                self.plane.observe(self.store.plan(), self.store.servers(), self.store.endpoints())
                self.metrics.observe_plan(self.store.plan(), self.config.gpus)
                if self.shadows is not None:
                    self.shadows.ensure()
            except BaseException:  # refused (e.g. another fleet): the state directory is free again at once
                self.store.close()
                self._closed = self._refused = True
                raise
        self._drainer = threading.Thread(target=self._drain_loop, name="igniter-drainer", daemon=True)
        self._drainer.start()
        if self.plane.kind != "none":
            self.live.start()
        self.ready = True

    def _adopt(self) -> None:
        plan = self.store.plan()
        if self.fleet is not None:
            check_adopted(self.fleet, self.store.plan_info(), plan, str(self.store.dir))
        beyond = sorted({p.gpu for p in plan.values() if p.gpu >= self.config.gpus})
        if beyond:
            raise InputError(f"--gpus {self.config.gpus}: the plan in {self.store.dir} uses GPU slot {beyond[-1]}; "
                             f"start with --gpus {beyond[-1] + 1} or more")
        endpoints = self.store.endpoints()
        keep: list[Server] = []
        dead: list[str] = []
        for s in self.store.servers():
            current = endpoints.get(s.workload)
            if s.status == "serving" and s.workload in plan and current is not None and current.server_id == s.id \
                    and self.plane.alive(s):
                keep.append(s)
                continue
            self.plane.stop(s)
            with self.store.transaction() as db:
                self.store.delete_server(db, s.id)
            if s.status == "serving" and s.workload in plan:
                dead.append(s.workload)
        killed = self.plane.sweep(keep)
        self.notes.append(f"adopted {len(keep)} server(s), stopped {len(killed)} orphan process(es)")
        if self.plane.kind == "none":
            return
        serving = {s.workload for s in self.store.servers() if s.status == "serving"}
        missing = sorted(n for n in plan if n not in serving)
        if missing:  # restart what died while the controller was away (same plan, new endpoints)
            old = {n: p for n, p in plan.items() if n not in missing}
            apply_plan(self.store, self.plane, old, plan, self.store.plan_info(), self.config.grace_s)
            self.notes.append(f"restarted the servers of {', '.join(missing)}")

    def _drain_loop(self) -> None:
        while not self._stop.wait(0.2):
            try:
                drain_due(self.store, self.plane)
                self._release()
                self._ensure_shadows()
            except Exception:  # a failed stop is retried on the next tick
                self.metrics.failures.labels("drain").inc()

    def _ensure_shadows(self) -> None:
        """Start missing shadows when no change holds the lock (never inside a client's request)."""
        if self.shadows is None or not self.lock.acquire(blocking=False):
            return
        try:
            self.shadows.ensure()
        finally:
            self.lock.release()

    def _release(self) -> None:
        """Give back the GPU slots the plan no longer uses, once nothing drains and no change is in
        flight (a change may be starting servers on a slot its plan is not committed with yet)."""
        if not self.lock.acquire(blocking=False):
            return
        try:
            if not any(s.status in ("starting", "draining") for s in self.store.servers()):
                self.plane.release({p.gpu for p in self.store.plan().values()})
        finally:
            self.lock.release()

    def close(self, teardown: bool = False) -> None:
        """Stop the monitor and the drainer; with `teardown` stop every server too (else they keep serving)."""
        if self._closed:
            if self._refused:
                self._refused = False
                self.plane.close(teardown)
            return
        self.live.stop()
        self._stop.set()
        if self._drainer is not None:
            self._drainer.join(timeout=5)
        with self.lock:
            drain_due(self.store, self.plane, now=float("inf") if teardown else time.time())
            if teardown:
                for s in self.store.servers():
                    self.plane.stop(s)
                    with self.store.transaction() as db:
                        self.store.delete_server(db, s.id)
                self.plane.sweep([])
            self.plane.close(teardown)
            self.store.close()
            self._closed = True

    def _serving(self) -> tuple[Plan, dict[str, Server]]:
        """The plan and each workload's endpoint server (what the monitor scrapes)."""
        servers = {s.id: s for s in self.store.servers()}
        return self.store.plan(), {n: servers[e.server_id] for n, e in self.store.endpoints().items()
                                   if e.server_id in servers}

    # -- mutations ---------------------------------------------------------------------------------

    def _check_model(self, spec: Spec, field: str) -> None:
        models = self.profile.models if self.fleet is None else self.fleet.models
        if spec.model not in models:
            whose = f"profile {self.profile.name!r} has" if self.fleet is None else "the fleet's profiles have"
            raise BadRequest(field, f"unknown model {spec.model!r} ({whose} {', '.join(sorted(models))})")
        if self.plane.kind != "none" and ALIASES.get(spec.model, spec.model) not in SPECS:
            raise BadRequest(field, f"model {spec.model!r} cannot be served")

    def _plan(self, current: Plan, specs: list[Spec], subjects: set[str],
              arrivals: list[Spec]) -> tuple[Plan, PlanInfo]:
        c = self.config
        if c.policy == "exact":
            new, info = replan_exact(self.profile, c.gpus, current, specs, subjects, c.time_limit_s, c.max_changes,
                                     c.batch_policy, self.warm)
        else:
            kept = {n: p for n, p in current.items() if n not in subjects}
            new = place_igniter(self.profile, c.gpus, kept, arrivals) if self.fleet is None else \
                place_igniter_fleet(self.fleet, kept, arrivals)
            info = PlanInfo(policy="igniter", status="heuristic", lower_bound=None, objectives={
                "gpus": {"value": len(gpus_of(new)), "status": "heuristic"},
                "changes": {"value": sum(1 for n, p in current.items() if n in new and n not in subjects
                                         and not p.same_place(new[n])), "status": "heuristic"}})
        return verified(new, self.profile, self.fleet), with_types(info, new, self.fleet)

    def _change(self, operation: str, specs: list[Spec], subjects: set[str], arrivals: list[Spec]) -> Plan:
        """Plan, verify and apply under the lock; the new plan."""
        t0 = time.perf_counter()
        current = self.store.plan()
        try:
            new, info = self._plan(current, specs, subjects, arrivals)
        except Unplaceable:
            if operation == "add":
                self.metrics.admissions.labels("conflict").inc()
            raise
        finally:
            self.metrics.plan_seconds.observe(time.perf_counter() - t0)
        try:
            apply_plan(self.store, self.plane, current, new, info, self.config.grace_s)
        except Exception:
            self.metrics.failures.labels("server_start").inc()
            raise
        self.metrics.replans.labels(operation).inc()
        self.metrics.observe_plan(new, self.config.gpus)
        return new

    def add(self, specs: list[Spec]) -> list[str]:
        """Admit workloads (all or none); their names."""
        for i, s in enumerate(specs):
            self._check_model(s, f"workloads[{i}].model" if len(specs) > 1 else "model")
        with self.lock:
            current = self.store.plan()
            for s in specs:
                if s.name in current:
                    raise Unplaceable("name", f"workload {s.name!r} exists (change it with PATCH, or remove it)")
            self._change("add", [p.spec for p in current.values()] + specs, {s.name for s in specs}, specs)
            self.metrics.admissions.labels("admitted").inc(len(specs))
        return [s.name for s in specs]

    def update(self, name: str, rate_rps: float | None, slo_ms: float | None) -> None:
        """Change a workload's rate and/or SLO (re-placed by the policy)."""
        with self.lock:
            current = self.store.plan()
            if name not in current:
                raise NotFound("name", f"no workload {name!r}")
            old = current[name].spec
            spec = Spec(name, old.model, old.slo_ms if slo_ms is None else slo_ms,
                        old.rate_rps if rate_rps is None else rate_rps, old.margin_pct)
            if spec == old:
                return
            specs = [spec if p.name == name else p.spec for p in current.values()]
            self._change("change", specs, {name}, [spec])

    def remove(self, name: str) -> None:
        """Remove a workload; its server drains. Co-runners keep their servers (igniter), or the
        whole set is re-planned (exact)."""
        with self.lock:
            current = self.store.plan()
            if name not in current:
                raise NotFound("name", f"no workload {name!r}")
            specs = [p.spec for p in current.values() if p.name != name]
            if self.config.policy == "exact":
                self._change("remove", specs, set(), [])
                return
            new = {n: p for n, p in current.items() if n != name}
            info = self.store.plan_info()
            info.objectives = {"gpus": {"value": len(gpus_of(new)), "status": "heuristic"},
                               "changes": {"value": 0, "status": "heuristic"}}
            apply_plan(self.store, self.plane, current, verified(new, self.profile, self.fleet),
                       with_types(info, new, self.fleet), self.config.grace_s)
            self.metrics.replans.labels("remove").inc()
            self.metrics.observe_plan(new, self.config.gpus)

    # -- reads -------------------------------------------------------------------------------------

    def plan(self) -> Plan:
        return self.store.plan()

    def placement(self, name: str) -> Placement:
        plan = self.store.plan()
        if name not in plan:
            raise NotFound("name", f"no workload {name!r}")
        return plan[name]

    def endpoint(self, name: str) -> Endpoint | None:
        self.placement(name)
        return self.store.endpoints().get(name)

    def version(self) -> int:
        return self.store.version()
