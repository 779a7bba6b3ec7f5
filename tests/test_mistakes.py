"""Every mistake a new user made (issue 10) is answered in one line: exit 2 for bad input, never a
traceback, and the model is not asked what it was never fitted for.

The CLI runs in-process (typer's CliRunner) so that these stay fast.
"""

from __future__ import annotations

import csv
import json
import sys
import traceback
from pathlib import Path

import pytest
from conftest import RAW_V100, ROOT
from typer.testing import CliRunner

from igniter_opt.cli import app
from igniter_opt.data import io
from igniter_opt.data.instance import Instance, Workload, load_instance
from igniter_opt.data.profiles import load_raw
from igniter_opt.solvers.solve import solve

MOTIVATION = ROOT / "instances" / "paper" / "motivation.json"
V100_JSON = ROOT / "igniter_opt" / "profiles" / "v100.json"


def run(*args):
    """Invoke the CLI; an exception other than a clean exit fails the test with its traceback."""
    res = CliRunner().invoke(app, [str(a) for a in args])
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        pytest.fail("uncaught " + "".join(traceback.format_exception(*res.exc_info)))
    assert "Traceback" not in res.output
    return res


def refused(*args, expect: str = "", code: int = 2) -> str:
    """Run and check: exit `code`, one line on stderr containing `expect`; returns that line."""
    res = run(*args)
    assert res.exit_code == code, (res.exit_code, res.stdout[-500:], res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert expect in lines[0], lines[0]
    return lines[0]


def write(path: Path, data) -> Path:
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


@pytest.fixture
def plan_dict() -> dict:
    return solve(load_instance(MOTIVATION), "greedy").to_dict()


def instance(*workloads, **extra) -> dict:
    return {"name": "x", "profile": "v100", **extra,
            "workloads": [{"name": f"w{i}", "model": m, "slo_ms": slo, "rate_rps": rate}
                          for i, (m, slo, rate) in enumerate(workloads)]}


# -- unreadable input: binary, non-UTF-8, folders, missing, no permission ------------------------


BINARY = b"\x89PNG\r\n\x1a\n\xff\xfe\x00\x01"


@pytest.mark.parametrize("command", [
    ["solve", "{f}"], ["verify", "{f}"], ["compare", "{f}", "--solvers", "greedy"],
    ["export-igniter", "{f}", "{d}/cfg"], ["deploy", "{f}"], ["profile", "fit", "{f}", "-o", "{d}/p.json"],
    ["profile", "show", "{f}"], ["report", "{f}", "-o", "{d}/rep"],
    pytest.param(["measure", "{f}"], marks=pytest.mark.extra("deploy")),
    ["predict", "--profile", "{f}", "alexnet:1:10"],
])
def test_binary_input_is_one_line(tmp_path, command):
    bad = tmp_path / "bad.json"
    bad.write_bytes(BINARY)
    line = refused(*[c.format(f=bad, d=tmp_path) for c in command], expect=str(bad))
    assert "not UTF-8" in line


@pytest.mark.parametrize("command", [["solve", "{d}"], ["verify", "{d}"], ["profile", "show", "{d}"],
                                     ["report", "{d}"], ["profile", "fit", "{d}", "-o", "{d}/p.json"]])
def test_a_folder_is_called_a_folder(tmp_path, command):
    refused(*[c.format(d=tmp_path) for c in command], expect="is a folder")


def test_missing_and_unreadable_files(tmp_path, monkeypatch):
    refused("verify", tmp_path / "nope.json", expect="no such file")
    refused("report", tmp_path / "nope.csv", expect="no such file")
    path = write(tmp_path / "i.json", instance(("alexnet", 15, 500)))

    def denied(_self, *_args, **_kwargs):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(Path, "open", denied)  # read_text opens the file (to read at most its cap)
    refused("solve", path, expect="cannot read (Permission denied)")


# -- instances --------------------------------------------------------------------------------


def test_absurd_rate_is_refused_fast_instead_of_hanging(tmp_path):
    for rate in (1e20, 1e308):
        path = write(tmp_path / "i.json", instance(("alexnet", 15, rate)))
        refused("solve", path, expect="igniter plans at most 10000")
        refused("compare", path, "--solvers", "greedy,milp", expect="igniter plans at most 10000")


@pytest.mark.parametrize("slo", [1e9, 1e20, 1e308])
def test_a_loose_slo_never_extrapolates_the_batch(tmp_path, slo):
    path = write(tmp_path / "i.json", instance(("alexnet", slo, 500)))
    res = run("solve", path, "--json")
    assert res.exit_code == 0, res.stderr
    plan = json.loads(res.stdout)
    assert plan["num_gpus"] == 1 and plan["feasible"]
    assert [w["batch"] for g in plan["gpus"] for w in g["workloads"]] == [32]
    if slo == 1e9:  # milp once "proved" a lower bound of 2 here, with batch 3,122,022
        rows = json.loads(run("compare", path, "--solvers", "greedy,milp", "--json").stdout)
        assert [(r["num_gpus"], r["lower_bound"], r["feasible"]) for r in rows] == [(1, 1, True)] * 2


@pytest.mark.parametrize("field,value,expect", [
    ("slo_ms", float("inf"), "Infinity is not valid JSON"),
    ("rate_rps", float("nan"), "NaN is not valid JSON"),
    ("slo_ms", "15", "workloads[0].slo_ms: must be a number, got '15'"),
    ("rate_rps", True, "workloads[0].rate_rps: must be a number, got True"),
    ("name", 7, "workloads[0].name: must be a string, got 7"),
    ("name", "", "workloads[0].name: must be a non-empty string"),
    ("model", "bert", "workloads[0].model: 'bert' is not in profile 'v100'"),
])
def test_bad_instance_fields(tmp_path, field, value, expect):
    data = instance(("alexnet", 15, 500))
    data["workloads"][0][field] = value
    path = tmp_path / "i.json"
    path.write_text(json.dumps(data))
    assert str(path) in refused("solve", path, expect=expect)


def test_instance_shapes(tmp_path):
    refused("solve", write(tmp_path / "a.json", [1, 2]), expect="an instance must be a JSON object")
    refused("solve", write(tmp_path / "b.json", {**instance(("alexnet", 15, 5)), "workloads": {}}),
            expect="field workloads: must be a list")
    refused("solve", write(tmp_path / "c.json", {**instance(("alexnet", 15, 5)), "batch_polcy": "joint"}),
            expect="field batch_polcy: unknown field")
    refused("solve", write(tmp_path / "d.json", "1e999"), expect="too large")
    text = json.dumps(instance(("alexnet", 15, 5))).replace('"slo_ms": 15', '"slo_ms": 15, "slo_ms": 1e9')
    refused("solve", write(tmp_path / "e.json", text), expect="duplicate key 'slo_ms'")


# -- plans ------------------------------------------------------------------------------------


@pytest.mark.parametrize("edit,expect", [
    (lambda p: p["gpus"][0]["workloads"][0].update(batch=float("nan")), "NaN is not valid JSON"),
    (lambda p: p["gpus"][0]["workloads"][0].update(resource_pct=float("inf")), "Infinity is not valid JSON"),
    (lambda p: p.update(lower_bound="x"), "field lower_bound: must be an integer, got 'x'"),
    (lambda p: p["gpus"][0]["workloads"][1].update(name=5), "gpus[0].workloads[1].name: must be a string"),
    (lambda p: p["gpus"][0]["workloads"][1].update(name=""), "gpus[0].workloads[1].name: must be a non-empty"),
    (lambda p: p["gpus"][0]["workloads"][1].update(name=p["gpus"][0]["workloads"][0]["name"]),
     "gpus[0].workloads[1].name: duplicate workload name"),
    (lambda p: p["gpus"][0]["workloads"][0].update(slo_ms=-0.0), "slo_ms: must be > 0, got -0.0"),
    (lambda p: p["gpus"][0]["workloads"][0].update(batch=8.5), "batch: must be an integer, got 8.5"),
    (lambda p: p["gpus"][0]["workloads"][0].update(resource_pct=80.0), "gpus[0].workloads: shares sum to"),
    (lambda p: p["gpus"][0]["workloads"][0].update(resource_pct=120.0), "resource_pct: must be <= 100"),
    (lambda p: p.update(status="done"), "field status: must be one of"),
    (lambda p: p.update(num_gpus=3), "field num_gpus: does not match"),
])
@pytest.mark.parametrize("command", ["verify", "export-igniter", "deploy"])
def test_bad_plans_are_refused_by_every_reader(tmp_path, plan_dict, edit, expect, command):
    edit(plan_dict)
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan_dict))  # json.dumps writes NaN/Infinity: not JSON, refused
    args = [command, path] + ([tmp_path / "cfg"] if command == "export-igniter" else [])
    assert str(path) in refused(*args, expect=expect)
    assert not (tmp_path / "cfg").exists()


