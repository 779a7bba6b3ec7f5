"""The igniter CLI: outputs for scripts, and bad input as one line with exit code 2."""

import json
import subprocess
import sys

import pytest
from conftest import RAW_V100, ROOT

MOTIVATION = ROOT / "instances" / "paper" / "motivation.json"


def igniter(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "igniter_opt", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=120)


def test_solve_greedy_json_is_the_motivation_plan(tmp_path):
    out = tmp_path / "plan.json"
    res = igniter("solve", MOTIVATION, "--solver", "greedy", "--json", "-o", out)
    assert res.returncode == 0, res.stderr
    plan = json.loads(res.stdout)
    assert plan == json.loads(out.read_text())
    assert plan["num_gpus"] == 1 and plan["feasible"] is True
    assert [(w["model"], w["batch"], w["resource_pct"]) for w in plan["gpus"][0]["workloads"]] == [
        ("vgg19", 6, 37.5), ("resnet50", 8, 30.0), ("alexnet", 4, 10.0)]


def test_predict_json_reproduces_reference(reference):
    case = reference["motivation_example"]["prediction_for_plan"]
    specs = [f"{m}:{b}:{r}" for m, b, r in zip(case["models"], case["batches"], case["resources"])]
    res = igniter("predict", "--profile", "v100", "--json", *specs)
    assert res.returncode == 0, res.stderr
    rows = json.loads(res.stdout)["workloads"]
    assert [r["model"] for r in rows] == case["models"]
    assert [r["latency_ms"] for r in rows] == pytest.approx(case["latency"], rel=1e-6)
    assert [r["throughput_rps"] for r in rows] == pytest.approx(case["throughput"], rel=1e-6)


def test_verify_exits_1_on_a_plan_that_breaks_an_slo(tmp_path):
    plan = tmp_path / "ffd.json"
    assert igniter("solve", MOTIVATION, "--solver", "ffd", "-o", plan).returncode == 1
    res = igniter("verify", plan, "--json")
    assert res.returncode == 1
    assert json.loads(res.stdout)["feasible"] is False
    assert "vgg19" in res.stderr


def test_profile_fit_cli_reproduces_bundled_profile(tmp_path):
    out = tmp_path / "v100.json"
    assert igniter("profile", "fit", RAW_V100, "-o", out).returncode == 0
    res = igniter("profile", "show", out, "--json")
    bundled = igniter("profile", "show", "v100", "--json")
    fitted, shipped = json.loads(res.stdout), json.loads(bundled.stdout)
    assert fitted["hardware"] == shipped["hardware"] and fitted["models"] == shipped["models"]


def test_export_igniter_writes_reference_configs(tmp_path, reference):
    plan = tmp_path / "plan.json"
    igniter("solve", MOTIVATION, "-o", plan)
    assert igniter("export-igniter", plan, tmp_path / "cfg").returncode == 0
    config = json.loads((tmp_path / "cfg" / "config_gpu1.json").read_text())
    ref = reference["motivation_example"]["greedy_plan"][0]
    assert config == {k: ref[k] for k in ("models", "rates", "slos", "resources", "batches")}
    assert not (tmp_path / "cfg" / "config_gpu2.json").exists()


def _instance(tmp_path, text: str):
    path = tmp_path / "bad.json"
    path.write_text(text)
    return path


GOOD = {"name": "x", "profile": "v100", "workloads": [
    {"name": "a", "model": "alexnet", "slo_ms": 15, "rate_rps": 500},
    {"name": "b", "model": "vgg19", "slo_ms": 60, "rate_rps": 200}]}


def _mutated(path_fn):
    data = json.loads(json.dumps(GOOD))
    path_fn(data)
    return json.dumps(data)


