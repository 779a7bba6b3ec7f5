"""Least-cost plans over a mixed fleet: exact vs the cost-aware greedy and the best single-type plan.

    python benchmarks/bench_fleets.py                        # 100 workloads, 5 fresh seeds from 3000
    python benchmarks/bench_fleets.py --n 50 --seeds 3 --first-seed 4000 --time-limit 60
    python benchmarks/bench_fleets.py --seeds 3 --first-seed 5000 --plot docs/figures/fleet-cost.png \
        --json docs/figures/fleet-cost.json      # also the figure: cost vs the cheapest single type
    python benchmarks/bench_fleets.py --from-json docs/figures/fleet-cost.json --plot docs/figures/fleet-cost.png
                                                 # the table and figure again from the saved rows (no solving)
    python benchmarks/bench_fleets.py --capped-only slow:38,slow:43,slow:44,slow:38,slow:38
                                                 # only the capped solves, one cap per seed (TYPE:COUNT)

Instances: igniter_opt.bench.fleets.fleet_instance(n, seed, types=2): the `mixed` family's workloads
over a V100 at 2.48/h and a SYNTHETIC slower type at 1.24/h (examples/fleets/synthetic-slow.json,
derived from the V100 profile: k1, k2, k3, k5 x 1.6, clock x 0.8, power cap x 0.7; not a measured
GPU), both unlimited. Per seed, each in a fresh process with one HiGHS thread: the greedy; exact over
the fleet; exact over each type alone (the best single-type plan); and exact with a binding limit:
the type the unlimited optimum uses most capped at 70% of what it uses. Every plan must verify.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

from rich.console import Console
from rich.table import Table

CAP = 0.7  # the binding run caps the most-used type at this fraction of its use


def _solve(args: tuple[int, int, float, str, tuple[int | None, ...] | None]) -> dict:
    """One solve in this (fresh) process: kind 'fleet', 'greedy', a type's name, or 'capped'."""
    from igniter_opt.bench.fleets import fleet_instance
    from igniter_opt.solvers.base import SolveOptions
    from igniter_opt.solvers.solve import solve

    n, seed, limit, kind, counts = args
    inst = fleet_instance(n, seed, types=2, counts=counts)
    solver = "greedy" if kind == "greedy" else "exact"
    if kind not in ("fleet", "greedy", "capped"):
        inst = replace(inst, fleet=tuple(t for t in inst.fleet or () if t.name == kind))
    begin = time.perf_counter()
    plan = solve(inst, solver, options=SolveOptions(time_limit=limit, threads=1))
    return {"kind": kind, "status": plan.status, "cost": plan.cost, "bound": plan.cost_bound,
            "gpus": plan.num_gpus, "types": plan.gpu_types(), "feasible": plan.feasible,
            "seconds": time.perf_counter() - begin, "message": plan.message}


def _fresh(ctx: mp.context.BaseContext, args: tuple) -> dict:
    with ctx.Pool(1) as pool:  # type: ignore[attr-defined]
        return pool.apply(_solve, (args,))


def run(n: int, first_seed: int, seeds: int, limit: float, console: Console) -> list[dict]:
    ctx = mp.get_context("spawn")
    rows = []
    for seed in range(first_seed, first_seed + seeds):
        fleet = _fresh(ctx, (n, seed, limit, "fleet", None))
        if fleet["status"] != "infeasible" and not fleet["feasible"]:
            sys.exit(f"seed {seed}: exact's plan does not verify: {fleet['message']}")
        greedy = _fresh(ctx, (n, seed, limit, "greedy", None))
        singles = [_fresh(ctx, (n, seed, limit, t, None)) for t in ("v100", "slow")]
        used = {t: fleet["types"].count(t) for t in ("v100", "slow")}
        most = max(used, key=lambda t: used[t])
        cap = int(CAP * used[most])
        capped = _fresh(ctx, (n, seed, limit, "capped", tuple(cap if t == most else None for t in ("v100", "slow"))))
        respected = capped["types"].count(most) <= cap
        best_single = min((s["cost"] for s in singles if s["feasible"]), default=None)
        row = {"seed": seed, "fleet": fleet, "greedy": greedy, "singles": singles, "best_single": best_single,
               "capped": capped, "cap": f"{most}<={cap}", "respected": respected}
        console.print(f"seed {seed}: exact {fleet['cost']}/h ({fleet['status']}, {fleet['seconds']:.1f} s, "
                      f"{used}), greedy {greedy['cost']}{'' if greedy['feasible'] else ' (breaks the model)'}, "
                      f"single types {[s['cost'] for s in singles]}, capped {most}<={cap}: {capped['cost']} "
                      f"({capped['status']}, {capped['seconds']:.1f} s)", style="dim", highlight=False)
        rows.append(row)
    return rows