def test_batch_outside_the_fitted_range_is_refused(tmp_path, plan_dict):
    plan_dict["gpus"][0]["workloads"][0]["batch"] = 5000
    path = write(tmp_path / "plan.json", plan_dict)
    refused("verify", path, expect="workloads[0]: batch 5000 is outside the fitted range 1..32 of profile 'v100'")


def test_unknown_models_in_plans(tmp_path, plan_dict):
    plan_dict["gpus"][0]["workloads"][0]["model"] = "bert"
    path = write(tmp_path / "plan.json", plan_dict)
    refused("verify", path, expect="gpus[0].workloads[0]: model 'bert' is not in profile 'v100'")
    refused("deploy", path, expect="gpus[0].workloads[0].model: no deployable model 'bert'")


# -- predict ----------------------------------------------------------------------------------


@pytest.mark.parametrize("specs,expect", [
    (["resnet50:5000:40"], "'resnet50:5000:40': batch 5000 is outside the fitted range 1..32 of profile 'v100'"),
    (["resnet50:8:60", "vgg19:4:60"], "shares sum to 120% > 100%"),
    (["alexnet:1:nan"], "0 < SHARE <= 100"),
    (["alexnet:1:1e999"], "0 < SHARE <= 100"),
    (["alexnet:" + "9" * 5000 + ":10"], "MODEL:BATCH:SHARE"),
])
def test_predict_refuses_what_the_model_was_not_fitted_for(specs, expect):
    refused("predict", *specs, expect=expect)


