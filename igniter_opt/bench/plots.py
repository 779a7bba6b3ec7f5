"""The report's figures (matplotlib, Agg): GPUs saved vs size, solve time vs size, gap distribution;
and benchmarks/bench_fleets.py's cost vs the cheapest single-type plan."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from igniter_opt.bench.report import ALL_SIZES, Report, gaps

COLORS = {"greedy": "tab:blue", "ffd": "tab:orange", "milp": "tab:green", "patterns": "tab:red",
          "exact": "tab:purple"}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_saved(report: Report, path: Path) -> Path:
    """GPUs saved (%) by the exact solver over the baseline, against size, one line per family."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    by_family = defaultdict(list)
    for g in report.groups:
        if g.size != ALL_SIZES and g.saved_pct is not None:
            by_family[g.family].append((g.size, g.saved_pct, g.fewer_pct))
    for family, points in sorted(by_family.items()):
        size, saved, fewer = np.array(points).T
        line, = ax.plot(size, saved, marker="o", label=f"{family}: GPUs saved")
        ax.plot(size, fewer, marker="x", linestyle=":", color=line.get_color(),
                label=f"{family}: instances with fewer GPUs")
    if by_family:
        ax.set_title(f"{report.exact} vs {report.baseline}: GPUs saved (mean %, solid) and "
                     f"instances improved (%, dotted)", fontsize=9)
        ax.legend(fontsize=7, ncol=2, loc="best")
    else:
        ax.text(0.5, 0.5, "no exact-solver results to compare", ha="center", va="center",
                transform=ax.transAxes)
    ax.set_xlabel("workloads per instance")
    ax.set_ylabel("%")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_time(report: Report, path: Path) -> Path:
    """Solve time against size (log scale): every task as a dot, the median per size as a line."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    for s in report.solvers:
        rows = [(r.workloads, r.seconds) for r in report.results if r.solver == s and r.seconds
                and r.status not in ("error", "crashed")]
        if not rows:
            continue
        size, secs = np.array(rows, dtype=float).T
        color = COLORS.get(s)
        jitter = size * (1 + 0.02 * (list(report.solvers).index(s) - len(report.solvers) / 2))
        ax.scatter(jitter, secs, s=8, alpha=0.3, color=color)
        sizes = np.unique(size)
        medians = [np.median(secs[size == n]) for n in sizes]
        ax.plot(sizes, medians, marker="o", color=color, label=f"{s} (median)")
    sizes = sorted({r.workloads for r in report.results if r.workloads})
    ax.set_xticks(sizes if len(sizes) <= 12 else sizes[:: -(-len(sizes) // 12)])
    ax.set_yscale("log")
    ax.set_xlabel("workloads per instance")
    ax.set_ylabel("solve time (s, log)")
    ax.set_title("Solve time vs instance size (all families)", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_gap(report: Report, path: Path) -> Path:
    """Histogram of the gap (%) of each solver's feasible plans to the instance's best lower bound."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    by_solver = {s: 100 * gaps(report, s) for s in report.solvers}
    by_solver = {s: g for s, g in by_solver.items() if g.size}
    if by_solver:
        top = max(5.0, max(float(g.max()) for g in by_solver.values()))
        bins = np.linspace(0, top, 21)
        for s, g in by_solver.items():
            ax.hist(g, bins=bins, histtype="step", linewidth=1.6, color=COLORS.get(s),
                    label=f"{s} (n={g.size}, mean {g.mean():.1f}%)")
        ax.legend(fontsize=8)
    ax.set_xlabel("gap (%) = (GPUs - best lower bound) / GPUs")
    ax.set_ylabel("feasible plans")
    ax.set_title("Gap to the best lower bound any solver proved (feasible plans only)", fontsize=10)
    ax.grid(alpha=0.3)
    return _save(fig, path)


FLEET_SERIES = (("exact", "exact over the fleet", "tab:purple"), ("greedy", "fleet greedy", "tab:blue"),
                ("capped", "exact, most-used type capped", "tab:gray"))


def fleet_cost_series(points: Sequence[dict]) -> list[tuple[str, str, list[float]]]:
    """(label, color, % of the cheapest single-type plan per point) for each plan kind; NaN where a
    point has no such plan. `points`: {"seed", "cheapest_single" (cost/h), "singles" ({type:
    cost/h}), "exact", "greedy", "capped" (cost/h or None), "greedy_breaks" (bool)}."""
    types = sorted({t for p in points for t in p["singles"]})
    series = [(k, label, color) for k, label, color in FLEET_SERIES] + \
             [(f"single:{t}", f"{t} only (exact)", c) for t, c in zip(types, ("tab:green", "tab:orange", "tab:olive"))]
    out = []
    for key, label, color in series:
        costs = [p["singles"].get(key[7:]) if key.startswith("single:") else p.get(key) for p in points]
        out.append((label, color, [float("nan") if c is None or not p["cheapest_single"]
                                   else 100 * c / p["cheapest_single"] for c, p in zip(costs, points)]))
    return out


def plot_fleet_cost(points: Sequence[dict], path: Path, title: str = "") -> Path:
    """Cost of each fleet plan as % of the cheapest single-type plan of its instance, one group of
    bars per seed (points: fleet_cost_series); the greedy's bar is hatched where its plan breaks
    the model."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.8), dpi=120)
    series = fleet_cost_series(points)
    width = 0.8 / len(series)
    x = np.arange(len(points))
    for j, (label, color, values) in enumerate(series):
        bars = ax.bar(x + (j - (len(series) - 1) / 2) * width, values, width, color=color, label=label)
        for bar, p in zip(bars, points):
            if label == "fleet greedy" and p.get("greedy_breaks"):
                bar.set_hatch("//")
                bar.set_edgecolor("white")
    ax.axhline(100, color="black", linewidth=0.8, linestyle="--")
    ax.set_xticks(x, [f"seed {p['seed']}\n({_f(p['cheapest_single'])}/h)" for p in points], fontsize=8)
    shown = [v for _, _, values in series for v in values if not np.isnan(v)]
    ax.set_ylim(max(0.0, min([100.0, *shown]) - 10), max([100.0, *shown]) + 8)
    ax.set_ylabel("cost per hour, % of the cheapest single-type plan")
    ax.set_title(title or "Fleet plans vs the cheapest single-type plan (hatched: breaks the model)", fontsize=9)
    ax.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.16))
    ax.grid(alpha=0.3, axis="y")
    return _save(fig, path)


def _f(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path)
    _plt().close(fig)
    return path


def write_figures(report: Report, out: Path) -> list[Path]:
    """All three figures as PNGs in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    return [plot_saved(report, out / "gpus_saved.png"), plot_time(report, out / "solve_time.png"),
            plot_gap(report, out / "gap.png")]
