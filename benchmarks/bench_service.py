"""Benchmark of `igniter serve`'s planner: admission latency, and disturbance of the exact re-plan.

    python benchmarks/bench_service.py                      # everything (about 10 minutes on 2 cores)
    python benchmarks/bench_service.py --only latency --samples 20

1. Admission latency (planning + verify + SQLite commit, no server start: --backend none) with
   N workloads running: the `igniter` policy at N = 10 and 200, `exact` at N = 32 and 100. Each
   sample admits one random workload into the same N (it is removed again, unmeasured).
2. Disturbance: from a running plan of 32 workloads (the exact policy's own), 20 random single
   changes (a rate x0.5..2, an SLO x0.7..1.5, an arrival or a removal); for each, the running
   workloads whose GPU, share or batch changes under the exact policy's re-plan, against a
   from-scratch exact plan of the same set with its GPUs matched to the running slots at best
   (Hungarian assignment on unchanged workloads), and both plans' GPU counts.

Workloads are drawn like igniter_opt.bench.generate.mixed_instance (model uniform, SLO in the
model's range, rate 50-400 req/s), skipping those that need more than one GPU (the service places
a workload on one GPU). Seeds fixed; one HiGHS thread.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table
from scipy.optimize import linear_sum_assignment

from igniter_opt.bench.generate import MIXED_RATE, MIXED_SLO
from igniter_opt.controller.core import Config, Controller
from igniter_opt.controller.dataplane import NoPlane
from igniter_opt.controller.placement import Unplaceable, demand, gpus_of, place_igniter, verified
from igniter_opt.controller.records import Placement, Plan, PlanInfo, Spec
from igniter_opt.controller.replan import _stage1, replan_exact
from igniter_opt.model import Profile, load_profile


def draw(rng: np.random.Generator, profile: Profile, name: str) -> Spec:
    """A random workload that one GPU can serve."""
    models = list(MIXED_SLO)
    while True:
        model = models[int(rng.integers(len(models)))]
        spec = Spec(name, model, float(round(rng.uniform(*MIXED_SLO[model]))), float(round(rng.uniform(*MIXED_RATE))))
        try:
            demand(profile, spec)
            return spec
        except Unplaceable:
            continue


def running(ctl: Controller, specs: list[Spec]) -> None:
    """Make `specs` the controller's running plan (the igniter policy's placement, committed)."""
    plan = verified(place_igniter(ctl.profile, ctl.config.gpus, {}, specs), ctl.profile)
    with ctl.store.transaction() as db:
        ctl.store.write_plan(db, plan, PlanInfo())


def latency(policy: str, n: int, samples: int, seed: int, time_limit: float) -> list[float]:
    profile = load_profile("v100")
    rng = np.random.default_rng(seed + n)
    with tempfile.TemporaryDirectory() as tmp:
        ctl = Controller(Config(state_dir=Path(tmp), gpus=10 * n, policy=policy, time_limit_s=time_limit),
                         NoPlane(), profile)
        ctl.start()
        running(ctl, [draw(rng, profile, f"w{i}") for i in range(n)])
        times = []
        for k in range(samples):
            spec = draw(rng, profile, f"new{k}")
            t0 = time.perf_counter()
            ctl.add([spec])
            times.append(time.perf_counter() - t0)
            ctl.remove(spec.name) if policy == "igniter" else _restore(ctl, spec.name)
        ctl.close()
    return times


def _restore(ctl: Controller, name: str) -> None:
    """Drop the admitted workload without a re-plan (keeps N running for the next sample)."""
    plan = {n: p for n, p in ctl.plan().items() if n != name}
    with ctl.store.transaction() as db:
        ctl.store.write_plan(db, plan, ctl.store.plan_info())


def matched_changes(current: Plan, scratch: Plan, others: set[str]) -> int:
    """Changed running workloads of a from-scratch plan whose GPUs are matched to slots at best."""
    cur_slots = sorted(gpus_of(current))
    new_gpus = list(gpus_of(scratch).values())
    gain = np.zeros((len(new_gpus), max(1, len(cur_slots))))
    for i, members in enumerate(new_gpus):
        for j, slot in enumerate(cur_slots):
            gain[i, j] = sum(1 for m in members if m.name in others and current[m.name].gpu == slot
                             and current[m.name].batch == m.batch
                             and abs(current[m.name].share_pct - m.share_pct) < 1e-9)
    rows, cols = linear_sum_assignment(-gain)
    return len(others) - int(gain[rows, cols].sum())


def disturbance(changes: int, seed: int, time_limit: float) -> list[dict]:
    profile = load_profile("v100")
    rng = np.random.default_rng(seed)
    specs = [draw(rng, profile, f"w{i}") for i in range(32)]
    fleet = 100
    current, _ = replan_exact(profile, fleet, {}, specs, set(s.name for s in specs), time_limit=time_limit)
    current = verified(current, profile)
    rows = []
    for k in range(changes):
        names = sorted(current)
        kind = ["rate", "slo", "add", "remove"][int(rng.integers(4))]
        specs_now = {n: p.spec for n, p in current.items()}
        subject = names[int(rng.integers(len(names)))]
        old = specs_now[subject]
        if kind == "rate":
            rate = float(round(old.rate_rps * rng.uniform(0.5, 2)))
            specs_now[subject] = Spec(subject, old.model, old.slo_ms, rate)
        elif kind == "slo":
            slo = float(round(old.slo_ms * rng.uniform(0.7, 1.5)))
            specs_now[subject] = Spec(subject, old.model, slo, old.rate_rps)
        elif kind == "add":
            subject = f"n{k}"
            specs_now[subject] = draw(rng, profile, subject)
        else:
            del specs_now[subject]
        try:
            demand(profile, specs_now.get(subject, old))
        except Unplaceable:
            continue
        subjects = {subject} if subject in specs_now else set()
        others = {n for n in current if n in specs_now and n not in subjects}
        t0 = time.perf_counter()
        new, info = replan_exact(profile, fleet, current, list(specs_now.values()), subjects, time_limit=time_limit)
        seconds = time.perf_counter() - t0
        new = verified(new, profile)
        scratch_plan = _stage1(profile, list(specs_now.values()), 0.0, time_limit, "paper")
        scratch = {w.name: Placement(specs_now[w.name], j, w.resource_pct, w.batch)
                   for j, g in enumerate(scratch_plan.gpus) for w in g.workloads}
        rows.append({"change": kind, "replan_changed": info.objectives["changes"]["value"],
                     "bound": info.objectives["changes"]["lower_bound"],
                     "status": info.objectives["changes"]["status"],
                     "scratch_changed": matched_changes(current, scratch, others), "running": len(others),
                     "gpus": len(gpus_of(new)), "scratch_gpus": scratch_plan.num_gpus, "seconds": seconds})
        current = new
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("latency", "disturbance"), default=None)
    parser.add_argument("--samples", type=int, default=30, help="admissions per (policy, N); exact uses a third")
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--time-limit", type=float, default=30.0, help="exact: seconds per stage")
    args = parser.parse_args()
    console = Console(width=160)
    if args.only in (None, "latency"):
        table = Table(title="admission latency (planning + verify + state; no server start)")
        for col in ("policy", "running", "samples", "p50 ms", "p99 ms", "max ms"):
            table.add_column(col, justify="right")
        for policy, n in (("igniter", 10), ("igniter", 200), ("exact", 32), ("exact", 100)):
            k = args.samples if policy == "igniter" else max(5, args.samples // 3)
            ms = np.array(latency(policy, n, k, args.seed, args.time_limit)) * 1000
            table.add_row(policy, str(n), str(k), f"{np.percentile(ms, 50):.1f}", f"{np.percentile(ms, 99):.1f}",
                          f"{ms.max():.1f}")
            console.print(f"{policy} n={n} done")
        console.print(table)
    if args.only in (None, "disturbance"):
        rows = disturbance(args.changes, args.seed, args.time_limit)
        table = Table(title="changed running workloads per single change (32 running): exact re-plan vs from scratch")
        for col in ("#", "change", "re-plan changed", "bound", "status", "scratch changed", "running", "GPUs",
                    "scratch GPUs", "s"):
            table.add_column(col, justify="right")
        for i, r in enumerate(rows):
            table.add_row(str(i), r["change"], str(r["replan_changed"]), str(r["bound"]), r["status"],
                          str(r["scratch_changed"]), str(r["running"]), str(r["gpus"]), str(r["scratch_gpus"]),
                          f"{r['seconds']:.1f}")
        console.print(table)
        console.print(f"mean changed: re-plan {statistics.mean(r['replan_changed'] for r in rows):.2f}, from scratch "
                      f"{statistics.mean(r['scratch_changed'] for r in rows):.2f} over {len(rows)} changes; GPUs "
                      f"re-plan <= scratch in {sum(r['gpus'] <= r['scratch_gpus'] for r in rows)} of {len(rows)}")


if __name__ == "__main__":
    main()