def test_predict_inside_the_range_is_positive():
    res = run("predict", "--json", "resnet50:32:40", "vgg19:1:2.5")
    assert res.exit_code == 0
    rows = io.loads_strict(res.stdout, "stdout")["workloads"]
    assert all(r["latency_ms"] > 0 and r["throughput_rps"] > 0 for r in rows)


# -- profiles ---------------------------------------------------------------------------------


@pytest.mark.parametrize("edit,expect", [
    (lambda p: p.update(models=list(p["models"].values())), "field models: must be an object"),
    (lambda p: p["models"]["alexnet"].update(k=[1, 2, 3]), "models.alexnet.k: must have at least 5 item(s)"),
    (lambda p: p["hardware"].update(bandwidth_bytes_per_ms=0), "hardware.bandwidth_bytes_per_ms: must be > 0"),
    (lambda p: p["hardware"].update(max_frequency_mhz=0), "hardware.max_frequency_mhz: must be > 0"),
    (lambda p: p["hardware"].update(unit_pct=0), "hardware.unit_pct: must be >= 0.1"),
    (lambda p: p["hardware"].update(unit_pct=1e-300), "hardware.unit_pct: must be >= 0.1"),
    (lambda p: p["hardware"].pop("a_f"), "hardware.a_f: missing"),
    (lambda p: p.update(fitted_range={"batch": [32, 1], "share_pct": [10, 100]}), "fitted_range.batch"),
    (lambda p: p["models"]["alexnet"].update(k=[0, 0, -1e308, 0, 0]), "models.alexnet.k: the solo time"),
])
def test_bad_profiles(tmp_path, edit, expect):
    data = json.loads(V100_JSON.read_text())
    edit(data)
    path = write(tmp_path / "p.json", data)
    refused("predict", "--profile", path, "alexnet:4:10", expect=expect)
    if "predicts" not in expect:
        refused("profile", "show", path, expect=expect)


