"""Prometheus metrics of one controller (its own registry, so several controllers can coexist)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from igniter_opt.controller.records import Plan


class Metrics:
    """Workloads, GPUs in use, shares, predicted latency, admissions, re-plans, failures."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.workloads = Gauge("igniter_workloads", "Workloads in the plan", registry=r)
        self.gpus = Gauge("igniter_gpus_in_use", "GPU slots the plan uses", registry=r)
        self.fleet = Gauge("igniter_fleet_gpus", "GPUs of the fleet", registry=r)
        self.share = Gauge("igniter_workload_share_pct", "MPS share of each workload", ["workload", "gpu"],
                           registry=r)
        self.latency = Gauge("igniter_workload_predicted_latency_ms", "Predicted inference latency",
                             ["workload"], registry=r)
        self.admissions = Counter("igniter_admissions", "Admission requests by result", ["result"], registry=r)
        self.replans = Counter("igniter_replans", "Plans applied, by operation", ["operation"], registry=r)
        self.failures = Counter("igniter_failures", "Failures, by kind", ["kind"], registry=r)
        self.plan_seconds = Histogram("igniter_planning_seconds", "Planning time per change", registry=r,
                                      buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60))

    def observe_plan(self, plan: Plan, fleet: int) -> None:
        self.workloads.set(len(plan))
        self.gpus.set(len({p.gpu for p in plan.values()}))
        self.fleet.set(fleet)
        self.share.clear()
        self.latency.clear()
        for p in plan.values():
            self.share.labels(p.name, str(p.gpu)).set(p.share_pct)
            if p.predicted_latency_ms is not None:
                self.latency.labels(p.name).set(p.predicted_latency_ms)

    def text(self) -> bytes:
        return generate_latest(self.registry)
