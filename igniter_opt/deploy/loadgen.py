"""Open-loop load generator: tritonclient gRPC asyncio, all workloads at once, several processes.

Requests go through tritonclient's generated gRPC service stub on a grpc.aio channel, each a
ModelInferRequest built once per workload (batch 1, ones): rebuilding it per call, as
`tritonclient.grpc.aio.InferenceServerClient.infer` does, costs more CPU than the call itself.

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

import asyncio
import math
import multiprocessing as mp
import os
import queue
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

DISTRIBUTIONS = ("constant", "poisson")


@dataclass(frozen=True)
class Target:
    """One workload to drive: where its server is, its model's input and the offered rate."""

    name: str
    model_name: str
    url: str
    rate_rps: float
    slo_ms: float
    input_dims: tuple[int, ...]


@dataclass(frozen=True)
class LoadOptions:
    """Length of the run, arrival process and how the load is spread over processes."""

    duration_s: float = 10.0
    warmup_s: float = 2.0
    distribution: str = "constant"
    seed: int = 0
    drain_s: float = 5.0
    timeout_s: float = 10.0
    max_rps_per_process: float = 2000.0
    processes: int | None = None      # default: min(shards, CPUs)

    def __post_init__(self) -> None:
        if self.distribution not in DISTRIBUTIONS:
            raise ValueError(f"distribution must be one of {DISTRIBUTIONS}, got {self.distribution!r}")
        if self.duration_s <= 0 or self.warmup_s < 0:
            raise ValueError("duration must be > 0 and warm-up >= 0")


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
    error_samples: list[str] = field(default_factory=list)
    latencies_ms: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)


def arrivals(rate_rps: float, horizon_s: float, distribution: str, rng: np.random.Generator,
             phase_s: float = 0.0) -> np.ndarray:
    """Arrival offsets in [0, horizon) seconds: constant spacing 1/rate from `phase_s`, or Poisson."""
    if distribution == "constant":
        return np.arange(phase_s, horizon_s, 1.0 / rate_rps)
    n = int(rate_rps * horizon_s * 1.2 + 10 * math.sqrt(rate_rps * horizon_s) + 10)
    t = np.cumsum(rng.exponential(1.0 / rate_rps, n))
    while t[-1] < horizon_s:  # practically never: extend
        t = np.concatenate([t, t[-1] + np.cumsum(rng.exponential(1.0 / rate_rps, n))])
    return t[t < horizon_s]


@dataclass(frozen=True)
class Shard:
    """A part of one target's stream, driven by one worker process."""

    target: Target
    arrivals: np.ndarray


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


async def _drive(shard: Shard, client: Any, request: Any, mono0: float, options: LoadOptions) -> dict:
    arr = shard.arrivals
    done = np.full(arr.size, np.nan)
    ok = np.zeros(arr.size, dtype=bool)
    errors: Counter = Counter()
    pending: set[asyncio.Task] = set()

    async def one(i: int) -> None:
        try:
            await client.infer(request, options.timeout_s)
            ok[i] = True
        except Exception as exc:  # every failure is counted, a few messages kept
            errors[str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__] += 1
        done[i] = time.monotonic() - mono0

    i = 0
    while i < arr.size:
        now = time.monotonic() - mono0
        if arr[i] > now:
            await asyncio.sleep(arr[i] - now)
            continue
        while i < arr.size and arr[i] <= now:
            task = asyncio.ensure_future(one(i))
            pending.add(task)
            task.add_done_callback(pending.discard)
            i += 1
    if pending:
        _, late = await asyncio.wait(set(pending), timeout=options.drain_s)
        for task in late:
            task.cancel()
        if late:
            errors[f"no answer {options.drain_s:g} s after the last arrival"] += len(late)
            await asyncio.gather(*late, return_exceptions=True)
    return {"name": shard.target.name, "arrivals": arr, "done": done, "ok": ok, "errors": dict(errors)}


def infer_request(target: Target) -> Any:
    """The ModelInferRequest of one request (batch 1, ones), built once and sent many times."""
    from tritonclient.grpc import service_pb2  # noqa: PLC0415

    shape = [1, *target.input_dims]
    tensor = service_pb2.ModelInferRequest.InferInputTensor(name="INPUT0", datatype="FP32", shape=shape)
    data = np.ones(shape, dtype=np.float32).tobytes()
    return service_pb2.ModelInferRequest(model_name=target.model_name, inputs=[tensor], raw_input_contents=[data])