def run_capped(n: int, first_seed: int, caps: list[tuple[str, int]], limit: float, console: Console) -> list[dict]:
    """Only the capped solves: seed first_seed + i with caps[i] (the type and its count)."""
    ctx = mp.get_context("spawn")
    rows = []
    for i, (kind, cap) in enumerate(caps):
        seed = first_seed + i
        capped = _fresh(ctx, (n, seed, limit, "capped", tuple(cap if t == kind else None for t in ("v100", "slow"))))
        if capped["status"] != "infeasible" and not capped["feasible"]:
            sys.exit(f"seed {seed}: the capped plan does not verify: {capped['message']}")
        rows.append({"seed": seed, "cap": f"{kind}<={cap}", "capped": capped,
                     "respected": capped["types"].count(kind) <= cap})
        console.print(f"seed {seed}: capped {kind}<={cap}: {capped['cost']} ({capped['status']}, bound "
                      f"{capped['bound']}, {capped['seconds']:.1f} s)", style="dim", highlight=False)
    return rows


def capped_table(rows: list[dict], title: str) -> Table:
    t = Table(title=title)
    for col in ("seed", "cap", "capped cost/h", "bound", "status", "s", "GPUs (v100+slow)", "cap kept"):
        t.add_column(col, justify="right")
    for r in rows:
        c = r["capped"]
        t.add_row(str(r["seed"]), r["cap"], f"{c['cost']}", f"{c['bound']}", c["status"], f"{c['seconds']:.1f}",
                  f"{c['types'].count('v100')}+{c['types'].count('slow')}", "yes" if r["respected"] else "NO")
    proven = sum(r["capped"]["status"] == "optimal" for r in rows)
    t.caption = f"proven {proven}/{len(rows)}; median {statistics.median(r['capped']['seconds'] for r in rows):.1f} s"
    return t


def _caps(text: str) -> list[tuple[str, int]]:
    out = []
    for item in text.split(","):
        kind, _, count = item.partition(":")
        if kind not in ("v100", "slow") or not count.isdigit():
            raise SystemExit(f"--capped-only {text!r}: expected TYPE:COUNT[,TYPE:COUNT...] with TYPE v100 or slow")
        out.append((kind, int(count)))
    return out


def table(rows: list[dict], title: str) -> Table:
    t = Table(title=title)
    for col in ("seed", "exact cost/h", "proven", "exact s", "GPUs (v100+slow)", "greedy cost/h",
                "v100-only", "slow-only", "capped", "capped cost/h", "capped proven, s", "cap kept"):
        t.add_column(col, justify="right")
    for r in rows:
        f, g, c = r["fleet"], r["greedy"], r["capped"]
        t.add_row(str(r["seed"]), f"{f['cost']}", f["status"], f"{f['seconds']:.1f}",
                  f"{f['types'].count('v100')}+{f['types'].count('slow')}",
                  f"{g['cost']}{'' if g['feasible'] else '!'}",
                  *(f"{s['cost']}" + ("" if s["status"] == "optimal" else "~") for s in r["singles"]),
                  r["cap"], f"{c['cost']}", f"{c['status']}, {c['seconds']:.1f}", "yes" if r["respected"] else "NO")
    secs = [r["fleet"]["seconds"] for r in rows]
    vs_greedy = all(r["fleet"]["cost"] <= r["greedy"]["cost"] + 1e-9 for r in rows)
    vs_single = all(r["best_single"] is None or r["fleet"]["cost"] <= r["best_single"] + 1e-9 for r in rows)
    t.caption = (f"median exact {statistics.median(secs):.1f} s, max {max(secs):.1f} s; proven "
                 f"{sum(r['fleet']['status'] == 'optimal' for r in rows)}/{len(rows)}; exact never costlier than "
                 f"the greedy: {vs_greedy}; than the best single type: {vs_single}"
                 f"\n!: the greedy's plan breaks the model; ~: single-type exact not proven in the limit")
    return t


