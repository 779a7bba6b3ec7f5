"""Reports over a batch's results CSV: per family and size, exact vs greedy, time, broken SLOs.

Definitions (also written into report.md):
- a solver "has a plan" on an instance when its row has a GPU count and status optimal,
  heuristic, feasible, time_limit or interrupted; mean GPUs is over the instances where it has one,
  and a mean marked † includes plans that break an SLO under the model (how many: last table);
- the exact solver is compared with the baseline (greedy) on the instances where both have a plan
  and both plans are verified (neither breaks an SLO under the model): "fewer" is the share where
  the exact one uses fewer GPUs, "saved" the mean of 100 (g - e) / g; a baseline plan that breaks
  the model is no plan to beat, so it is left out of the comparison;
- solve-time percentiles cover every row that ran (timeouts count with the time they used);
- "SLO broken" counts plans whose predicted latency or throughput breaks an SLO under the model;
- gap is (gpus - best lower bound) / gpus over feasible plans, the best lower bound of an instance
  being the largest any solver reported (the exact solver's proof, else the sizing bound).
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rich.table import Table

from igniter_opt.bench.results import latest_rows, read_results_counted
from igniter_opt.data.errors import InputError
from igniter_opt.data.schema import ResultRowSpec, parse
from igniter_opt.solvers.registry import exact_solvers, solver_names

PLAN_STATUSES = ("optimal", "heuristic", "feasible", "time_limit", "interrupted")
SOLVER_ORDER = tuple(solver_names())  # columns in registry order
EXACT_SOLVERS = tuple(exact_solvers())  # the first present is compared with the baseline
PERCENTILES = (50, 90, 100)
ALL_SIZES = 0  # the size key of a family's summary line


@dataclass(frozen=True)
class ResultRow:
    """One parsed CSV row."""

    instance: str
    family: str
    workloads: int
    solver: str
    status: str
    gpus: int | None
    lower_bound: int | None
    gap: float | None
    seconds: float | None
    feasible: bool
    cost: float | None = None  # price per hour of the plan (a fleet with prices), else None

    @property
    def has_plan(self) -> bool:
        return self.status in PLAN_STATUSES and self.gpus is not None


def kind_of(instance: str, family: str) -> str:
    """`family/kind` when the file is named <family>-<kind>-n<N>-..., else the family."""
    parts = Path(instance).stem.split("-")
    if len(parts) > 2 and parts[0] == family and not re.fullmatch(r"n\d+", parts[1]):
        return f"{family}/{parts[1]}"
    return family


def parse_rows(rows: Iterable[dict[str, str]], by_kind: bool = False, origin: str = "results") -> list[ResultRow]:
    """Typed results from CSV rows (the last row per (instance, solver) wins).

    Each row is validated (data/schema.py: ResultRowSpec); a bad cell is an InputError naming
    `origin`, the row and the column. by_kind: label each row `family/kind` from its file name
    (stress/tight, paper/loose, ...).
    """
    label = kind_of if by_kind else (lambda _instance, family: family)
    rows = list(rows)
    checked = {id(r): parse(ResultRowSpec, r, f"{origin}: row {i + 1}") for i, r in enumerate(rows)}
    known = set(solver_names())
    for i, r in enumerate(rows):
        if checked[id(r)].solver not in known:
            raise InputError(f"{origin}: row {i + 1}: field solver: {checked[id(r)].solver!r} is not a solver "
                             f"(known: {', '.join(sorted(known))})")
    typed = [checked[id(r)] for r in latest_rows(rows).values()]
    return [ResultRow(instance=r.instance, family=label(r.instance, r.family or "-"), workloads=r.workloads or 0,
                   solver=r.solver, status=r.status, gpus=r.gpus, lower_bound=r.lower_bound, gap=r.gap,
                   seconds=r.seconds, feasible=r.feasible == "True", cost=r.cost)
            for r in typed]


@dataclass
class GroupStats:
    """Numbers of one (family, size) group; size ALL_SIZES is the family's summary."""

    family: str
    size: int
    instances: int
    mean_gpus: dict[str, float] = field(default_factory=dict)
    mean_cost: dict[str, tuple[float, int, int]] = field(default_factory=dict)  # (mean, plans, broken)
    plans: dict[str, int] = field(default_factory=dict)
    time_pct: dict[str, tuple[float, ...]] = field(default_factory=dict)
    slo_broken: dict[str, int] = field(default_factory=dict)
    optimal: dict[str, int] = field(default_factory=dict)
    paired: int = 0
    fewer_pct: float | None = None
    saved_pct: float | None = None


@dataclass
class Report:
    """All groups plus the raw results, the solvers present and the comparison made."""

    results: list[ResultRow]
    solvers: list[str]
    exact: str | None
    baseline: str
    groups: list[GroupStats]
    skipped: int = 0  # rows of the CSV cut short (a killed batch), not counted


def ordered_solvers(names: Iterable[str]) -> list[str]:
    names = set(names)
    return [s for s in SOLVER_ORDER if s in names] + sorted(names - set(SOLVER_ORDER))


