"""Open-loop load generator: tritonclient gRPC asyncio, all workloads at once, several processes.

The sending side is in worker.py; what both sides share is in protocol.py.

Each workload's arrivals are fixed in advance (constant spacing or Poisson at its rate) and every
request is sent at its arrival time whether or not earlier ones have returned (open loop). A
workload whose rate exceeds `max_rps_per_process` is split into shards (a constant stream into
interleaved constant streams, a Poisson stream into independent Poisson streams of the split rate,
which superpose to the same process), and shards are spread over worker processes, which start
together after each has connected and sent one request.

Definitions (per workload, window = [warm-up, warm-up + duration) in arrival time):
- latency: completion time minus the request's scheduled arrival time (so a late sender counts);
- p50/p95/p99/max: over successful requests that arrived in the window;
- measured throughput: successful completions whose completion time lies in the window / duration;
- SLO violation %: requests arrived in the window that failed or took longer than the SLO;
- errors: failed requests over the whole run (warm-up included), requests still outstanding
  `drain_s` after the last arrival included.
"""

from __future__ import annotations

import math
import os
import select
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import IO

import numpy as np

from igniter_opt.data.errors import require
from igniter_opt.deploy.load.protocol import (
    DISTRIBUTIONS,
    READY,
    LoadError,
    LoadOptions,
    Shard,
    Target,
    check_load_size,
    recv,
    send,
)
from igniter_opt.platform.processes import kill_and_reap

__all__ = ["DISTRIBUTIONS", "LoadError", "LoadHooks", "LoadOptions", "Shard", "Target", "WorkloadResult", "arrivals",
           "make_shards", "require_load_client", "run_load", "summarize"]


@dataclass
class WorkloadResult:
    """What one workload measured (latencies in ms)."""

    name: str
    rate_rps: float
    slo_ms: float
    sent: int
    measured: int
    errors: int
    measured_throughput_rps: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    slo_violation_pct: float
    offered_rps: float = 0.0          # arrivals in the window / duration (Poisson: varies around rate)
    error_samples: list[str] = field(default_factory=list)
    latencies_ms: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)


def arrivals(rate_rps: float, horizon_s: float, distribution: str, rng: np.random.Generator,
             phase_s: float = 0.0) -> np.ndarray:
    """Arrival offsets in [0, horizon) seconds: constant spacing 1/rate from `phase_s`, or Poisson."""
    if distribution == "constant":
        n = max(0, math.ceil((horizon_s - phase_s) * rate_rps - 1e-6))
        return phase_s + np.arange(n) / rate_rps
    n = int(rate_rps * horizon_s * 1.2 + 10 * math.sqrt(rate_rps * horizon_s) + 10)
    t = np.cumsum(rng.exponential(1.0 / rate_rps, n))
    while t[-1] < horizon_s:  # practically never: extend
        t = np.concatenate([t, t[-1] + np.cumsum(rng.exponential(1.0 / rate_rps, n))])
    return t[t < horizon_s]


def make_shards(targets: list[Target], options: LoadOptions) -> list[Shard]:
    """Split every target's stream into pieces of at most `max_rps_per_process`."""
    horizon = options.warmup_s + options.duration_s
    rng = np.random.default_rng(options.seed)
    shards = []
    for t in targets:
        k = max(1, math.ceil(t.rate_rps / options.max_rps_per_process))
        for j in range(k):
            if options.distribution == "constant":
                arr = arrivals(t.rate_rps / k, horizon, "constant", rng, phase_s=j / t.rate_rps)
            else:
                arr = arrivals(t.rate_rps / k, horizon, "poisson", rng)
            shards.append(Shard(t, arr))
    return shards


def summarize(target: Target, arr: np.ndarray, done: np.ndarray, ok: np.ndarray, errors: dict[str, int],
              options: LoadOptions) -> WorkloadResult:
    """Per-workload figures from per-request arrival/completion times (definitions: module doc)."""
    w0, w1 = options.warmup_s, options.warmup_s + options.duration_s
    in_window = (arr >= w0) & (arr < w1)
    lat_ms = (done - arr) * 1000.0
    good = in_window & ok
    lat = lat_ms[good]
    completed_in_window = int(np.count_nonzero(ok & (done >= w0) & (done < w1)))
    measured = int(np.count_nonzero(in_window))
    violations = int(np.count_nonzero(in_window & ~ok)) + int(np.count_nonzero(lat > target.slo_ms))

    def pct(q: float) -> float | None:
        return float(np.percentile(lat, q)) if lat.size else None
    return WorkloadResult(
        name=target.name, rate_rps=target.rate_rps, slo_ms=target.slo_ms, sent=int(arr.size),
        measured=measured, errors=int(np.count_nonzero(~ok)),
        measured_throughput_rps=completed_in_window / options.duration_s,
        p50_ms=pct(50), p95_ms=pct(95), p99_ms=pct(99), max_ms=float(lat.max()) if lat.size else None,
        slo_violation_pct=100.0 * violations / measured if measured else 0.0,
        offered_rps=measured / options.duration_s,
        error_samples=sorted(errors, key=lambda e: errors[e], reverse=True)[:3], latencies_ms=lat)


