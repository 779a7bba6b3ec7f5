"""Issue 21 in `igniter batch` / `igniter report` and benchmarks/bench_fleets.py's figure: a mixed,
priced instance's row carries its plan's cost, the report shows mean cost per solver, and results
files and reports of single-type instances are unchanged.

examples/fleets/mixed.json uses the SYNTHETIC slow profile (examples/fleets/synthetic-slow.json,
derived from the V100 one; not a measured GPU)."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from igniter_opt.bench.batch import run_batch
from igniter_opt.bench.report import load_report, markdown, tables
from igniter_opt.bench.results import COLUMNS, NOCOST_COLUMNS, read_results
from igniter_opt.data.errors import InputError
from igniter_opt.data.plan import Plan
from igniter_opt.model.instances import load_checked_instance
from igniter_opt.solvers.base import SolveOptions
from igniter_opt.solvers.solve import solve

ROOT = Path(__file__).resolve().parent.parent
MIXED = ROOT / "examples" / "fleets" / "mixed.json"  # v100 2.48/h + SYNTHETIC slow 1.24/h
SINGLE = ROOT / "instances" / "paper" / "motivation.json"


def _rows(csv_path: Path) -> dict[tuple[str, str], dict[str, str]]:
    return {(Path(r["instance"]).name, r["solver"]): r for r in read_results(csv_path)}


def test_batch_row_of_a_priced_fleet_carries_its_cost_and_report_shows_it(tmp_path: Path) -> None:
    out = tmp_path / "results.csv"
    run_batch([MIXED, SINGLE], ["greedy", "exact"], time_limit=60, jobs=1, results_csv=out, progress=False)
    with out.open(newline="") as fh:
        assert tuple(next(csv.reader(fh))) == COLUMNS and COLUMNS[-1] == "cost"
    rows = _rows(out)
    inst = load_checked_instance(MIXED)
    for solver in ("greedy", "exact"):
        plan: Plan = solve(inst, solver, options=SolveOptions(time_limit=60, threads=1))
        assert plan.cost is not None
        assert float(rows[("mixed.json", solver)]["cost"]) == pytest.approx(plan.cost)
    assert rows[("mixed.json", "exact")]["status"] == "optimal"
    assert float(rows[("mixed.json", "exact")]["cost"]) == pytest.approx(6.2)  # docs/fleets.md's example
    assert rows[("motivation.json", "greedy")]["cost"] == "" == rows[("motivation.json", "exact")]["cost"]

    report = load_report(out)
    costs = {r.instance.split("/")[-1] + " " + r.solver: r.cost for r in report.results}
    assert costs["motivation.json exact"] is None and costs["mixed.json exact"] == pytest.approx(6.2)
    _title, header, body = next(t for t in tables(report) if t[0].startswith("Mean cost"))
    assert header[3:] == ["cost greedy", "cost exact"]
    by_family = {(row[0], row[1]): row for row in body}
    assert by_family[("fleets", "all")][4] == "6.20 (n=1)"
    assert ("paper", "all") not in by_family  # no prices there: no cost row
    text = markdown(report, str(out))
    assert "## Mean cost per hour per solver" in text and "6.20 (n=1)" in text and "mean cost (issue 21" in text


def test_single_type_results_and_report_are_unchanged(tmp_path: Path) -> None:
    """The committed results (written before the cost column) read with an empty cost; their report
    has no cost table nor cost definition; appending single-type rows keeps the file's layout, and
    a fleet instance is refused for such a file (its cost could not be recorded)."""
    committed = ROOT / "benchmarks" / "results.csv"
    report = load_report(committed)
    assert all(r.cost is None for r in report.results)
    assert [t[0] for t in tables(report)][1].startswith("Solve time")
    assert "cost" not in markdown(report, str(committed)).lower()

    old = tmp_path / "old.csv"
    with old.open("w", newline="") as fh:
        csv.writer(fh).writerow(NOCOST_COLUMNS)
    run_batch([SINGLE], ["greedy"], time_limit=5, jobs=1, results_csv=old, progress=False)
    lines = old.read_text().splitlines()
    assert lines[0] == ",".join(NOCOST_COLUMNS) and len(lines) == 2
    assert len(next(csv.reader([lines[1]]))) == len(NOCOST_COLUMNS)
    assert read_results(old)[0]["cost"] == ""
    with pytest.raises(InputError, match="written before the cost column"):
        run_batch([MIXED], ["greedy"], time_limit=5, jobs=1, results_csv=old, progress=False)


def test_a_row_cut_inside_its_cost_is_not_read(tmp_path: Path) -> None:
    """cost is the last column: a last line without its newline (a kill mid-write) is dropped, so
    a cost cut from 7.44 to 7.4 is never read as a result."""
    out = tmp_path / "r.csv"
    run_batch([MIXED], ["greedy"], time_limit=5, jobs=1, results_csv=out, progress=False)
    whole = out.read_bytes()
    assert whole.endswith(b",7.44\r\n") and len(read_results(out)) == 1  # csv ends lines with CR LF
    out.write_bytes(whole + whole.splitlines(keepends=True)[-1][:-3])  # "...,7.4" without newline
    rows = read_results(out)
    assert len(rows) == 1 and rows[0]["cost"] == "7.44"


def test_fleet_cost_figure_is_written(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from igniter_opt.bench.plots import fleet_cost_series, plot_fleet_cost

    points = [{"seed": 1, "cheapest_single": 10.0, "exact": 9.5, "greedy": 10.2, "greedy_breaks": True,
               "capped": None, "singles": {"v100": 12.0, "slow": 10.0}},
              {"seed": 2, "cheapest_single": 8.0, "exact": 8.0, "greedy": 8.0, "greedy_breaks": False,
               "capped": 8.8, "singles": {"slow": 8.0}}]
    series = {label: values for label, _, values in fleet_cost_series(points)}
    assert series["exact over the fleet"] == pytest.approx([95.0, 100.0])
    assert series["fleet greedy"] == pytest.approx([102.0, 100.0])
    assert math.isnan(series["exact, most-used type capped"][0]) and series["exact, most-used type capped"][1] == \
        pytest.approx(110.0)
    assert series["v100 only (exact)"][0] == pytest.approx(120.0) and math.isnan(series["v100 only (exact)"][1])
    path = plot_fleet_cost(points, tmp_path / "fleet.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