def plot_points(rows: list[dict]) -> list[dict]:
    """The figure's numbers per seed (bench.plots.plot_fleet_cost): each plan's cost per hour."""
    return [{"seed": r["seed"], "cheapest_single": r["best_single"], "exact": r["fleet"]["cost"],
             "greedy": r["greedy"]["cost"], "greedy_breaks": not r["greedy"]["feasible"], "capped": r["capped"]["cost"],
             "singles": {t: s["cost"] for t, s in zip(("v100", "slow"), r["singles"]) if s["feasible"]}}
            for r in rows]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100, help="workloads per instance")
    ap.add_argument("--seeds", type=int, default=5, help="instances")
    ap.add_argument("--first-seed", type=int, default=3000, help="first seed (the solver was developed on 0-300)")
    ap.add_argument("--time-limit", type=float, default=60.0, help="seconds per exact solve")
    ap.add_argument("--plot", type=Path, help="write the figure (cost vs the cheapest single-type plan) to this PNG")
    ap.add_argument("--json", type=Path, help="write the rows (every solve's cost, status, seconds) to this JSON")
    ap.add_argument("--from-json", type=Path, help="no solving: the rows of an earlier --json (with its arguments)")
    ap.add_argument("--capped-only", help="only the capped solves, one TYPE:COUNT per seed from --first-seed "
                                          "(e.g. slow:38,slow:43); the caps the full run derives are in its table")
    args = ap.parse_args(argv)
    console = Console(width=200)
    if args.capped_only:
        caps = _caps(args.capped_only)
        rows = run_capped(args.n, args.first_seed, caps, args.time_limit, console)
        console.print(capped_table(rows, f"least cost with a binding cap, n={args.n}, seeds {args.first_seed}.."
                                         f"{args.first_seed + len(caps) - 1}, {args.time_limit:g} s per solve"))
        if args.json:
            args.json.write_text(json.dumps({"command": "python benchmarks/bench_fleets.py " + " ".join(
                argv if argv is not None else sys.argv[1:]), "rows": rows}, indent=1) + "\n")
        return
    command = "python benchmarks/bench_fleets.py " + " ".join(argv if argv is not None else sys.argv[1:])
    if args.from_json:
        saved = json.loads(args.from_json.read_text())
        command, rows = saved["command"], saved["rows"]
        args = ap.parse_args(command.split()[2:] + [a for a in ("--plot", str(args.plot)) if args.plot])
        args.json = None
        console.print(f"rows of: {command}")
    else:
        rows = run(args.n, args.first_seed, args.seeds, args.time_limit, console)
    console.print(table(rows, f"least cost over v100 (2.48/h) + SYNTHETIC slow type (1.24/h), n={args.n}, seeds "
                              f"{args.first_seed}..{args.first_seed + args.seeds - 1}, one HiGHS thread, "
                              f"{args.time_limit:g} s per exact solve"))
    if args.json:
        args.json.write_text(json.dumps({"command": command, "rows": rows}, indent=1) + "\n")
    if args.plot:
        from igniter_opt.bench.plots import plot_fleet_cost

        plot_fleet_cost(plot_points(rows), args.plot,
                        f"n={args.n}, seeds {args.first_seed}..{args.first_seed + args.seeds - 1}: v100 2.48/h + "
                        f"SYNTHETIC slow 1.24/h, % of the cheapest single-type exact plan\n(hatched: the greedy's "
                        f"plan breaks the model; {args.time_limit:g} s per exact solve)")
        console.print(f"figure: {args.plot}")


if __name__ == "__main__":
    main()
