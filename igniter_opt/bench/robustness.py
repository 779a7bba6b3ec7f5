"""The price of robustness: GPUs per solver per margin, from `igniter compare --margins ... --json`.

`igniter report` takes that JSON (a list of rows with instance, solver, margin_pct, num_gpus,
status, feasible) in place of a batch CSV and writes a table, report.md and margins.png. With rows
of several instances (e.g. concatenated compare outputs) a cell is the mean over the instances
where the solver has a plan that holds at that margin.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.table import Table

from igniter_opt.bench.report import PLAN_STATUSES, ordered_solvers
from igniter_opt.data.errors import InputError
from igniter_opt.data.io import read_json
from igniter_opt.data.schema import MarginRowSpec, parse

FIELDS = ("solver", "margin_pct", "num_gpus", "status", "feasible")


@dataclass(frozen=True)
class MarginRow:
    """One solver's result on one instance at one margin."""

    instance: str
    solver: str
    margin: float
    gpus: int
    status: str
    feasible: bool

    @property
    def holds(self) -> bool:
        """A plan that verifies at its margin."""
        return self.status in PLAN_STATUSES and self.gpus > 0 and self.feasible


def load_margin_rows(path: str | Path) -> list[MarginRow]:
    """Rows of a `compare --json` output; an InputError names the file and the bad row."""
    data: Any = read_json(path, "a compare --json file")
    if not isinstance(data, list) or not data:
        raise InputError(f"{path}: expected the non-empty JSON list that `igniter compare --json` prints")
    rows = []
    for i, item in enumerate(data):
        spec = parse(MarginRowSpec, item, f"{path}: row {i}", what="a row of `igniter compare --json`")
        rows.append(MarginRow(instance=spec.instance, solver=spec.solver, margin=spec.margin_pct,
                              gpus=spec.num_gpus or 0, status=spec.status, feasible=spec.feasible))
    return rows


@dataclass
class MarginSummary:
    """Mean GPUs per (solver, margin) over the instances where the plan holds, and how many broke."""

    instances: list[str]
    solvers: list[str]
    margins: list[float]
    mean_gpus: dict[tuple[str, float], float]
    broken: dict[tuple[str, float], int]  # plans that do not hold at their margin (or no plan)


def summarize(rows: list[MarginRow]) -> MarginSummary:
    cells: defaultdict[tuple[str, float], list[int]] = defaultdict(list)
    broken: defaultdict[tuple[str, float], int] = defaultdict(int)
    for r in rows:
        if r.holds:
            cells[(r.solver, r.margin)].append(r.gpus)
        else:
            broken[(r.solver, r.margin)] += 1
    return MarginSummary(instances=sorted({r.instance for r in rows}),
                         solvers=ordered_solvers(r.solver for r in rows),
                         margins=sorted({r.margin for r in rows}),
                         mean_gpus={k: float(np.mean(v)) for k, v in cells.items()}, broken=dict(broken))


def table_rows(s: MarginSummary) -> tuple[list[str], list[list[str]]]:
    """Header and rows: mean GPUs per solver per margin ('!n': n plans without a holding plan)."""
    header = ["solver"] + [f"{m:g}%" for m in s.margins]
    rows = []
    for solver in s.solvers:
        row = [solver]
        for m in s.margins:
            mean = s.mean_gpus.get((solver, m))
            text = "–" if mean is None else f"{mean:.2f}".rstrip("0").rstrip(".")
            bad = s.broken.get((solver, m), 0)
            row.append(text + (f" (!{bad})" if bad else ""))
        rows.append(row)
    return header, rows


def rich_table(s: MarginSummary) -> Table:
    table = Table(title=f"Price of robustness: GPUs per solver per margin ({', '.join(s.instances) or '?'})")
    header, rows = table_rows(s)
    for i, col in enumerate(header):
        table.add_column(col, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*row)
    return table


def markdown(s: MarginSummary, source: str, figures: list[str]) -> str:
    header, rows = table_rows(s)
    lines = ["# Price of robustness", "",
             f"From `{source}` (`igniter compare --margins ... --json`): {len(s.instances)} instance(s) "
             f"({', '.join(s.instances)}). At margin m every workload must hold with predicted latency "
             f"<= (1 - m/100) SLO/2 and throughput >= (1 + m/100) rate. A cell is the mean GPU count over "
             f"the instances where the solver's plan holds at that margin; (!n): n results without one "
             f"(a plan that breaks the model, or none).", "",
             "| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    if figures:
        lines += ["", "## Figures", ""] + [f"![{Path(f).stem}]({Path(f).name})" for f in figures]
    return "\n".join(lines) + "\n"


def plot_margins(s: MarginSummary, path: Path) -> Path:
    """GPUs against margin, one line per solver over its holding plans (the legend names the margins
    where a solver's plan breaks the model); overlapping lines stay visible by marker size."""
    from igniter_opt.bench.plots import COLORS, _plt, _save

    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    for i, solver in enumerate(s.solvers):
        color = COLORS.get(solver, f"C{i}")
        pts = [(m, s.mean_gpus[(solver, m)]) for m in s.margins if (solver, m) in s.mean_gpus]
        bad = [f"{m:g}%" for m in s.margins if s.broken.get((solver, m))]
        label = solver + (f" (no holding plan at {', '.join(bad)})" if bad else "")
        if pts:
            x, y = np.array(pts).T
            ax.plot(x, y, marker="o", markersize=max(3, 10 - 2 * i), linewidth=max(1.0, 3.5 - 0.7 * i),
                    linestyle=("-", "--", "-.", ":")[i % 4], color=color, label=label, alpha=0.85)
        else:
            ax.plot([], [], color=color, label=label)
    ax.set_xticks(s.margins)
    if len(s.instances) == 1:
        from matplotlib.ticker import MaxNLocator

        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("robustness margin (%): latency <= (1 - m) SLO/2, throughput >= (1 + m) rate")
    ax.set_ylabel("GPUs" if len(s.instances) == 1 else "mean GPUs")
    ax.set_title(f"Price of robustness ({', '.join(s.instances)[:80]})", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)
