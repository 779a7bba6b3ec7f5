"""`igniter profile run`: measure a raw profile on this host's GPU (MPS shares, NVML, CUDA events, ncu).

Follows grid.py's plan with worker processes (worker.py), samples power and SM clock with the NVML
sampler for the whole run and averages it over each timed window, derives the raw quantities with
derive.py / kernels.py / l2.py and writes them with raw.py. Needs a GPU; everything it computes
from the measurements is tested without one.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from igniter_opt.data.errors import InputError
from igniter_opt.data.profiles import GRID_BATCHES, GRID_SHARES
from igniter_opt.profiling import derive, grid, kernels, l2, raw
from igniter_opt.profiling.worker import WorkerProcess, run_together, worker_argv

READY_TIMEOUT_S = 240.0
Step = Callable[[str], None]


def check_environment(l2_source: str = "ncu") -> None:
    """InputError (CLI exit 2) with the reason when this host cannot profile."""
    missing = [m for m in ("torch", "torchvision", "pynvml") if importlib.util.find_spec(m) is None]
    if missing:
        raise InputError(f"profiling needs {', '.join(missing)} (pip install torch torchvision nvidia-ml-py) "
                         "and an NVIDIA GPU")
    from igniter_opt.platform.mps import mps_available
    from igniter_opt.platform.nvml import nvml_available

    if not nvml_available():
        raise InputError("no NVIDIA GPU found (NVML reports none): profiling needs a GPU host")
    if not mps_available():
        raise InputError("nvidia-cuda-mps-control not on PATH: MPS shares cannot be set")
    if l2_source == "ncu" and not l2.ncu_available():
        raise InputError("ncu (Nsight Compute) not on PATH: it measures the L2 demand; install it or "
                         "pass --l2 none (a per-co-runner interference proxy, see docs/profiling.md)")


@dataclass
class RunOptions:
    """What `igniter profile run` was asked for."""

    models: list[str]
    out: Path
    budget_s: float = 360.0
    dtype: str = "float32"
    eager: bool = False
    l2_source: str = "ncu"        # "ncu" or "none"
    unit_step: float | None = None
    work_dir: Path | None = None
    notes: list[str] = field(default_factory=list)


class Sampled:
    """An NVML sampler started at t_ref (monotonic): window means of power and SM clock."""

    def __init__(self, sampler: Any, t_ref: float) -> None:
        self.sampler, self.t_ref = sampler, t_ref

    def means(self, start: float, end: float) -> tuple[float, float]:
        s = self.sampler.samples()
        t = s.t + self.t_ref
        return (derive.window_mean(t, s.power_w, start, end, derive.POWER_SETTLE_S),
                derive.window_mean(t, s.sm_clock_mhz, start, end, 0.0))


def _trace_timing(answer: dict[str, Any]) -> kernels.IterationTiming:
    return kernels.iteration_timing(kernels.KernelTrace.from_lists(answer), int(answer["iters"]))


def _unit_l2(models: list[str], why: str = "none: unit demand per co-runner") -> tuple[dict[str, list[float]],
                                                                                       dict[str, Any]]:
    """The L2 proxy without ncu: demand 1 per co-runner at every diagonal point."""
    return {m: [1.0, 1.0, 1.0] for m in models}, {m: {"l2_source": why} for m in models}


def _without_mps(environ: Any) -> dict[str, str]:
    return {k: v for k, v in environ.items() if not k.startswith("CUDA_MPS_")}


@dataclass
class Timings:
    """What the workers measured before the L2 pass."""

    info: Any
    facts: dict[str, Any]
    bandwidth: dict[str, Any]
    idle_power_w: float
    points: dict[str, list[raw.PointMeasurement]]
    colocated: dict[str, dict[str, float]]
    concurrent: tuple[list[float], list[float], list[float]]


class Profiler:
    """One profiling run; `run()` returns the raw-profile lines."""

    def __init__(self, opts: RunOptions, step: Step = lambda _: None) -> None:
        self.opts, self._report = opts, step
        self.budget = grid.plan_budget(opts.budget_s, len(opts.models), opts.l2_source == "ncu")
        self.work = Path(opts.work_dir or tempfile.mkdtemp(prefix="igniter-profile-"))
        self.workers: dict[str, WorkerProcess] = {}
        self.work.mkdir(parents=True, exist_ok=True)

    def step(self, message: str) -> None:
        """Report one step, and log it with the time in WORK/steps.log (a run's trail, also when it dies)."""
        with open(self.work / "steps.log", "a") as log:
            log.write(f"{time.strftime('%H:%M:%S')} {message}\n")
        self._report(message)

    # -- workers -------------------------------------------------------------------------------
    def _start_workers(self, mps: Any) -> None:
        for spec in grid.workers(self.opts.models):
            argv = worker_argv(list(spec.models), list(spec.batches), self.opts.dtype, self.opts.eager)
            self.workers[spec.key] = WorkerProcess(spec.key, argv, mps.client_env(spec.share),
                                                   self.work / "logs" / f"{spec.key}.log").start()
        for w in self.workers.values():
            w.wait_ready(READY_TIMEOUT_S)
            if w.ready.get("graph_errors"):
                self.opts.notes.append(f"{w.key}: eager fallback {w.ready['graph_errors']}")

    def _timed(self, pairs: list[tuple[str, dict[str, Any]]], lead_s: float = 0.3) -> list[dict[str, Any]]:
        start = time.monotonic() + lead_s
        cmds = [{**c, "start_at": start} for _, c in pairs]
        timeout = max(float(c.get("seconds", 0)) for c in cmds) + 120
        return run_together([self.workers[k] for k, _ in pairs], cmds, timeout)

    # -- phases --------------------------------------------------------------------------------
    def _grid(self, nv: Sampled) -> dict[str, list[raw.PointMeasurement]]:
        points: dict[str, list[raw.PointMeasurement]] = {m: [] for m in self.opts.models}
        for m in self.opts.models:
            for s in GRID_SHARES:
                for b in GRID_BATCHES:
                    (ans,) = self._timed([(f"s{s:g}", {"op": "time", "model": m, "batch": b,
                                                      "seconds": self.budget.point_s})])
                    lat = derive.latency_stats(ans["lat_ms"])
                    power, clock = nv.means(ans["t_start"], ans["t_end"])
                    points[m].append(raw.PointMeasurement(b, float(s), lat.mean_ms, power, clock))
                    self.step(f"{m} b{b} s{s:g}: {lat.mean_ms:.3f} ms")
        return points

    def _traced_under_load(self, tracer: str, loaders: list[str], model: str, batch: int) -> kernels.IterationTiming:
        """Trace `tracer`'s kernels while `loaders` run the same model back to back."""
        cmds = [(k, {"op": "time", "model": model, "batch": batch, "seconds": grid.TRACE_LOAD_S}) for k in loaders]
        cmds.append((tracer, {"op": "trace", "model": model, "batch": batch, "iters": grid.TRACE_ITERS}))
        answers = self._timed(cmds)
        return _trace_timing(answers[-1])

    def _solo_and_coloc(self, nv: Sampled) -> dict[str, dict[str, float]]:
        b, s = grid.COLOC_POINT
        out: dict[str, dict[str, float]] = {}
        for m in self.opts.models:
            solo = self._traced_under_load(f"s{s:g}", [], m, b)
            idle, active = derive.idle_and_active(solo.idle_ms, solo.span_ms)
            out[m] = {"kernels": kernels.kernels_per_inference(solo), "idle": idle, "active": active}
            self.step(f"{m} solo trace: {out[m]['kernels']} kernels, idle {idle:.4f} ms")
            cmd = {"op": "time", "model": m, "batch": b, "seconds": self.budget.coloc_s}
            a1, a2 = self._timed([(f"s{s:g}", cmd), ("partner", cmd)])
            t0, t1 = derive.overlap_window([a1["t_start"], a2["t_start"]], [a1["t_end"], a2["t_end"]])
            out[m]["power_2"], out[m]["clock_2"] = nv.means(t0, t1)
            pair = self._traced_under_load(f"s{s:g}", ["partner"], m, b)
            out[m]["active_2"] = derive.idle_and_active(pair.idle_ms, pair.span_ms)[1]
            self.step(f"{m} beside a copy: active {active:.3f} -> {out[m]['active_2']:.3f} ms")
        return out

    def _concurrent(self, nv: Sampled) -> tuple[list[float], list[float], list[float]]:
        power, clock, idle = [], [], []
        m, b = grid.HW_MODEL, grid.HW_BATCH
        for n in range(1, grid.HW_MAX_CONCURRENT + 1):
            keys = [f"hw{i}" for i in range(n)]
            cmd = {"op": "time", "model": m, "batch": b, "seconds": self.budget.concurrent_s}
            answers = self._timed([(k, cmd) for k in keys])
            t0, t1 = derive.overlap_window([a["t_start"] for a in answers], [a["t_end"] for a in answers])
            p, f = nv.means(t0, t1)
            trace = self._traced_under_load(keys[0], keys[1:], m, b)
            idle.append(derive.idle_per_kernel(trace.idle_ms, kernels.kernels_per_inference(trace)))
            power.append(p)
            clock.append(f)
            self.step(f"{n} x {m}: {p:.0f} W, {f:.0f} MHz")
        return power, clock, idle

    def _ncu(self, mps: Any | None) -> tuple[dict[str, list[float]], dict[str, Any]]:
        """L2 demand of every model at the diagonal points, one ncu run per point (mps None: the
        program runs after the daemon stopped, on the whole GPU, for an ncu that cannot profile MPS clients)."""
        where = "" if mps is not None else "_nomps"
        diag: dict[str, list[float]] = {m: [] for m in self.opts.models}
        extra: dict[str, Any] = {}
        for b, s in grid.DIAGONAL:
            report = str(self.work / f"l2_b{b}_s{s}{where}")
            program = worker_argv(self.opts.models, [b], self.opts.dtype, self.opts.eager, ncu_reps=2)
            env = {**os.environ, **mps.client_env(s)} if mps is not None else _without_mps(os.environ)
            argv = l2.ncu_profile_command(report, program, mps_client=mps is not None)
            done = subprocess.run(argv, env=env, capture_output=True, text=True,
                                  timeout=self.budget.ncu_timeout_s)
            if done.returncode != 0:
                raise RuntimeError(f"ncu failed at batch {b}, share {s}: {done.stderr.strip()[-400:]} "
                                   f"{done.stdout.strip()[-400:]}")
            csv_text = subprocess.run(l2.ncu_import_command(report), capture_output=True, text=True,
                                      check=True, timeout=120).stdout
            Path(report + ".csv").write_text(csv_text)
            for m, d in l2.demands_by_model(csv_text, self.opts.models, reps=2).items():
                diag[m].append(d.pct_of_peak)
                extra.setdefault(m, {})[f"l2_hit_rate_b{b}_s{s}"] = d.hit_rate_pct
                extra[m][f"kernel_ncu_b{b}"] = d.kernels
            self.step(f"ncu L2 at batch {b}, share {s}{' (outside MPS)' if where else ''}")
        return diag, extra

    def _l2(self, mps: Any | None) -> tuple[dict[str, list[float]], dict[str, Any]] | None:
        """ncu's L2 demands, or None with the failure written in notes."""
        try:
            diag, extra = self._ncu(mps)
        except (RuntimeError, ValueError, OSError, subprocess.SubprocessError) as exc:
            self.opts.notes.append(f"ncu {'outside' if mps is None else 'under'} MPS failed: {exc}"[:600])
            self.step(self.opts.notes[-1])
            return None
        if mps is None:
            self.opts.notes.append("L2 demand measured outside MPS (whole GPU at every diagonal point)")
        return diag, extra

    # -- the run -------------------------------------------------------------------------------
    def run(self, checkpoint: Callable[[list[dict[str, Any]]], None] = lambda _: None) -> list[dict[str, Any]]:
        """Every measurement; the lines with the unit L2 proxy go to `checkpoint` before ncu runs,
        so a run stopped during ncu still leaves a profile."""
        from igniter_opt.platform.mps import MpsDaemon
        from igniter_opt.platform.nvml import GpuSampler, gpu_info

        info = gpu_info()
        with ExitStack() as stack:
            mps = stack.enter_context(MpsDaemon(self.work))
            t_ref = time.monotonic()
            nv = Sampled(stack.enter_context(GpuSampler(interval_s=0.05)), t_ref)
            t0 = time.monotonic()
            time.sleep(grid.IDLE_POWER_S)
            idle_power, _ = nv.means(t0, time.monotonic())
            self.step(f"idle power {idle_power:.1f} W")
            stack.callback(self._close_workers)
            self._start_workers(mps)
            first = self.workers["s100"]
            facts = first.ready
            bw = first.request({"op": "bandwidth"}, 120)
            self.step(f"bandwidth {derive.bandwidth_bytes_per_ms(bw['bytes'], bw['pinned']) / 1e6:.2f} GB/s pinned")
            timings = Timings(info, facts, bw, idle_power, self._grid(nv), self._solo_and_coloc(nv),
                              self._concurrent(nv))
            self._close_workers()
            if self.opts.l2_source != "ncu":
                return self._lines(timings, *_unit_l2(self.opts.models))
            checkpoint(self._lines(timings, *_unit_l2(self.opts.models, "provisional: ncu still to run")))
            l2_demand = self._l2(mps)
        # an ncu that cannot profile MPS clients: once more with the daemon stopped, then the proxy
        l2_demand = l2_demand or self._l2(None)
        if l2_demand is None:
            self.opts.notes.append("L2 demand: unit proxy per co-runner (ncu gave nothing)")
        return self._lines(timings, *(l2_demand or _unit_l2(self.opts.models)))

    def _lines(self, t: Timings, diag: dict[str, list[float]], l2_extra: dict[str, Any]) -> list[dict[str, Any]]:
        """The raw-profile lines of one run's measurements."""
        opts, facts, bw = self.opts, t.facts, t.bandwidth
        light = max(p.clock_mhz for pts in t.points.values() for p in pts)
        F = derive.effective_max_clock(t.info.max_sm_clock_mhz, light)
        notes = list(opts.notes)
        if F != t.info.max_sm_clock_mhz:
            notes.append(f"F = {F:.0f} MHz observed, below NVML max {t.info.max_sm_clock_mhz:.0f} MHz")
        power, clock, idle = t.concurrent
        hw = raw.HardwareMeasurement(
            gpu=t.info.name, idle_power_w=t.idle_power_w, max_clock_mhz=F, power_cap_w=t.info.power_limit_w,
            unit_pct=derive.share_unit(int(facts["sm_count"]), opts.unit_step),
            bandwidth_bytes_per_ms=derive.bandwidth_bytes_per_ms(bw["bytes"], bw["pinned"]),
            concurrent_power_w=power, concurrent_clock_mhz=clock, concurrent_idle_per_kernel_ms=idle,
            extra={"sm_count": facts["sm_count"], "nvmlMaxGPUfrequency": t.info.max_sm_clock_mhz,
                   "bandwidth_pageable": derive.bandwidth_bytes_per_ms(bw["bytes"], bw["pageable"]),
                   "dtype": opts.dtype, "cuda_graphs": not opts.eager, "torch": facts.get("torch"),
                   "cuda": facts.get("cuda"), "budget_s": opts.budget_s, "notes": notes})
        models = []
        for m in opts.models:
            d_in, d_out = facts["io_bytes"][m]
            c = t.colocated[m]
            models.append(raw.ModelMeasurement(
                name=m, input_bytes=float(d_in), output_bytes=float(d_out), grid=t.points[m],
                kernels=int(c["kernels"]), idle_ms=c["idle"], active_ms=c["active"],
                coloc_active_ms=c["active_2"], coloc_power_w=c["power_2"], coloc_clock_mhz=c["clock_2"],
                l2_diagonal=(diag[m][0], diag[m][1], diag[m][2]), l2_coloc=diag[m][1], extra=l2_extra.get(m, {})))
        return raw.raw_lines(hw, models)

    def _close_workers(self) -> None:
        for w in self.workers.values():
            w.close()
        self.workers.clear()


def profile_run(opts: RunOptions, step: Step = lambda _: None) -> Path:
    """Check the host, run the profile and write opts.out (first with the unit L2 proxy, then with
    ncu's demands); returns the path written."""
    check_environment(opts.l2_source)
    t0 = time.monotonic()
    opts.out.parent.mkdir(parents=True, exist_ok=True)

    def write(lines: list[dict[str, Any]]) -> None:
        raw.write_raw(opts.out, [*lines, {"hardware": {"profile_seconds": round(time.monotonic() - t0, 1)}}])
    write(Profiler(opts, step).run(checkpoint=write))
    return opts.out


def gpu_slug(name: str) -> str:
    """'NVIDIA H200' -> 'h200', 'NVIDIA H100 80GB HBM3' -> 'h100' (file names of bundled profiles)."""
    words = [w for w in name.lower().replace("-", " ").split() if w not in ("nvidia", "tesla")]
    return words[0] if words else "gpu"