def paired_savings(results: Sequence[ResultRow], exact: str, baseline: str) -> np.ndarray:
    """(baseline GPUs, exact GPUs) per instance where both have a plan and both plans verify."""
    by = {(r.instance, r.solver): r for r in results}
    pairs = [(by[(i, baseline)].gpus, by[(i, exact)].gpus)
             for i in sorted({r.instance for r in results})
             if (i, baseline) in by and (i, exact) in by and by[(i, baseline)].has_plan
             and by[(i, baseline)].feasible and by[(i, exact)].has_plan and by[(i, exact)].feasible]
    return np.array(pairs, dtype=float).reshape(-1, 2)


def group_stats(family: str, size: int, results: Sequence[ResultRow], solvers: Sequence[str],
                exact: str | None, baseline: str) -> GroupStats:
    """The numbers of one group of results."""
    stats = GroupStats(family, size, instances=len({r.instance for r in results}))
    for s in solvers:
        rows = [r for r in results if r.solver == s]
        planned = [r for r in rows if r.has_plan]
        stats.plans[s] = len(planned)
        if planned:
            stats.mean_gpus[s] = float(np.mean([r.gpus for r in planned if r.gpus is not None]))
        times = [r.seconds for r in rows if r.seconds is not None and r.status not in ("error", "crashed")]
        if times:
            stats.time_pct[s] = tuple(float(v) for v in np.percentile(times, PERCENTILES))
        stats.slo_broken[s] = sum(not r.feasible for r in planned)
        costed = [(r.cost, r.feasible) for r in planned if r.cost is not None]
        if costed:
            stats.mean_cost[s] = (float(np.mean([c for c, _ in costed])), len(costed),
                                  sum(not ok for _, ok in costed))
        stats.optimal[s] = sum(r.status == "optimal" for r in rows)
    if exact is not None:
        pairs = paired_savings(results, exact, baseline)
        stats.paired = len(pairs)
        if len(pairs):
            g, e = pairs[:, 0], pairs[:, 1]
            stats.fewer_pct = float(100 * np.mean(e < g))
            stats.saved_pct = float(100 * np.mean((g - e) / g))
    return stats


def build_report(results: list[ResultRow], exact: str | None = None, baseline: str = "greedy") -> Report:
    """Group by family and size (plus one summary line per family) and compute every number."""
    solvers = ordered_solvers(r.solver for r in results)
    if exact is None:
        exact = next((s for s in EXACT_SOLVERS if s in solvers), None)
    if exact is not None and (exact not in solvers or baseline not in solvers or exact == baseline):
        exact = None
    groups: dict[tuple[str, int], list[ResultRow]] = defaultdict(list)
    for r in results:
        groups[(r.family, r.workloads)].append(r)
        groups[(r.family, ALL_SIZES)].append(r)
    stats = [group_stats(f, n, rows, solvers, exact, baseline)
             for (f, n), rows in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1] or 10**9))]
    return Report(results, solvers, exact, baseline, stats)


def gaps(report: Report, solver: str) -> np.ndarray:
    """Gap (fraction) of each feasible plan of a solver to its instance's best lower bound."""
    best: dict[str, int] = {}
    for r in report.results:
        if r.lower_bound is not None:
            best[r.instance] = max(best.get(r.instance, 0), r.lower_bound)
    return np.array([(r.gpus - best[r.instance]) / r.gpus for r in report.results
                     if r.solver == solver and r.has_plan and r.feasible and r.gpus and r.instance in best])


def load_report(csv_path: str | Path, exact: str | None = None, baseline: str = "greedy",
                by_kind: bool = False) -> Report:
    rows, skipped = read_results_counted(csv_path)
    report = build_report(parse_rows(rows, by_kind, str(csv_path)), exact, baseline)
    report.skipped = skipped
    return report


def _f(value: float | None, fmt: str = "{:.2f}") -> str:
    return "–" if value is None else fmt.format(value)


# Written into report.md only when the results carry a cost (reports of single-type rows are unchanged).
COST_DEFINITION = ("- mean cost (issue 21: instances whose fleet has prices) is the mean price per hour of a solver's\n"
                   "  plans over the instances where its plan has a cost, n the number of such plans; † as for GPUs.")
BROKEN_MARK = "†"
BROKEN_NOTE = f"{BROKEN_MARK}: the mean includes plans that break an SLO under the model (how many: last table)"


def _mean(g: GroupStats, solver: str) -> str:
    """Mean GPUs, marked when some of the plans it averages break an SLO under the model."""
    text = _f(g.mean_gpus.get(solver))
    return text + BROKEN_MARK if g.slo_broken.get(solver) and solver in g.mean_gpus else text


def _cost(g: GroupStats, solver: str) -> str:
    """Mean cost per hour and how many plans it averages, marked as `_mean` marks GPUs."""
    if solver not in g.mean_cost:
        return "–"
    mean, n, broken = g.mean_cost[solver]
    return f"{mean:.2f} (n={n})" + (BROKEN_MARK if broken else "")