def require_load_client() -> None:
    """The load generator's gRPC client, or one line naming the extra that installs it."""
    require("grpc", "deploy", "measuring (the gRPC load generator)")
    require("tritonclient.grpc", "deploy", "measuring (the gRPC load generator)")


class LoadHooks:
    """What a live observer (deploy/monitor.py) hears while the load runs: the common start time
    (time.time()), then chunks of completed requests (from the workers' reader threads)."""

    def on_start(self, start_at: float) -> None:
        """The load starts at `start_at` (wall clock); completion times are seconds after it."""

    def on_progress(self, chunks: list[dict]) -> None:
        """Requests completed: each chunk {"name", "arrivals", "done", "ok"} (numpy arrays)."""


def _collect(proc: subprocess.Popen[bytes], hooks: LoadHooks | None, out: list) -> None:
    """Reader thread of one worker: progress goes to the hooks, the final answer into `out`."""
    try:
        while True:
            status, payload = recv(_pipes(proc)[1])
            if status == "progress":
                if hooks is not None:
                    hooks.on_progress(payload)
                continue
            out.append((status, payload))
            return
    except (EOFError, OSError, ValueError) as exc:
        out.append(("error", f"worker pipe: {exc}"))


def run_load(targets: list[Target], options: LoadOptions, ready_timeout_s: float = 120.0,
             hooks: LoadHooks | None = None) -> list[WorkloadResult]:
    """Drive every target at its rate at once; one result per target, in order.

    Workers are `python -m igniter_opt.deploy.load.worker` processes (so this works from any
    __main__, a REPL included); each gets its shards, connects, answers ready, and starts at a common
    wall-clock time. Every worker is killed on the way out, whatever happened. With `hooks` and
    `options.progress_s > 0` completions are streamed to the hooks while the load runs.
    """
    require_load_client()
    check_load_size({t.name: t.rate_rps for t in targets}, options)
    shards = make_shards(targets, options)
    nproc = max(1, min(len(shards), options.processes or os.cpu_count() or 1))
    groups: list[list[Shard]] = [[] for _ in range(nproc)]
    for i, s in enumerate(sorted(shards, key=lambda s: -s.target.rate_rps)):
        groups[i % nproc].append(s)
    procs: list[subprocess.Popen[bytes]] = []
    parts: list[dict] = []
    try:
        for g in groups:
            proc = subprocess.Popen([sys.executable, "-m", "igniter_opt.deploy.load.worker"], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE)
            procs.append(proc)
            send(_pipes(proc)[0], (g, options))
        _await_ready(procs, ready_timeout_s)
        start_at = time.time() + 0.2
        if hooks is not None:
            hooks.on_start(start_at)
        for proc in procs:
            send(_pipes(proc)[0], start_at)
        parts = _answers(procs, hooks)
    finally:
        for proc in procs:
            kill_and_reap(proc, grace_s=0.0)
            for stream in _pipes(proc):
                stream.close()
    return [_merge(t, [p for p in parts if p["name"] == t.name], options) for t in targets]


def _await_ready(procs: list[subprocess.Popen[bytes]], timeout_s: float) -> None:
    """Every worker answers READY (connected, one request per workload answered) or LoadError."""
    deadline = time.monotonic() + timeout_s
    for proc in procs:
        stdout = _pipes(proc)[1]
        ready, _, _ = select.select([stdout], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            raise LoadError(f"load workers not ready after {timeout_s:g} s")
        first = stdout.read(len(READY))
        if first != READY:
            _, payload = ("error", "worker exited") if not first else recv(stdout, first)
            raise LoadError(f"load worker failed before start: {payload}")


def _answers(procs: list[subprocess.Popen[bytes]], hooks: LoadHooks | None) -> list[dict]:
    """Read every worker on its own thread (progress to the hooks) until each gives its final answer."""
    answers: list[list] = [[] for _ in procs]
    readers = [threading.Thread(target=_collect, args=(proc, hooks, answers[k]), daemon=True,
                                name=f"load-reader-{k}") for k, proc in enumerate(procs)]
    for t in readers:
        t.start()
    for t in readers:
        while t.is_alive():  # short joins: Ctrl-C still reaches the main thread
            t.join(0.2)
    parts: list[dict] = []
    for answer in answers:
        status, payload = answer[0]
        if status != "ok":
            raise LoadError(f"load worker failed: {payload}")
        parts.extend(payload)
    return parts


def _pipes(proc: subprocess.Popen[bytes]) -> tuple[IO[bytes], IO[bytes]]:
    """A worker's stdin and stdout (both pipes: never None)."""
    assert proc.stdin is not None and proc.stdout is not None
    return proc.stdin, proc.stdout


def _merge(target: Target, parts: list[dict], options: LoadOptions) -> WorkloadResult:
    errors: Counter = Counter()
    for p in parts:
        errors.update(p["errors"])
    cat = lambda k: np.concatenate([p[k] for p in parts]) if parts else np.zeros(0)  # noqa: E731
    return summarize(target, cat("arrivals"), cat("done"), cat("ok").astype(bool), dict(errors), options)
