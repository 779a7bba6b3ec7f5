"""Live monitoring of the service's workloads, exported by its /metrics (issue 20, part 2).

Two sides, one set of Prometheus gauges per workload (the controller's registry):

- server side: `ServiceMonitor`, a background thread of the controller, scrapes every `step_s` the
  Triton /metrics of each workload's *endpoint* server (deploy/monitor.py's parser) and turns the
  counters' differences over the step into throughput and the mean request, queue and compute
  time per request and the mean batch (`igniter_workload_triton_*`, `..._throughput_rps{source="triton"}`).
  The CPU tritonserver has no latency histograms, so percentiles come from the clients.
- client side: windows posted to `POST /v1/windows` (what `igniter client measure` does every
  step: deploy/monitor.py's LiveMonitor on its load generator) give p50/p99 latency, throughput and
  the SLO-violation ratio (`igniter_workload_latency_p{50,99}_seconds`,
  `igniter_workload_slo_violation_ratio`, `..._throughput_rps{source="client"}`).

All figures are wall-clock: on an emulated device at time scale F they are F times the plan's
milliseconds (the clients offer rate / F), as `igniter_workload_slo_seconds` (the SLO the servers
run at) is. A workload's gauges go when it leaves the plan; client figures older than `stale_s`
are dropped (no client measuring: no client figures).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Gauge

from igniter_opt.controller.records import Plan, Server
from igniter_opt.deploy.monitor import scrape, triton_window
from igniter_opt.deploy.repository import triton_name

TRITON = {"request_ms": "request", "queue_ms": "queue", "compute_ms": "compute"}


@dataclass
class ClientWindow:
    """One client-side window of one workload (a deploy.monitor.WindowRecord's essentials)."""

    workload: str
    window_s: float
    completed: int
    throughput_rps: float
    p50_ms: float | None
    p99_ms: float | None
    violation_pct: float
    errors: int
    unix_s: float


class LiveGauges:
    """The per-workload live gauges in a controller's registry."""

    def __init__(self, r: CollectorRegistry) -> None:
        w = ["workload"]
        self.p50 = Gauge("igniter_workload_latency_p50_seconds", "Client-side p50 latency of the last window", w,
                         registry=r)
        self.p99 = Gauge("igniter_workload_latency_p99_seconds", "Client-side p99 latency of the last window", w,
                         registry=r)
        self.violation = Gauge("igniter_workload_slo_violation_ratio",
                               "Client-side share of the last window's requests failed or slower than the SLO", w,
                               registry=r)
        self.errors = Gauge("igniter_workload_client_errors", "Failed requests in the last client window", w,
                            registry=r)
        self.throughput = Gauge("igniter_workload_throughput_rps", "Completed requests per second, last window",
                                ["workload", "source"], registry=r)
        self.slo = Gauge("igniter_workload_slo_seconds", "The SLO the servers run at (x time scale when emulated)",
                         w, registry=r)
        self.triton = {k: Gauge(f"igniter_workload_triton_{v}_seconds",
                                f"Triton's mean {v} time per request over the last step", w, registry=r)
                       for k, v in TRITON.items()}
        self.batch = Gauge("igniter_workload_triton_batch", "Triton's mean batch over the last step", w, registry=r)
        self.age = Gauge("igniter_workload_window_age_seconds", "Seconds since the newest client window", w,
                         registry=r)

    def all(self) -> list[Gauge]:
        return [self.p50, self.p99, self.violation, self.errors, self.throughput, self.slo, self.batch, self.age,
                *self.triton.values()]


class ServiceMonitor:
    """Scrapes the endpoint servers' Triton counters on a thread and keeps the clients' windows."""

    def __init__(self, gauges: LiveGauges, serving: Callable[[], tuple[Plan, dict[str, Server]]],
                 time_scale: float = 1.0, step_s: float = 1.0, stale_s: float = 10.0) -> None:
        self.gauges, self.serving = gauges, serving
        self.time_scale, self.step_s, self.stale_s = time_scale, step_s, stale_s
        self._lock = threading.RLock()
        self._client: dict[str, ClientWindow] = {}
        self._scrapes: dict[str, tuple[float, dict[str, float]]] = {}   # server id -> (time, counters)
        self.triton: dict[str, dict[str, float]] = {}                   # workload -> last step's figures
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.listeners: list[Callable[[list[ClientWindow]], None]] = []   # hear posted client windows

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="igniter-monitor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.wait(self.step_s):
            try:
                self.tick()
            except Exception:  # a failed scrape is retried on the next step
                continue

    def feed(self, windows: list[ClientWindow]) -> None:
        """Client-side windows (newest per workload kept)."""
        with self._lock:
            for w in windows:
                old = self._client.get(w.workload)
                if old is None or w.unix_s >= old.unix_s:
                    self._client[w.workload] = w
        self.publish()
        for listener in self.listeners:
            listener(windows)

    def tick(self) -> None:
        """Scrape every endpoint server once, then publish."""
        plan, servers = self.serving()
        now = time.time()
        triton: dict[str, dict[str, float]] = {}
        for name, server in servers.items():
            if name not in plan or server.metrics_port <= 0:
                continue
            counters = scrape(f"http://{server.host}:{server.metrics_port}/metrics")
            model = triton_name(name)
            if counters is None or model not in counters:
                continue
            before = self._scrapes.get(server.id)
            self._scrapes[server.id] = (now, counters[model])
            window = triton_window(counters[model], before[1] if before else None)
            if window is not None and before is not None and now > before[0]:
                triton[name] = {**window, "throughput_rps": window["requests"] / (now - before[0])}
        self._scrapes = {k: v for k, v in self._scrapes.items() if k in {s.id for s in servers.values()}}
        with self._lock:
            self.triton = triton
        self.publish(plan)

    def publish(self, plan: Plan | None = None) -> None:
        """Set the gauges from the newest figures (workloads out of the plan lose theirs)."""
        plan = self.serving()[0] if plan is None else plan
        now = time.time()
        g = self.gauges
        with self._lock:
            client = {n: w for n, w in self._client.items() if n in plan and now - w.unix_s <= self.stale_s}
            self._client = client
            triton = {n: t for n, t in self.triton.items() if n in plan}
            for gauge in g.all():
                gauge.clear()
            for name, p in plan.items():
                g.slo.labels(name).set(p.spec.slo_ms * self.time_scale / 1000.0)
            for name, w in client.items():
                g.throughput.labels(name, "client").set(w.throughput_rps)
                g.violation.labels(name).set(w.violation_pct / 100.0)
                g.errors.labels(name).set(w.errors)
                g.age.labels(name).set(max(0.0, now - w.unix_s))
                if w.p50_ms is not None:
                    g.p50.labels(name).set(w.p50_ms / 1000.0)
                if w.p99_ms is not None:
                    g.p99.labels(name).set(w.p99_ms / 1000.0)
            for name, t in triton.items():
                g.throughput.labels(name, "triton").set(t["throughput_rps"])
                for key, gauge in g.triton.items():
                    if key in t:
                        gauge.labels(name).set(t[key] / 1000.0)
                if "batch" in t:
                    g.batch.labels(name).set(t["batch"])


    def text(self, render: Callable[[], bytes]) -> bytes:
        """Publish against the plan now and render, with no tick clearing the gauges in between."""
        with self._lock:
            self.publish()
            return render()


def client_windows(items: list[dict[str, Any]]) -> list[ClientWindow]:
    """Posted window dicts (WindowRecord.to_dict) -> ClientWindows (unknown keys ignored)."""
    keys = ClientWindow.__dataclass_fields__
    return [ClientWindow(**{k: item[k] for k in keys}) for item in items]
