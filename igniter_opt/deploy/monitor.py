"""Live monitoring of a deployment: per-workload sliding windows from both sides of the wire.

Client side (the load generator's workers stream completions, load.generator.LoadHooks): every `step_s`
the monitor looks at the requests that completed in the last `window_s` (ending `lag_s` ago, so
the workers' latest chunks are in) and computes, per workload: completions and throughput, p50 and
p99 of latency (completion minus scheduled arrival, as in the report), SLO-violation rate (failed
or slower than the SLO) and errors. After a switch to a shadow server these count only requests
that arrived once the shadow answered (`since_unix` of its endpoints.json entry): the old
server's backlog is its own (it is in `p99_all_ms` and in the report, not in the shadow's windows).
Server side: Triton's Prometheus endpoint of the workload's
active server (`metrics_url` in endpoints.json), scraped every step; the counters'
differences over the step give requests, batches (executions), and the mean request, queue and
compute time per request (`nv_inference_request_duration_us`, `nv_inference_queue_duration_us`,
`nv_inference_compute_infer_duration_us`; a server's latency summaries or histograms, when it
exports them, parse but are not used: the CPU tritonserver here has none). Each step yields one
WindowRecord per workload; records go to
RUN_DIR/monitor.jsonl (what `igniter top` reads) and to listeners (the shadow controller).
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from igniter_opt.deploy.load.generator import LoadHooks

MONITOR_FILE = "monitor.jsonl"
COUNTERS = {
    "nv_inference_request_success": "success",
    "nv_inference_request_failure": "failure",
    "nv_inference_count": "inferences",
    "nv_inference_exec_count": "executions",
    "nv_inference_request_duration_us": "request_us",
    "nv_inference_queue_duration_us": "queue_us",
    "nv_inference_compute_infer_duration_us": "compute_us",
}


@dataclass
class WindowRecord:
    """One workload over one window (client side, and Triton's counters when scraped)."""

    t_s: float                     # window end, seconds since the load started
    workload: str
    window_s: float
    rate_rps: float                # offered (the plan's, dilated when emulated)
    slo_ms: float
    completed: int
    throughput_rps: float
    p50_ms: float | None
    p99_ms: float | None
    violation_pct: float
    errors: int
    share_pct: float | None = None
    gpu: int | None = None
    server: str = ""               # the key of the server answering now
    shadow: str = "none"           # none | warm (an idle shadow is ready) | active (switched to it)
    triton: dict[str, float] | None = None   # requests, executions, request/queue/compute ms per request
    unix_s: float = 0.0            # the window's end on the wall clock (time.time())
    p99_all_ms: float | None = None  # p99 of every completion in the window, the old server's backlog included

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WindowRecord:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})

    @property
    def breaks_slo(self) -> bool:
        return self.p99_ms is not None and self.p99_ms > self.slo_ms


def parse_triton_metrics(text: str) -> dict[str, dict[str, float]]:
    """Triton's /metrics text -> {model: {success, failure, inferences, executions, request_us, queue_us,
    compute_us}} (counters summed over versions and failure reasons), with the Prometheus parser."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = COUNTERS.get(sample.name) or COUNTERS.get(sample.name.removesuffix("_total"))
            model = sample.labels.get("model")
            if key is None or model is None:
                continue
            row = out.setdefault(model, dict.fromkeys(COUNTERS.values(), 0.0))
            row[key] += float(sample.value)
    return out


def triton_window(now: dict[str, float], before: dict[str, float] | None) -> dict[str, float] | None:
    """Per-request means over a step from two scrapes of one model's counters (None without traffic)."""
    if before is None:
        return None
    d = {k: now[k] - before.get(k, 0.0) for k in now}
    n = d["success"]
    if n <= 0:
        return {"requests": 0.0, "executions": d["executions"], "failures": d["failure"]}
    return {"requests": n, "executions": d["executions"], "failures": d["failure"],
            "batch": d["inferences"] / d["executions"] if d["executions"] > 0 else 0.0,
            "request_ms": d["request_us"] / n / 1000.0, "queue_ms": d["queue_us"] / n / 1000.0,
            "compute_ms": d["compute_us"] / n / 1000.0}