def _times(t: tuple[float, ...] | None) -> str:
    return "–" if t is None else "/".join(f"{v:.2g}" for v in t)


def tables(report: Report) -> list[tuple[str, list[str], list[list[str]]]]:
    """The report's tables as (title, header, rows) for Markdown and rich alike."""
    heur = [s for s in report.solvers if s not in EXACT_SOLVERS]
    size = lambda g: "all" if g.size == ALL_SIZES else str(g.size)  # noqa: E731
    head = ["family", "size", "n"]
    gpu_cols = [f"GPUs {s}" for s in report.solvers]
    cmp_cols = []
    if report.exact:
        cmp_cols = [f"{report.exact} < {report.baseline} (%)", "GPUs saved (%)", f"{report.exact} optimal"]
    gpu_rows = []
    for g in report.groups:
        row = [g.family, size(g), str(g.instances)] + [_mean(g, s) for s in report.solvers]
        if report.exact:
            row += [_f(g.fewer_pct, "{:.1f}"), _f(g.saved_pct, "{:.1f}"),
                    f"{g.optimal.get(report.exact, 0)}/{g.instances}"]
        gpu_rows.append(row)
    time_rows = [[g.family, size(g), str(g.instances)] + [_times(g.time_pct.get(s)) for s in report.solvers]
                 for g in report.groups]
    slo_rows = [[g.family, size(g), str(g.instances)] + [f"{g.slo_broken.get(s, 0)}/{g.plans.get(s, 0)}"
                                                          for s in heur] for g in report.groups]
    pcts = "/".join("max" if p == 100 else f"p{p}" for p in PERCENTILES)
    cost = []
    if any(r.cost is not None for r in report.results):
        cost_rows = [[g.family, size(g), str(g.instances)] + [_cost(g, s) for s in report.solvers]
                     for g in report.groups if g.mean_cost]
        cost = [("Mean cost per hour per solver (instances whose fleet has prices; n: plans)",
                 head + [f"cost {s}" for s in report.solvers], cost_rows)]
    return [
        ("Mean GPUs per solver" + (f", {report.exact} vs {report.baseline}" if report.exact else ""),
         head + gpu_cols + cmp_cols, gpu_rows),
        *cost,
        (f"Solve time (s, {pcts})", head + report.solvers, time_rows),
        ("Plans that break an SLO under the model (broken/plans)", head + heur, slo_rows),
    ]


def rich_tables(report: Report) -> list[Table]:
    out = []
    for title, header, rows in tables(report):
        marked = any(BROKEN_MARK in c for row in rows for c in row)
        table = Table(title=title, caption=BROKEN_NOTE if marked else None)
        for i, col in enumerate(header):
            table.add_column(col, justify="left" if i == 0 else "right", no_wrap=i < 3)
        for row in rows:
            table.add_row(*row, end_section=row[1] == "all")
        out.append(table)
    return out


def markdown(report: Report, source: str, figures: Sequence[str] = (), meta: dict | None = None) -> str:
    """report.md: provenance, the three tables, the figures and the definitions."""
    lines = ["# Benchmark report", "", f"Results: `{source}`, {len(report.results)} rows, "
             f"{len({r.instance for r in report.results})} instances, solvers: {', '.join(report.solvers)}."]
    failed: defaultdict[str, int] = defaultdict(int)
    for r in report.results:
        if r.status in ("error", "crashed", "timeout", "infeasible"):
            failed[f"{r.solver} {r.status}"] += 1
    if failed:
        lines.append("Rows without a plan: " + ", ".join(f"{k}: {v}" for k, v in sorted(failed.items())) + ".")
    for run in (meta or {}).get("runs", []):
        lines += ["", f"- `{run.get('command', '')}`  ", f"  on {run.get('machine', '?')}; "
                  f"{run.get('started', '?')} to {run.get('finished', '?')}, {run.get('ran', '?')} tasks run"]
    for title, header, rows in tables(report):
        lines += ["", f"## {title}", "", "| " + " | ".join(header) + " |",
                  "|" + "|".join("---" if i < 2 else "---:" for i in range(len(header))) + "|"]
        lines += ["| " + " | ".join(f"**{c}**" if row[1] == "all" and c else c for c in row) + " |"
                  for row in rows]
        if any(BROKEN_MARK in c for row in rows for c in row):
            lines += ["", BROKEN_NOTE]
    if figures:
        lines += ["", "## Figures", ""] + [f"![{Path(f).stem}]({Path(f).name})" for f in figures]
    definitions = (__doc__ or "").split("Definitions (also written into report.md):")[-1].strip()
    if any(r.cost is not None for r in report.results):
        definitions = definitions[:-1] + ";\n" + COST_DEFINITION
    lines += ["", "## Definitions", "", definitions, ""]
    return "\n".join(lines)


def load_meta(csv_path: str | Path) -> dict:
    """The batch's sidecar (RESULTS.meta.json: command and machine of each run), {} if absent."""
    path = Path(csv_path).with_suffix(".meta.json")
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