class _Client:
    """tritonclient's gRPC service stub on an asyncio channel, sending prebuilt requests."""

    def __init__(self, url: str) -> None:
        import grpc  # noqa: PLC0415
        from tritonclient.grpc import service_pb2_grpc  # noqa: PLC0415

        options = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]
        self.channel = grpc.aio.insecure_channel(url, options=options)
        self.stub = service_pb2_grpc.GRPCInferenceServiceStub(self.channel)

    async def infer(self, request: Any, timeout_s: float) -> None:
        await self.stub.ModelInfer(request, timeout=timeout_s)

    async def close(self) -> None:
        await self.channel.close()


async def _run_worker(shards: list[Shard], options: LoadOptions, ready: Any, go: Any, start_at: Any) -> list:
    clients: dict[str, _Client] = {}
    requests: dict[str, Any] = {}
    try:
        for s in shards:
            t = s.target
            if t.url not in clients:
                clients[t.url] = _Client(t.url)
            if t.name not in requests:
                requests[t.name] = infer_request(t)
                await clients[t.url].infer(requests[t.name], 60.0)  # connected and the model answers
        ready.put(os.getpid())
        await asyncio.get_running_loop().run_in_executor(None, go.wait)
        mono0 = time.monotonic() + (start_at.value - time.time())
        return await asyncio.gather(*[_drive(s, clients[s.target.url], requests[s.target.name], mono0, options)
                                      for s in shards])
    finally:
        for c in clients.values():
            await c.close()


def _worker(shards: list[Shard], options: LoadOptions, ready: Any, go: Any, start_at: Any, out: Any) -> None:
    try:
        out.put(("ok", asyncio.run(_run_worker(shards, options, ready, go, start_at))))
    except BaseException as exc:  # report, never hang the parent
        out.put(("error", f"{type(exc).__name__}: {exc}"))


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
        error_samples=sorted(errors, key=errors.get, reverse=True)[:3], latencies_ms=lat)


def run_load(targets: list[Target], options: LoadOptions, ready_timeout_s: float = 120.0) -> list[WorkloadResult]:
    """Drive every target at its rate at once; one result per target, in order."""
    shards = make_shards(targets, options)
    nproc = max(1, min(len(shards), options.processes or os.cpu_count() or 1))
    groups: list[list[Shard]] = [[] for _ in range(nproc)]
    for i, s in enumerate(sorted(shards, key=lambda s: -s.target.rate_rps)):
        groups[i % nproc].append(s)
    ctx = mp.get_context("spawn")
    ready, out, go, start_at = ctx.Queue(), ctx.Queue(), ctx.Event(), ctx.Value("d", 0.0)
    procs = [ctx.Process(target=_worker, args=(g, options, ready, go, start_at, out), daemon=True)
             for g in groups]
    parts: list[dict] = []
    try:
        for p in procs:
            p.start()
        deadline = time.monotonic() + ready_timeout_s
        for _ in procs:
            while True:
                try:
                    ready.get(timeout=0.2)
                    break
                except queue.Empty:
                    _check_early_failure(out, procs, deadline)
        start_at.value = time.time() + 0.2
        go.set()
        wait_s = options.warmup_s + options.duration_s + options.drain_s + 60
        for _ in procs:
            status, payload = out.get(timeout=wait_s)
            if status != "ok":
                raise RuntimeError(f"load worker failed: {payload}")
            parts.extend(payload)
    finally:
        go.set()
        for p in procs:
            if p.pid is None:  # never started
                continue
            p.join(timeout=5)
            if p.is_alive():
                p.terminate()
                p.join()
    return [_merge(t, [p for p in parts if p["name"] == t.name], options) for t in targets]


def _check_early_failure(out: Any, procs: list, deadline: float) -> None:
    try:
        status, payload = out.get_nowait()
        raise RuntimeError(f"load worker failed before start: {payload}")
    except queue.Empty:
        pass
    if time.monotonic() > deadline:
        raise RuntimeError("load workers not ready in time")
    if any(p.exitcode not in (None, 0) for p in procs):
        raise RuntimeError("a load worker died before start")


def _merge(target: Target, parts: list[dict], options: LoadOptions) -> WorkloadResult:
    errors: Counter = Counter()
    for p in parts:
        errors.update(p["errors"])
    cat = lambda k: np.concatenate([p[k] for p in parts]) if parts else np.zeros(0)  # noqa: E731
    return summarize(target, cat("arrivals"), cat("done"), cat("ok").astype(bool), dict(errors), options)