BAD_INSTANCES = {
    "malformed": ('{"name": "x",', "malformed JSON"),
    "missing field": (_mutated(lambda d: d["workloads"][1].pop("slo_ms")), "workloads[1].slo_ms: missing"),
    "unknown model": (_mutated(lambda d: d["workloads"][0].update(model="bert")), "workloads[0].model: 'bert'"),
    "slo <= 0": (_mutated(lambda d: d["workloads"][0].update(slo_ms=0)), "workloads[0].slo_ms: must be > 0, got 0"),
    "rate < 0": (_mutated(lambda d: d["workloads"][1].update(rate_rps=-5)),
                 "workloads[1].rate_rps: must be > 0, got -5"),
    "duplicate": (_mutated(lambda d: d["workloads"][1].update(name="a")), "duplicate workload name 'a'"),
    "unknown profile": (_mutated(lambda d: d.update(profile="a100")), "profile 'a100'"),
    "bad policy": (_mutated(lambda d: d.update(batch_policy="x")), "batch_policy"),
}


@pytest.mark.parametrize("case", sorted(BAD_INSTANCES))
def test_bad_instance_is_one_line_exit_2(tmp_path, case):
    text, expected = BAD_INSTANCES[case]
    path = _instance(tmp_path, text)
    res = igniter("solve", path)
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert "Traceback" not in res.stderr
    assert expected in res.stderr
    if case != "unknown model":
        assert str(path) in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("args,expected", [
    (("predict", "alexnet:x:10"), "MODEL:BATCH:SHARE"),
    (("predict", "bert:1:10"), "'bert'"),
    (("verify", "/nonexistent/plan.json"), "/nonexistent/plan.json"),
    (("profile", "show", "nope"), "'nope'"),
    (("solve", MOTIVATION, "--solver", "magic"), "'magic'"),
])
def test_bad_arguments_exit_2(args, expected):
    res = igniter(*args)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert expected in res.stderr


def test_bad_plan_field_named(tmp_path):
    plan = tmp_path / "plan.json"
    igniter("solve", MOTIVATION, "-o", plan)
    data = json.loads(plan.read_text())
    data["gpus"][0]["workloads"][1]["batch"] = "eight"
    plan.write_text(json.dumps(data))
    res = igniter("verify", plan)
    assert res.returncode == 2 and "gpus[0].workloads[1].batch" in res.stderr and str(plan) in res.stderr


def test_deploying_a_plan_the_model_says_is_broken_warns(tmp_path, capsys):
    from igniter_opt.cli.deploy import _with_predictions
    from igniter_opt.data.plan import load_plan

    plan = tmp_path / "ffd.json"
    igniter("solve", MOTIVATION, "--solver", "ffd", "-o", plan)
    data = json.loads(plan.read_text())
    data["feasible"] = True  # a stale or edited flag must not hide what the model predicts
    plan.write_text(json.dumps(data))
    checked = _with_predictions(load_plan(plan))
    assert checked.feasible is False
    err = capsys.readouterr().err
    assert "breaks its SLOs" in err and "vgg19" in err


@pytest.mark.parametrize("margins", ["0", "0,10"])
def test_compare_interrupted_shows_the_finished_solves_and_exits_130(monkeypatch, margins):
    from typer.testing import CliRunner

    import igniter_opt.cli.exact as cli_exact
    from igniter_opt.cli.app import app
    from igniter_opt.data.errors import SolveInterrupted

    real = cli_exact.solve

    def solve(inst, name, profile, options):  # Ctrl-C while the second solver runs, at margin 0
        if name == "ffd":
            plan = real(inst, "greedy", profile, options)
            plan.solver, plan.status = "ffd", "interrupted"
            raise SolveInterrupted(plan)
        return real(inst, name, profile, options)

    monkeypatch.setattr(cli_exact, "solve", solve)
    result = CliRunner().invoke(app, ["compare", str(MOTIVATION), "--solvers", "greedy,ffd,exact",
                                      "--margins", margins])
    assert result.exit_code == 130
    assert "interrupted in ffd" in result.output
    lines = result.stdout.splitlines()
    greedy = next(line for line in lines if "greedy" in line)
    assert "1" in greedy  # the finished solve: one GPU
    if margins == "0":  # one table row per solve: ffd's best so far is marked, exact never ran
        assert any("ffd" in line and "interrupted" in line for line in lines)
        assert "exact" not in result.stdout
    else:  # the margin table: what did not run is "-"
        exact = next(line for line in lines if "exact" in line)
        assert exact.count("-") >= 3