def scrape(url: str, timeout_s: float = 0.5) -> dict[str, dict[str, float]] | None:
    """One server's counters, or None when it does not answer."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            return parse_triton_metrics(resp.read().decode())
    except (OSError, ValueError):
        return None


def client_window(arr: np.ndarray, done: np.ndarray, ok: np.ndarray, t0: float, t1: float,
                  slo_ms: float) -> tuple[int, int, float | None, float | None, float]:
    """(completed ok, failed, p50, p99, violation %) of the requests that completed in [t0, t1)."""
    sel = (done >= t0) & (done < t1)
    lat = (done[sel] - arr[sel]) * 1000.0
    good = ok[sel]
    n, failed = int(sel.sum()), int((~good).sum())
    lat_ok = lat[good]
    p50 = float(np.percentile(lat_ok, 50)) if lat_ok.size else None
    p99 = float(np.percentile(lat_ok, 99)) if lat_ok.size else None
    violations = failed + int((lat_ok > slo_ms).sum())
    return n - failed, failed, p50, p99, 100.0 * violations / n if n else 0.0


@dataclass
class ServingState:
    """Where a workload is served now (from endpoints.json or the controller)."""

    share_pct: float | None = None
    gpu: int | None = None
    server: str = ""
    metrics_url: str = ""
    model_name: str = ""
    shadow: str = "none"
    since_unix: float = 0.0        # the answering server took over then: earlier arrivals are not its own


def endpoints_state(path: Path) -> Callable[[], dict[str, ServingState]]:
    """A state source reading an endpoints.json (re-read each call; a shadow switch rewrites it)."""
    def state() -> dict[str, ServingState]:
        try:
            doc = json.loads(Path(path).read_text())
        except (OSError, ValueError):
            return {}
        warm = {s["workload"] for s in doc.get("shadows", []) if s.get("state") == "warm"}
        out = {}
        for s in doc.get("servers", []):
            shadow = "active" if s.get("role") == "shadow" else "warm" if s["name"] in warm else "none"
            out[s["name"]] = ServingState(s.get("share_pct"), s.get("gpu"), s.get("key") or s.get("model_name", ""),
                                          s.get("metrics_url", ""), s.get("model_name", ""), shadow,
                                          float(s.get("since_unix") or 0.0))
        return out
    return state


@dataclass
class LiveMonitor(LoadHooks):
    """Load hooks that keep completions and, on a thread, turn them into WindowRecords each step."""

    targets: list[Any]                        # load.protocol.Target: name, rate_rps, slo_ms
    state: Callable[[], dict[str, ServingState]] = field(default=lambda: {})
    window_s: float = 1.0
    step_s: float = 0.5
    lag_s: float = 0.15
    out: Path | None = None                   # RUN_DIR/monitor.jsonl
    listeners: list[Callable[[list[WindowRecord]], None]] = field(default_factory=list)
    records: list[WindowRecord] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._chunks: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {t.name: [] for t in self.targets}
        self._start_at: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._scrapes: dict[str, dict[str, float]] = {}
        if self.out is not None:
            self.out.parent.mkdir(parents=True, exist_ok=True)
            self.out.write_text("")

    def on_start(self, start_at: float) -> None:
        self._start_at = start_at
        self._thread = threading.Thread(target=self._loop, daemon=True, name="live-monitor")
        self._thread.start()

    def on_progress(self, chunks: list[dict]) -> None:
        with self._lock:
            for c in chunks:
                self._chunks.setdefault(c["name"], []).append((c["arrivals"], c["done"], c["ok"]))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10.0)

    def _loop(self) -> None:
        assert self._start_at is not None
        while time.time() < self._start_at and not self._stop.is_set():
            time.sleep(0.01)
        k = 1
        while not self._stop.wait(max(0.0, self._start_at + k * self.step_s + self.lag_s - time.time())):
            self.tick(k * self.step_s)
            k += 1

    def tick(self, t_s: float) -> list[WindowRecord]:
        """The records of the window ending at t_s (seconds since the start); listeners hear them."""
        states = self.state()
        with self._lock:
            data = {}
            for name, chunks in self._chunks.items():
                if chunks:  # keep only what a later window can still need
                    arr, done, ok = (np.concatenate(x) for x in zip(*chunks))
                    keep = done >= t_s - self.window_s - 1.0
                    self._chunks[name] = [(arr[keep], done[keep], ok[keep])]
                    data[name] = (arr, done, ok)
        records = []
        for t in self.targets:
            arr, done, ok = data.get(t.name, (np.zeros(0), np.zeros(0), np.zeros(0, dtype=bool)))
            p99_all = client_window(arr, done, ok, t_s - self.window_s, t_s, t.slo_ms)[3]
            st = states.get(t.name, ServingState())
            if st.since_unix and self._start_at is not None:  # the answering server's own requests only
                mine = arr >= st.since_unix - self._start_at
                arr, done, ok = arr[mine], done[mine], ok[mine]
            completed, failed, p50, p99, viol = client_window(arr, done, ok, t_s - self.window_s, t_s, t.slo_ms)
            records.append(WindowRecord(
                t_s=round(t_s, 6), workload=t.name, window_s=self.window_s, rate_rps=t.rate_rps, slo_ms=t.slo_ms,
                completed=completed, throughput_rps=completed / self.window_s, p50_ms=p50, p99_ms=p99,
                violation_pct=viol, errors=failed, share_pct=st.share_pct, gpu=st.gpu, server=st.server,
                shadow=st.shadow, triton=self._triton(st), unix_s=(self._start_at or 0.0) + t_s,
                p99_all_ms=p99_all))
        self.records.extend(records)
        if self.out is not None:
            with open(self.out, "a") as f:
                f.writelines(json.dumps(r.to_dict()) + "\n" for r in records)
        for listener in self.listeners:
            listener(records)
        return records

    def _triton(self, st: ServingState) -> dict[str, float] | None:
        if not st.metrics_url:
            return None
        counters = scrape(st.metrics_url)
        if counters is None or st.model_name not in counters:
            return None
        now = counters[st.model_name]
        before = self._scrapes.get(st.server)
        self._scrapes[st.server] = now
        return triton_window(now, before)


def read_records(path: Path) -> list[WindowRecord]:
    """Every record of a monitor.jsonl (a partly written last line is skipped)."""
    out = []
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        try:
            out.append(WindowRecord.from_dict(json.loads(line)))
        except (ValueError, TypeError):
            continue
    return out


@dataclass
class LiveOptions:
    """Live monitoring of a measurement: window length, step, and who hears each step's records."""

    window_s: float = 1.0
    step_s: float = 0.5
    listeners: list[Callable[[list[WindowRecord]], None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not (self.window_s > 0 and self.step_s > 0):
            raise ValueError("window and step must be > 0")


def live_monitor(targets: list[Any], endpoints: dict[str, Any], live: LiveOptions) -> LiveMonitor:
    """A LiveMonitor for a deployment: serving state from its endpoints.json, records to RUN_DIR/monitor.jsonl."""
    run_dir = Path(endpoints.get("run_dir", "."))
    return LiveMonitor(targets, endpoints_state(run_dir / "endpoints.json"), window_s=live.window_s,
                       step_s=live.step_s, out=run_dir / MONITOR_FILE, listeners=list(live.listeners))


class JsonlTail:
    """New WindowRecords appended to a monitor.jsonl since the last call (restarts when it is rewritten):
    how `igniter deploy --shadow` hears the windows of a separate `igniter measure`."""

    def __init__(self, path: Path) -> None:
        self.path, self.offset = Path(path), 0
        self.restarted = False        # the last poll found the file rewritten (read from its start)

    def poll(self) -> list[WindowRecord]:
        self.restarted = False
        try:
            size = self.path.stat().st_size
        except OSError:
            return []
        if size < self.offset:
            self.offset, self.restarted = 0, True
        with open(self.path) as f:
            f.seek(self.offset)
            chunk = f.read()
        end = chunk.rfind("\n") + 1      # only whole lines
        self.offset += len(chunk[:end].encode())
        out = []
        for line in chunk[:end].splitlines():
            try:
                out.append(WindowRecord.from_dict(json.loads(line)))
            except (ValueError, TypeError):
                continue
        return out