def _raw_lines(mutate) -> str:
    raw = json.loads(json.dumps(load_raw(RAW_V100)))
    mutate(raw)
    return "\n".join(json.dumps({k: v}) for k, v in raw.items()) + "\n"


RAW_MUTATIONS = {
    "no hardware": (lambda r: r.pop("hardware"), "hardware: section missing"),
    "only hardware": (lambda r: [r.pop(k) for k in list(r) if k != "hardware"], "no model section"),
    "power string": (lambda r: r["hardware"].update(power="x"), "hardware.power: must be a list"),
    "power short": (lambda r: r["hardware"].update(power=[1, 2]), "hardware.power: must have at least 3"),
    "frequency length": (lambda r: r["hardware"].update(frequency=[1530.0] * 4), "hardware.frequency: must have"),
    "frequency zero": (lambda r: r["hardware"].update(maxGPUfrequency=0), "hardware.maxGPUfrequency: must be > 0"),
    "unit zero": (lambda r: r["hardware"].update(unit=0), "hardware.unit: must be >= 0.1"),
    "bandwidth zero": (lambda r: r["hardware"].update(bandwidth=0), "hardware.bandwidth: must be > 0"),
    "idlepower negative": (lambda r: r["hardware"].update(idlepower=-1), "hardware.idlepower: must be >= 0"),
    "idletime missing": (lambda r: r["hardware"].pop("idletime"), "hardware.idletime: missing"),
    "grid rows": (lambda r: r["alexnet"].update(gpulatency=r["alexnet"]["gpulatency"][:2]), "alexnet.gpulatency"),
    "grid cell": (lambda r: r["alexnet"]["gpulatency"][1].__setitem__(2, "x"), "alexnet.gpulatency[1][2]"),
    "grid flat": (lambda r: r["alexnet"].update(power=[x for row in r["alexnet"]["power"] for x in row]),
                  "alexnet.power: must have"),
    "frequency grid zero": (lambda r: r["ssd"]["frequency"][0].__setitem__(0, 0), "ssd.frequency[0][0]: must be > 0"),
    "l2cache zero": (lambda r: r["vgg19"].update(l2cache=0), "vgg19.l2cache: must be > 0"),
    "activetime zero": (lambda r: r["vgg19"].update(activetime_1=0), "vgg19.activetime_1: must be > 0"),
    "kernel fraction": (lambda r: r["resnet50"].update(kernel=1.5), "resnet50.kernel: must be an integer"),
    "l2caches short": (lambda r: r["resnet50"].update(l2caches=[1, 2]), "resnet50.l2caches"),
    "empty model": (lambda r: r.update(bert={}), "bert.kernel: missing"),
    "latency below idle": (lambda r: r["alexnet"].update(idletime_1=1e6), "every latency must exceed idletime_1"),
    "model not object": (lambda r: r.update(bert=[1]), ":6: each line must be {section: {key: value}}"),
    "clock never reached": (lambda r: r["hardware"].update(frequency=[1.0] * 5), ""),
}


@pytest.mark.parametrize("case", sorted(RAW_MUTATIONS))
def test_malformed_raw_profiles_in_profile_fit(tmp_path, case):
    mutate, expect = RAW_MUTATIONS[case]
    try:
        text = _raw_lines(mutate)
    except TypeError:  # the mutation itself made a non-dict section: write it as is
        text = json.dumps({"hardware": {}}) + "\n"
    raw = write(tmp_path / "raw.jsonl", text)
    res = run("profile", "fit", raw, "-o", tmp_path / "out" / "p.json")
    if res.exit_code == 0:  # a mutation the fit can live with: the profile it wrote is usable
        assert not expect
        assert run("predict", "--profile", tmp_path / "out" / "p.json", "alexnet:4:10").exit_code in (0, 2)
        return
    assert res.exit_code == 2 and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert str(raw) in res.stderr and expect in res.stderr, res.stderr


