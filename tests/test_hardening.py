"""Promises kept at any size (issue 22): time limits, the cheap paths' results, input caps, the first
run's compile line, exclusive run directories, and no wrong answer with exit 0.

Time figures come from benchmarks/bench_scale.py; here the time checks are generous hang guards
(the limits below were overrun 20-100x before the fix) and every other check is on answers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT

from igniter_opt.bench.generate import random_instance
from igniter_opt.data.errors import InputError
from igniter_opt.data.instance import Instance
from igniter_opt.data.io import read_text
from igniter_opt.data.lock import exclusive, holder
from igniter_opt.data.plan import GpuPlan, PlacedWorkload, Plan
from igniter_opt.deploy.measure import check_matches
from igniter_opt.deploy.report import report_table
from igniter_opt.model import load_profile, predict
from igniter_opt.model.predict import predict_gpus
from igniter_opt.solvers.base import SolveOptions
from igniter_opt.solvers.colocation import by_least_share, least_shares, raise_violators
from igniter_opt.solvers.heuristics.firstfit import first_fit
from igniter_opt.solvers.heuristics.greedy import place_greedy
from igniter_opt.solvers.sizing import FULL_SHARE, size_instance
from igniter_opt.solvers.solve import solve

MOTIVATION = ROOT / "instances" / "paper" / "motivation.json"


def igniter(*args, cwd=None, env=None):
    return subprocess.run([sys.executable, "-m", "igniter_opt", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=300, env=env)


def one_line(text: str) -> bool:
    return len(text.strip().splitlines()) == 1 and "Traceback" not in text


# -- 1. time limits at size ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def big() -> Instance:
    return random_instance(1500, 5)


@pytest.mark.parametrize("solver", ["greedy", "exact", "milp", "patterns"])
def test_a_short_time_limit_on_a_big_instance_is_a_plan_and_a_bound_not_a_hang(big, solver):
    start = time.perf_counter()
    plan = solve(big, solver, options=SolveOptions(time_limit=0.5, force=True))
    waited = time.perf_counter() - start
    assert waited < 60, f"{solver}: {waited:.0f} s for a 0.5 s limit"  # hang guard (was 100+ s)
    # the vectorised greedy places 1,500 workloads in about 0.4 s on an idle machine: finishing in
    # time is its right answer there ("heuristic"), being cut is on a busy one (the 0.01 s test below)
    finished = solver == "greedy" and plan.status == "heuristic" and waited < 0.5 + 2
    assert (plan.status == "time_limit" or finished) and plan.gpus, plan.message
    assert plan.lower_bound is not None and 0 < plan.lower_bound <= plan.num_gpus
    assert plan.message
    if solver != "greedy":  # the exact solvers keep a plan that verifies (first fit is feasible)
        assert plan.feasible, plan.message


def test_every_workload_is_placed_once_when_the_limit_cuts_the_greedy(big):
    plan = solve(big, "greedy", options=SolveOptions(time_limit=0.01))
    names = [w.name for w in plan.workloads()]
    assert len(names) == len(set(names)) and set(names) >= {w.name for w in big.workloads}


# -- 2. the vectorised heuristics give the reference loop's plans -------------------------------

def _greedy_loop(profile, demands):
    """The published greedy, one GPU at a time (what place_greedy computed before vectorising)."""
    gpus: list[list[tuple[int, float]]] = [[]]
    for i in by_least_share(demands):
        best, best_added, pick = -1, 101.0, None
        for j, gpu in enumerate(gpus):
            members = [m for m, _ in gpu] + [i]
            shares = np.array([s for _, s in gpu] + [demands[i].r_lower])
            if shares.sum() <= FULL_SHARE:
                shares = raise_violators(profile, demands, members, shares)
            if shares.sum() > FULL_SHARE:
                continue
            added = shares.sum() - sum(s for _, s in gpu)
            if added < best_added - 1e-9:
                best, best_added, pick = j, added, list(zip(members, shares.tolist()))
        if best == -1:
            gpus.append([(i, demands[i].r_lower)])
        else:
            gpus[best] = pick
    return [g for g in gpus if g]


def _first_fit_loop(profile, demands, order):
    gpus: list[tuple[list[int], np.ndarray]] = []
    for i in order:
        for g, (members, shares) in enumerate(gpus):
            trial = [*members, i]
            batch = np.array([demands[m].batch for m in trial], dtype=float)
            new = least_shares(profile, demands, trial, batch, np.append(shares, demands[i].r_lower))
            if new is not None:
                gpus[g] = (trial, new)
                break
        else:
            alone = least_shares(profile, demands, [i], np.array([float(demands[i].batch)]),
                                 np.array([demands[i].r_lower]))
            gpus.append(([i], alone))
    return [[(m, float(s)) for m, s in zip(members, shares)] for members, shares in gpus]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_vectorised_greedy_and_first_fit_match_the_one_gpu_at_a_time_loops(v100, seed):
    demands = size_instance(random_instance(120, seed), v100)
    got = [[(i, s) for i, s in g] for g in place_greedy(v100, demands)]
    assert got == _greedy_loop(v100, demands)
    order = by_least_share(demands)
    ff = first_fit(v100, demands, order)
    index = {d.name: i for i, d in enumerate(demands)}
    assert [[(index[w.name], w.resource_pct) for w in g.workloads] for g in ff] == \
        _first_fit_loop(v100, demands, order)


def test_predict_gpus_is_predict_on_each_gpu(v100):
    plan = solve(random_instance(80, 3), "greedy")
    ws = plan.workloads()
    gpu = [j for j, g in enumerate(plan.gpus) for _ in g.workloads]
    many = predict_gpus(v100, [w.model for w in ws], [w.batch for w in ws], [w.resource_pct for w in ws], gpu)
    one = np.concatenate([predict(v100, [w.model for w in g.workloads], [w.batch for w in g.workloads],
                                  [w.resource_pct for w in g.workloads]).latency_ms for g in plan.gpus])
    assert many.latency_ms == pytest.approx(one, rel=1e-12)
    assert [w.predicted_latency_ms for w in ws] == pytest.approx(many.latency_ms.tolist(), rel=1e-12)


# -- 2. input caps -------------------------------------------------------------------------------

def test_an_endless_input_is_one_line_not_memory_exhaustion():
    with pytest.raises(InputError, match="larger than 64 MiB"):
        read_text("/dev/zero", "an instance file")
    res = igniter("solve", "/dev/zero")
    assert res.returncode == 2 and one_line(res.stderr) and "/dev/zero" in res.stderr


def test_an_instance_above_the_workload_cap_is_refused(tmp_path):
    data = json.loads(MOTIVATION.read_text())
    w = data["workloads"][0]
    data["workloads"] = [{**w, "name": f"w{i}"} for i in range(20_001)]
    path = tmp_path / "huge.json"
    path.write_text(json.dumps(data))
    res = igniter("solve", path)
    assert res.returncode == 2 and one_line(res.stderr) and "at most 20000" in res.stderr


# -- 3. the first run says it compiles ----------------------------------------------------------

def test_cold_kernel_cache_is_detected_and_warm_after_one_compile(tmp_path):
    code = textwrap.dedent("""
        import sys
        import numpy as np
        from igniter_opt.solvers import jitcache
        from igniter_opt.solvers.exact import kernel, kernelshares
        print(jitcache.cold())
        if sys.argv[1] == "compile":
            kernelshares.clock(np.zeros(7), 1.0)
    """)
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    first = subprocess.run([sys.executable, "-c", code, "compile"], capture_output=True, text=True, env=env,
                           timeout=300)
    assert first.stdout.split() == ["True"], first.stderr
    second = subprocess.run([sys.executable, "-c", code, "look"], capture_output=True, text=True, env=env,
                            timeout=300)
    assert second.stdout.split() == ["False"], second.stderr


# -- 4. exclusive run directories ----------------------------------------------------------------

def _hold(path: Path):
    code = (f"import sys, time\nfrom igniter_opt.data.lock import exclusive\n"
            f"with exclusive({str(path)!r}):\n    print('held', flush=True)\n    time.sleep(120)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_a_run_directory_in_use_is_refused_naming_the_holder(tmp_path):
    from igniter_opt.deploy.session import deploy
    from igniter_opt.deploy.types import DeployOptions

    run_dir = tmp_path / "run"
    proc = _hold(run_dir)
    try:
        assert holder(run_dir)["pid"] == proc.pid
        with pytest.raises(InputError, match=f"in use by pid {proc.pid}"):
            with exclusive(run_dir):
                pass
        plan = solve(Instance.from_dict(json.loads(MOTIVATION.read_text())), "greedy")
        with pytest.raises(InputError, match=f"the run directory is in use by pid {proc.pid}"):
            with deploy(plan, DeployOptions(run_dir=run_dir)):
                pass
        assert not (run_dir / "endpoints.json").exists()
    finally:
        proc.kill()
        proc.wait()
    with exclusive(run_dir):  # a killed holder leaves no stale lock
        assert holder(run_dir)["pid"] == os.getpid()


def _plan() -> Plan:
    w = [PlacedWorkload("a", "alexnet", 4, 10.0, 500, 15), PlacedWorkload("r", "resnet50", 8, 30.0, 400, 40)]
    return Plan("x", "greedy", "v100", "heuristic", gpus=[GpuPlan(w)])


def test_measure_refuses_a_plan_that_is_not_the_one_deployed():
    plan = _plan()
    deployed = {"servers": [], "workloads": [{"name": w.name, "batch": w.batch, "resource_pct": w.resource_pct}
                                             for w in plan.workloads()]}
    check_matches(plan, deployed)
    other_batch = replace(plan, gpus=[GpuPlan([replace(plan.gpus[0].workloads[0], batch=2),
                                               plan.gpus[0].workloads[1]])])
    with pytest.raises(InputError, match="'a' has batch 2 in the plan, 4 deployed"):
        check_matches(other_batch, deployed)
    other_share = replace(plan, gpus=[GpuPlan([plan.gpus[0].workloads[0],
                                               replace(plan.gpus[0].workloads[1], resource_pct=40.0)])])
    with pytest.raises(InputError, match="share 40% in the plan, 30% deployed"):
        check_matches(other_share, deployed)
    with pytest.raises(InputError, match="not deployed"):
        check_matches(replace(plan, gpus=[GpuPlan(plan.gpus[0].workloads[:1])]), deployed)
    old = {"servers": [{"name": "a", "share_pct": 10.0}, {"name": "r", "share_pct": 25.0}]}
    with pytest.raises(InputError, match="'r' has share 30% in the plan, 25% deployed"):
        check_matches(plan, old)


# -- 5. no wrong answer with exit 0 ---------------------------------------------------------------

def _bad_profile(tmp_path: Path, where: str, key: str, value) -> Path:
    data = load_profile("v100").to_dict()
    if where == "hardware":
        data["hardware"][key] = value
    else:
        data["models"]["alexnet"][key] = value
    path = tmp_path / f"bad-{key}.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(("where", "key", "value", "field"), [
    ("hardware", "idle_power_w", 400.0, "hardware.idle_power_w"),
    ("hardware", "a_f", 2.0, "hardware.a_f"),
    ("model", "k_l2", -0.01, "models.alexnet.k_l2"),
    ("model", "power", [-0.5, 37.0], "models.alexnet.power[0]"),
    ("model", "k", [0.0, -10.0, 0.0, 0.05, 0.3], "models.alexnet.k"),
])
def test_a_profile_that_breaks_physics_is_refused_and_solve_blames_it(tmp_path, where, key, value, field):
    bad = _bad_profile(tmp_path, where, key, value)
    with pytest.raises(InputError) as err:
        load_profile(bad)
    assert str(bad) in str(err.value) and field in str(err.value)
    inst = json.loads(MOTIVATION.read_text())
    inst["profile"] = str(bad)
    path = tmp_path / "inst.json"
    path.write_text(json.dumps(inst))
    res = igniter("solve", path)
    assert res.returncode == 2 and one_line(res.stderr), res.stderr
    assert str(bad) in res.stderr and field in res.stderr


def test_a_share_below_the_unit_is_refused_like_an_out_of_range_batch():
    res = igniter("predict", "alexnet:4:1")
    assert res.returncode == 2 and one_line(res.stderr) and "below the unit 2.5%" in res.stderr


def test_export_of_a_plan_verify_rejects_exits_1_unless_forced(tmp_path):
    plan = tmp_path / "ffd.json"
    assert igniter("solve", MOTIVATION, "--solver", "ffd", "-o", plan).returncode == 1
    res = igniter("export-igniter", plan, tmp_path / "cfg")
    assert res.returncode == 1 and one_line(res.stderr) and "verify rejects" in res.stderr
    assert not (tmp_path / "cfg").exists() or not list((tmp_path / "cfg").glob("*.json"))
    forced = igniter("export-igniter", plan, tmp_path / "cfg", "--force")
    assert forced.returncode == 0 and list((tmp_path / "cfg").glob("config_gpu*.json"))


def test_compare_exits_1_when_no_solver_found_a_feasible_plan():
    res = igniter("compare", MOTIVATION, "--solvers", "ffd", "--json")
    assert res.returncode == 1 and "no solver found a feasible plan" in res.stderr
    assert igniter("compare", MOTIVATION, "--solvers", "ffd,greedy", "--json").returncode == 0


def test_generate_checks_the_profile_exists(tmp_path):
    res = igniter("instances", "generate", "--family", "random", "--sizes", "4", "--profile", "nosuch",
                  "-o", tmp_path)
    assert res.returncode == 2 and one_line(res.stderr) and "nosuch" in res.stderr
    assert not list(tmp_path.glob("*.json"))


# -- 8. what the docs promise --------------------------------------------------------------------

def test_backend_help_keeps_the_cluster_extra():
    res = igniter("run", "--help", env={**os.environ, "COLUMNS": "250"})
    assert "igniter-opt[cluster]" in res.stdout


def test_the_measurement_table_shows_the_predicted_throughput():
    report = {"workloads": [{"name": "a", "model": "alexnet", "rate_rps": 500, "slo_ms": 15,
                             "measured_throughput_rps": 498.0, "p50_ms": 3, "p95_ms": 4, "p99_ms": 5,
                             "slo_violation_pct": 0, "errors": 0, "predicted_latency_ms": 5.2,
                             "predicted_throughput_rps": 612.5}]}
    table = report_table(report)
    assert "pred. req/s" in [c.header for c in table.columns]
    assert "612.5" in list(table.columns[3].cells)


# -- 5. results files: cut-short, malformed and foreign rows ------------------------------------

def _results(tmp_path: Path, extra: str = "", solver: str | None = None) -> Path:
    lines = (ROOT / "benchmarks" / "results.csv").read_text(encoding="utf-8").splitlines()[:5]
    if solver is not None:
        cells = lines[2].split(",")
        cells[3] = solver
        lines[2] = ",".join(cells)
    path = tmp_path / "r.csv"
    path.write_text("\n".join(lines) + "\n" + extra, encoding="utf-8")
    return path


def test_report_counts_rows_cut_short_and_refuses_unknown_solvers_and_bytes(tmp_path):
    cut = _results(tmp_path, extra="instances/random/random-n48-00.json,random,48,exact,,77")
    res = igniter("report", cut, "-o", tmp_path / "out", "--no-plots")
    assert res.returncode == 0, res.stderr
    assert "1 row(s) cut short" in res.stderr
    bogus = _results(tmp_path, solver="bogus")
    res = igniter("report", bogus, "-o", tmp_path / "out2", "--no-plots")
    assert res.returncode == 2 and one_line(res.stderr) and "row 2: field solver: 'bogus'" in res.stderr
    raw = tmp_path / "bytes.csv"
    raw.write_bytes(cut.read_bytes() + b"\xff\xfe,\n")
    res = igniter("report", raw, "-o", tmp_path / "out3", "--no-plots")
    assert res.returncode == 2 and one_line(res.stderr) and "not UTF-8" in res.stderr


def test_batch_refuses_an_unknown_solver_before_solving(tmp_path):
    res = igniter("batch", MOTIVATION, "--solvers", "greedy,bogus", "-o", tmp_path / "r.csv")
    assert res.returncode == 2 and one_line(res.stderr) and "bogus" in res.stderr
    assert not (tmp_path / "r.csv").exists()


# -- 6. refused up front, never a traceback or a hang ---------------------------------------------

def test_a_tritonserver_that_is_not_executable_is_one_line(tmp_path):
    from igniter_opt.deploy.backends.local import find_tritonserver
    from igniter_opt.deploy.types import LaunchError

    fake = tmp_path / "tritonserver"
    fake.write_text("not a program\n")
    fake.chmod(0o644)
    with pytest.raises(LaunchError, match="not executable"):
        find_tritonserver(fake)


@pytest.mark.parametrize(("args", "expect"), [
    (("--duration", "1e9"), "more than the load generator's 24 h"),
    (("--duration", "50000"), "more arrivals than the load generator holds"),
])
def test_runs_the_load_generator_cannot_hold_are_refused_before_anything_starts(tmp_path, args, expect):
    plan = tmp_path / "plan.json"
    assert igniter("solve", MOTIVATION, "-o", plan).returncode == 0
    run_dir = tmp_path / "run"
    res = igniter("run", plan, "--run-dir", run_dir, *args)
    assert res.returncode == 2 and one_line(res.stderr) and expect in res.stderr, res.stderr
    assert not (run_dir / "endpoints.json").exists() and not (run_dir / "repos").exists()


def test_a_server_that_never_becomes_ready_is_a_bounded_visible_wait(monkeypatch, capsys):
    from igniter_opt.deploy.backends import launcher

    monkeypatch.setattr(launcher, "SAY_WAITING_S", 0.2)
    port = launcher.free_port()  # nothing listens there
    start = time.monotonic()
    with pytest.raises(launcher.LaunchError, match=r"not ready after 1\.5 s"):
        launcher.wait_ready(f"http://127.0.0.1:{port}", 1.5, what="tritonserver for x")
    assert time.monotonic() - start < 30  # hang guard
    assert "waiting for tritonserver for x to be ready (at most 1.5 s)" in capsys.readouterr().err
