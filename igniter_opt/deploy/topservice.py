"""`igniter top --url`: a MonitorSource reading a running `igniter serve` (its API and /metrics).

Per workload, /v1/workloads gives the plan's rate, SLO, share, GPU and endpoint server, /v1/plan
the emulation's time scale F, and /metrics (the controller's live monitor, controller/live.py) the
last window's client-side p50/p99, throughput, SLO-violation ratio and errors, and Triton's mean
queue and compute time and batch per step. Rates and SLOs are shown as the servers run them
(rate / F, SLO x F when emulated), the same wall clock as the measured latencies. Only HTTP and the
Prometheus text parser: nothing of the controller is imported.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

from igniter_opt.deploy.monitor import WindowRecord

GAUGES = {
    "igniter_workload_latency_p50_seconds": "p50",
    "igniter_workload_latency_p99_seconds": "p99",
    "igniter_workload_slo_violation_ratio": "violation",
    "igniter_workload_client_errors": "errors",
    "igniter_workload_triton_queue_seconds": "queue",
    "igniter_workload_triton_compute_seconds": "compute",
    "igniter_workload_triton_request_seconds": "request",
    "igniter_workload_triton_batch": "batch",
}


class ServiceError(RuntimeError):
    """The service did not answer (the message names the URL and why)."""


def parse_live_metrics(text: str) -> dict[str, dict[str, float]]:
    """The service's /metrics text -> {workload: {p50, p99, violation, errors, queue, compute, request,
    batch, throughput_client, throughput_triton}} (whatever is there), with the Prometheus parser."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            name = sample.labels.get("workload")
            if name is None:
                continue
            if sample.name == "igniter_workload_throughput_rps":
                key = f"throughput_{sample.labels.get('source', 'client')}"
            else:
                key = GAUGES.get(sample.name, "")
            if key:
                out.setdefault(name, {})[key] = float(sample.value)
    return out


class ServiceSource:
    """The newest live figures of every workload of a running service, as WindowRecords."""

    def __init__(self, url: str, token: str | None = None, timeout_s: float = 5.0) -> None:
        self.url, self.token, self.timeout_s = url.rstrip("/"), token, timeout_s
        self._t0 = time.time()

    def describe(self) -> str:
        return self.url

    def _get(self, path: str) -> bytes:
        req = urllib.request.Request(self.url + path)
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                return bytes(resp.read())
        except urllib.error.HTTPError as exc:
            raise ServiceError(f"{self.url}{path}: HTTP {exc.code} {exc.reason}") from None
        except (OSError, ValueError) as exc:
            raise ServiceError(f"{self.url}{path}: unreachable ({getattr(exc, 'reason', exc)})") from None

    def latest(self) -> list[WindowRecord]:
        listing: dict[str, Any] = json.loads(self._get("/v1/workloads"))
        plan: dict[str, Any] = json.loads(self._get("/v1/plan"))
        live = parse_live_metrics(self._get("/metrics").decode())
        scale = float((plan.get("emulation") or {}).get("time_scale", 1.0))
        now = time.time()
        out = []
        for w in listing.get("workloads", []):
            m = live.get(w["name"], {})
            throughput = m.get("throughput_client", m.get("throughput_triton", 0.0))
            triton = {k: m[src] * 1000.0 for k, src in (("queue_ms", "queue"), ("compute_ms", "compute"),
                                                        ("request_ms", "request")) if src in m}
            if "batch" in m:
                triton["batch"] = m["batch"]
            out.append(WindowRecord(
                t_s=round(now - self._t0, 3), workload=w["name"], window_s=0.0, rate_rps=w["rate_rps"] / scale,
                slo_ms=w["slo_ms"] * scale, completed=0, throughput_rps=throughput,
                p50_ms=m["p50"] * 1000.0 if "p50" in m else None, p99_ms=m["p99"] * 1000.0 if "p99" in m else None,
                violation_pct=100.0 * m.get("violation", 0.0), errors=int(m.get("errors", 0)),
                share_pct=w.get("share_pct"), gpu=w.get("gpu"), server=(w.get("endpoint") or {}).get("server_id") or "",
                triton=triton or None, unix_s=now))
        return out
