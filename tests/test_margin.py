"""Robustness margin (issue 13, item 3): every solver plans inside the tightened limits, verify
checks at the plan's margin (or --margin), compare --margins prices robustness, bad margins exit 2."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from igniter_opt.bench.generate import random_instance
from igniter_opt.cli import app
from igniter_opt.data.errors import InputError
from igniter_opt.data.instance import Instance, Workload, load_instance
from igniter_opt.data.plan import Plan
from igniter_opt.model import load_profile, predict
from igniter_opt.solvers import SolveOptions, exact_solvers, get_solver, size_instance, solve, solver_names, verify
from igniter_opt.solvers.sizing import split_workloads

ROOT = Path(__file__).resolve().parent.parent
MOTIVATION = ROOT / "instances" / "paper" / "motivation.json"
V100 = load_profile("v100")
# Three workloads too heavy to share a GPU: even first-fit decreasing (blind to interference) holds.
HEAVY = Instance(name="heavy", profile="v100", workloads=(
    Workload("v1", "vgg19", 40, 400), Workload("r1", "resnet50", 30, 900), Workload("s1", "ssd", 60, 250)))


def _instances(solver: str) -> list[Instance]:
    if solver == "ffd":  # ffd ignores interference: its co-locations break the model at any margin
        return [HEAVY]
    return [load_instance(MOTIVATION), random_instance(8, 3)]


def _within_tightened_limits(plan: Plan, margin: float) -> None:
    """Predicted latency <= (1 - m) SLO/2 and throughput >= (1 + m) rate, recomputed here."""
    for gpu in plan.gpus:
        ws = gpu.workloads
        pred = predict(V100, [w.model for w in ws], [w.batch for w in ws], [w.resource_pct for w in ws])
        for w, lat, thr in zip(ws, pred.latency_ms, pred.throughput_rps):
            assert lat <= (1 - margin / 100) * w.slo_ms / 2 * (1 + 1e-9), (w.name, lat)
            assert thr >= (1 + margin / 100) * w.rate_rps * (1 - 1e-9), (w.name, thr)


@pytest.mark.parametrize("solver", solver_names())
def test_plan_at_margin_10_verifies_at_margin_10(solver):
    for inst in _instances(solver):
        plan = solve(inst, solver, options=SolveOptions(time_limit=30, margin_pct=10))
        assert plan.margin_pct == 10
        assert plan.feasible, (inst.name, plan.message)
        checked, problems = verify(plan, V100)  # the plan's own margin
        assert not problems and checked.feasible and checked.margin_pct == 10
        assert not verify(plan, V100, 10)[1] and not verify(plan, V100, 0)[1]
        _within_tightened_limits(plan, 10)


def test_every_solver_options_carry_the_margin():
    for name in solver_names():
        assert get_solver(name).options(SolveOptions(margin_pct=7.5)).margin_pct == 7.5


def test_batch_rule_ignores_the_margin_and_r_lower_grows():
    inst = random_instance(10, 2)
    base, tight = size_instance(inst, V100), size_instance(inst, V100, 10)
    assert [d.name for d in base] == [d.name for d in tight]  # no replica split on this instance
    assert [d.batch for d in base] == [d.batch for d in tight]
    assert all(t.r_lower >= b.r_lower for b, t in zip(base, tight))
    assert all(t.latency_limit_ms == pytest.approx(0.9 * t.slo_ms / 2) for t in tight)
    assert all(t.rate_target_rps == pytest.approx(1.1 * t.rate_rps) for t in tight)


@pytest.mark.parametrize("n,seed", [(6, 1), (8, 3), (10, 2), (8, 7)])
def test_exact_gpu_counts_never_fall_as_the_margin_grows(n, seed):
    inst = random_instance(n, seed)
    counts = {}
    for solver in exact_solvers():
        counts[solver] = []
        for margin in (0, 5, 10, 20):
            plan = solve(inst, solver, options=SolveOptions(time_limit=30, margin_pct=margin))
            assert plan.feasible and plan.status == "optimal", (solver, margin, plan.message)
            counts[solver].append(plan.num_gpus)
        assert counts[solver] == sorted(counts[solver]), (solver, counts[solver])
    assert counts["milp"] == counts["patterns"], counts  # the fixed-split exact solvers agree
    # exact also searches the replica splits (a superset): never more, and the same where no
    # workload is split at that margin
    for k, margin in enumerate((0, 5, 10, 20)):
        assert counts["exact"][k] <= counts["milp"][k], counts
        if not split_workloads(size_instance(inst, V100, margin)):
            assert counts["exact"][k] == counts["milp"][k], counts


def igniter(*args):
    return subprocess.run([sys.executable, "-m", "igniter_opt", *map(str, args)], capture_output=True,
                          text=True, timeout=120, cwd=ROOT)


def test_verify_margin_rejects_a_tight_margin_0_plan(tmp_path):
    plan = tmp_path / "plan.json"
    assert igniter("solve", MOTIVATION, "--solver", "milp", "-o", plan).returncode == 0
    assert json.loads(plan.read_text())["margin_pct"] == 0
    assert igniter("verify", plan).returncode == 0
    res = igniter("verify", plan, "--margin", "10", "--json")
    assert res.returncode == 1, res.stderr
    assert json.loads(res.stdout)["feasible"] is False and json.loads(res.stdout)["margin_pct"] == 10
    assert "vgg19: predicted latency" in res.stderr and "(1 - 10%) SLO/2 = 27 ms" in res.stderr


def test_plan_records_its_margin_and_verify_uses_it(tmp_path):
    plan = tmp_path / "plan.json"
    assert igniter("solve", MOTIVATION, "--solver", "greedy", "--margin", "20", "-o", plan).returncode == 0
    data = json.loads(plan.read_text())
    assert data["margin_pct"] == 20 and data["num_gpus"] == 2
    assert igniter("verify", plan).returncode == 0  # at its own margin, 20%
    data.pop("margin_pct")  # a plan written before the field existed loads, at margin 0
    assert Plan.from_dict(data).margin_pct == 0
    for bad in (-1, 100, "ten", True):
        with pytest.raises(InputError, match="margin_pct"):
            Plan.from_dict({**data, "margin_pct": bad})


def test_compare_margins_table_and_json():
    runner = CliRunner()
    res = runner.invoke(app, ["compare", str(MOTIVATION), "--margins", "0,10", "--solvers", "greedy,milp,patterns"])
    assert res.exit_code == 0, res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    header = next(line for line in lines if "┃ solver" in line)
    assert "0%" in header and "10%" in header
    for solver in ("greedy", "milp", "patterns"):
        row = next(line for line in lines if line.strip("│┃ ").startswith(solver + " "))
        assert [c.strip() for c in row.strip("│┃ ").split("│")][1:] == ["1", "1", "+0"], row
    res = runner.invoke(app, ["compare", str(MOTIVATION), "--margins", "20,0", "--solvers", "milp,ffd", "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    assert [(r["solver"], r["margin_pct"]) for r in rows] == [("milp", 0), ("ffd", 0), ("milp", 20), ("ffd", 20)]
    assert [r["num_gpus"] for r in rows if r["solver"] == "milp"] == [1, 2]


def test_report_plots_compare_margins_json(tmp_path):
    pytest.importorskip("matplotlib", reason="needs the 'plot' extra: pip install -e '.[plot]'")
    runner = CliRunner()
    res = runner.invoke(app, ["compare", str(MOTIVATION), "--margins", "0,20", "--solvers", "greedy,milp", "--json"])
    source = tmp_path / "compare.json"
    source.write_text(res.output)
    res = runner.invoke(app, ["report", str(source), "-o", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "out" / "margins.png").stat().st_size > 0
    text = (tmp_path / "out" / "report.md").read_text()
    assert "| milp | 1 | 2 |" in text and "| greedy | 1 | 2 |" in text


@pytest.mark.parametrize("args", [
    ("solve", MOTIVATION, "--margin", "-5"),
    ("solve", MOTIVATION, "--margin", "100"),
    ("solve", MOTIVATION, "--margin", "nan"),
    ("verify", ROOT / "instances" / "paper" / "motivation.json", "--margin", "150"),
    ("compare", MOTIVATION, "--margins", "0,-1"),
    ("compare", MOTIVATION, "--margins", "0,100"),
    ("compare", MOTIVATION, "--margins", "nan"),
    ("compare", MOTIVATION, "--margins", "0,ten"),
])
def test_bad_margins_exit_2_in_one_line(args):
    res = igniter(*args)
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert "margin" in res.stderr


def test_library_rejects_bad_margins():
    inst = load_instance(MOTIVATION)
    for bad in (-0.1, 100.0, math.nan, math.inf):
        with pytest.raises(InputError, match="margin"):
            solve(inst, "greedy", options=SolveOptions(margin_pct=bad))
        with pytest.raises(InputError, match="margin"):
            verify(solve(inst, "greedy"), V100, bad)