def test_profile_fit_records_the_fitted_range(tmp_path):
    assert run("profile", "fit", RAW_V100, "-o", tmp_path / "p.json").exit_code == 0
    assert io.read_json(tmp_path / "p.json")["fitted_range"] == {"batch": [1, 32], "share_pct": [10, 100]}
    assert io.read_json(V100_JSON)["fitted_range"] == {"batch": [1, 32], "share_pct": [10, 100]}


def test_raw_profile_lines(tmp_path):
    refused("profile", "fit", write(tmp_path / "a.jsonl", '{"hardware": [1]}\n'), "-o", tmp_path / "p.json",
            expect="a.jsonl:1: each line must be")
    refused("profile", "fit", write(tmp_path / "b.jsonl", '{"hardware": {"unit": NaN}}\n'), "-o",
            tmp_path / "p.json", expect="b.jsonl:1: NaN is not valid JSON")


# -- results CSV, endpoints.json ---------------------------------------------------------------


def test_report_with_non_numeric_cells(tmp_path):
    from igniter_opt.bench.results import COLUMNS

    path = tmp_path / "results.csv"
    row = {c: "" for c in COLUMNS} | {"instance": "a.json", "solver": "greedy", "status": "feasible",
                                      "gpus": "two", "feasible": "True"}
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerow(row)
    refused("report", path, "-o", tmp_path / "rep", expect="row 1: field gpus: must be a number or empty, got 'two'")
    path.write_bytes(b"instance,family\x00\n")
    refused("report", path, "-o", tmp_path / "rep", expect=str(path))


def test_report_of_a_bad_compare_json(tmp_path):
    rows = [{"solver": "greedy", "margin_pct": "ten", "num_gpus": 1, "status": "optimal", "feasible": True}]
    path = write(tmp_path / "compare.json", rows)
    refused("report", path, "-o", tmp_path / "rep", expect="row 0: field margin_pct: must be a number, got 'ten'")
    refused("report", write(tmp_path / "c2.json", {"a": 1}), "-o", tmp_path / "rep", expect="non-empty JSON list")


@pytest.mark.parametrize("endpoints,expect", [
    ([1, 2], "endpoints.json must be a JSON object"),
    ({"servers": {}}, "field servers: must be a list"),
    ({"servers": [{"name": "a"}]}, "servers[0].model_name: missing"),
    ({"servers": [{"name": "a", "model_name": "m", "grpc_url": "x", "gpu": -1}]}, "servers[0].gpu: must be >= 0"),
])
@pytest.mark.extra("deploy")
def test_measure_with_endpoints_of_the_wrong_shape(tmp_path, plan_dict, endpoints, expect):
    plan = write(tmp_path / "plan.json", plan_dict)
    (tmp_path / "run").mkdir()
    write(tmp_path / "run" / "endpoints.json", endpoints)
    refused("measure", plan, "--run-dir", tmp_path / "run", expect=expect)


# -- options and output paths -----------------------------------------------------------------


@pytest.mark.parametrize("args,expect", [
    (["solve", MOTIVATION, "--time-limit", "-1"], "'--time-limit': must be a finite number > 0, got -1.0"),
    (["solve", MOTIVATION, "--time-limit", "nan"], "'--time-limit': must be a finite number > 0"),
    (["solve", MOTIVATION, "--threads", "0"], "'--threads': must be >= 1, got 0"),
    (["solve", MOTIVATION, "--mip-gap", "-0.1"], "'--mip-gap'"),
    (["compare", MOTIVATION, "--time-limit", "inf"], "'--time-limit'"),
    (["batch", MOTIVATION, "-j", "-1"], "'-j' / '--jobs': must be >= 0, got -1"),
    (["batch", MOTIVATION, "--kill-margin", "-5"], "'--kill-margin'"),
    (["validate", "--profile", "v100", "--dry-run", "--min-share", "200"], "'--min-share': must be a share in"),
    (["validate", "--profile", "v100", "--dry-run", "--min-share", "60"], "--min-share 60: "),
    (["validate", "--profile", "v100", "--dry-run", "--samples", "0"], "'--samples'"),
    (["measure", MOTIVATION, "--duration", "0"], "'--duration'"),
    (["instances", "generate", "--family", "random", "--sizes", "0", "-o", "x"], "--sizes: every value must be >= 1"),
    (["instances", "generate", "--family", "random", "--sizes", "4", "--count", "0", "-o", "x"], "'--count'"),
    (["solve", MOTIVATION, "--threads", "x"], "'--threads'"),
    (["solve"], "Missing argument"),
    (["nope"], "No such command 'nope'"),
])
def test_bad_options_are_one_line(args, expect):
    refused(*args, expect=expect)


def test_output_paths(tmp_path):
    deep = tmp_path / "a" / "b" / "plan.json"
    assert run("solve", MOTIVATION, "-o", deep).exit_code == 0 and deep.is_file()  # missing folders made
    refused("solve", MOTIVATION, "-o", tmp_path, expect="is a folder; give a file name")
    blocker = write(tmp_path / "file", "x")
    refused("solve", MOTIVATION, "-o", blocker / "plan.json", expect="is a file, not a folder")
    refused("export-igniter", deep, blocker, expect="is a file, not a folder")
    refused("instances", "generate", "--family", "random", "--sizes", "4", "-o", blocker, expect="is a file")
    refused("validate", "--profile", "v100", "--dry-run", "-o", tmp_path, expect="is a folder")


def test_unwritable_output(tmp_path, monkeypatch):
    def denied(_self, *_args, **_kwargs):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(Path, "write_text", denied)
    refused("solve", MOTIVATION, "-o", tmp_path / "plan.json", expect="cannot write (Permission denied)")


def test_json_output_is_strict(tmp_path):
    assert io.dumps({"a": float("nan"), "b": [float("inf"), 1.5]}, indent=None) == '{"a": null, "b": [null, 1.5]}'
    res = run("solve", MOTIVATION, "--json", "-o", tmp_path / "p.json")
    io.loads_strict(res.stdout, "stdout")
    io.read_json(tmp_path / "p.json")


# -- optional extras --------------------------------------------------------------------------


def _results_csv(tmp_path) -> Path:
    from igniter_opt.bench.results import COLUMNS

    path = tmp_path / "results.csv"
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        for solver, gpus in (("greedy", 2), ("milp", 1)):
            writer.writerow({c: "" for c in COLUMNS} | {"instance": "i.json", "family": "f", "workloads": "4",
                             "solver": solver, "gpus": gpus, "status": "feasible", "seconds": "0.1",
                             "feasible": "True"})
    return path


def test_report_without_matplotlib_writes_tables_and_markdown(tmp_path, monkeypatch):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    res = run("report", _results_csv(tmp_path), "-o", tmp_path / "rep")
    assert res.exit_code == 0, res.stderr
    assert "pip install 'igniter-opt[plot]'" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert (tmp_path / "rep" / "report.md").is_file() and not list((tmp_path / "rep").glob("*.png"))


@pytest.mark.parametrize("module,args,expect", [
    ("docker", ["deploy", "{plan}", "--backend", "docker"], "--backend docker: docker is not installed; "
                                                             "pip install 'igniter-opt[deploy]'"),
    ("grpc", ["measure", "{plan}"], "grpc is not installed; pip install 'igniter-opt[deploy]'"),
    # run checks grpc before tritonclient: only with the rest of the extra installed is tritonclient the one named
    pytest.param("tritonclient", ["run", "{plan}"], "tritonclient is not installed; pip install 'igniter-opt[deploy]'",
                 marks=pytest.mark.extra("deploy")),
    ("pynvml", ["deploy", "{plan}", "--device", "gpu"], "--device gpu (NVML): pynvml is not installed; "
                                                         "pip install 'igniter-opt[deploy]'"),
])
def test_missing_extras_say_which(tmp_path, plan_dict, monkeypatch, module, args, expect):
    plan = write(tmp_path / "plan.json", plan_dict)
    for name in [m for m in sys.modules if m == module or m.startswith(module + ".")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, module, None)
    refused(*[a.format(plan=plan) for a in args], expect=expect)


def test_generated_instance_round_trip(tmp_path):
    inst = Instance("x", "v100", (Workload("a", "alexnet", 15, 500),))
    inst.save(tmp_path / "deep" / "x.json")
    assert load_instance(tmp_path / "deep" / "x.json") == inst
