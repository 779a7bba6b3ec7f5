"""Fuzz every file the CLI reads: random bytes, random JSON shapes, and valid files with one field
replaced by an extreme or ill-typed value. The CLI must answer with an exit code (2 for bad input,
1 for a failed check, 0 when the file was still valid) and never with a traceback.

The CLI runs in-process (typer's CliRunner): hundreds of examples take seconds.
"""

from __future__ import annotations

import csv
import io as stdio
import json
import os
import tempfile
import traceback
from pathlib import Path
from typing import Any

import pytest
from conftest import RAW_V100, ROOT
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from igniter_opt.bench.results import COLUMNS
from igniter_opt.cli import app
from igniter_opt.data.instance import load_instance
from igniter_opt.solvers.solve import solve

MOTIVATION = ROOT / "instances" / "paper" / "motivation.json"
V100_JSON = ROOT / "igniter_opt" / "profiles" / "v100.json"
# IGNITER_FUZZ_EXAMPLES=1000 for a longer hunt; the default keeps the suite fast.
FUZZ = settings(max_examples=int(os.environ.get("IGNITER_FUZZ_EXAMPLES", "60")), deadline=None,
                suppress_health_check=list(HealthCheck), database=None)

# What each reader is fed through: {f} is the fuzzed file, {d} a scratch folder, {plan} a valid plan.
READERS = {
    "instance": [["solve", "{f}", "-o", "{d}/out/plan.json"], ["compare", "{f}", "--solvers", "greedy,ffd"]],
    "plan": [["verify", "{f}", "-o", "{d}/out/v.json"], ["export-igniter", "{f}", "{d}/cfg"]],
    "profile": [["profile", "show", "{f}", "--json"], ["predict", "--profile", "{f}", "alexnet:4:10", "vgg19:16:50"],
                ["solve", "{d}/uses-profile.json", "--solver", "greedy"]],
    "raw profile": [["profile", "fit", "{f}", "-o", "{d}/out/p.json"]],
    "results CSV": [["report", "{f}", "-o", "{d}/rep", "--no-plots"]],
    "compare JSON": [["report", "{f}", "-o", "{d}/rep", "--no-plots"]],
    "endpoints.json": [["measure", "{plan}", "--run-dir", "{d}", "--duration", "0.1"]],
}
FILE_NAME = {"endpoints.json": "endpoints.json", "raw profile": "raw.jsonl", "results CSV": "results.csv",
             "compare JSON": "compare.json"}


def run_reader(kind: str, content: bytes, allowed: tuple[int, ...]) -> None:
    """Feed `content` to every command that reads `kind`; check the exit and that nothing escaped."""
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        f = d / FILE_NAME.get(kind, "input.json")
        f.write_bytes(content)
        plan = d / "plan.json"
        plan.write_text(PLAN_TEXT)
        (d / "uses-profile.json").write_text(json.dumps({**INSTANCE, "profile": str(f)}))
        for command in READERS[kind]:
            args = [a.format(f=f, d=d, plan=plan) for a in command]
            res = CliRunner().invoke(app, args)
            if res.exception is not None and not isinstance(res.exception, SystemExit):
                pytest.fail(f"{args}: uncaught\n" + "".join(traceback.format_exception(*res.exc_info)))
            assert "Traceback" not in res.output, (args, res.output)
            assert res.exit_code in allowed, (args, res.exit_code, res.stdout[-300:], res.stderr)
            if res.exit_code == 2:
                assert len(res.stderr.strip().splitlines()) == 1, (args, res.stderr)


PLAN_TEXT = json.dumps(solve(load_instance(MOTIVATION), "greedy").to_dict())


# -- strategies -------------------------------------------------------------------------------

EXTREMES = [0, -0.0, -1, 1, 2.5, 1e-324, 5e-324, 1e-300, 1e20, 1e308, -1e308, 10**30, 2**63, -(2**63),
            float("nan"), float("inf"), float("-inf"), True, False, None, "", " ", "x", "1e3", "[/b]", "[red]",
            "\u00e9\u2028", [], {}, [1], {"a": 1}]
scalars = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True)
           | st.text(max_size=8) | st.sampled_from(EXTREMES))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path into a JSON value (to a dict entry or list item), the root excluded."""
    out = []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else []
    for key, child in items:
        out.append((*prefix, key))
        out += _paths(child, (*prefix, key))
    return out


@st.composite
def mutated(draw, base: Any) -> Any:
    """A deep copy of `base` with one entry replaced by an extreme/ill-typed value, or deleted."""
    doc = json.loads(json.dumps(base))
    path = draw(st.sampled_from(_paths(doc)))
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    if draw(st.integers(0, 5)) == 0:
        del parent[path[-1]]
    else:
        parent[path[-1]] = draw(st.sampled_from(EXTREMES) | json_values)
    return doc


def dump(doc: Any) -> bytes:
    """JSON text as another tool might write it: NaN/Infinity allowed through (and refused by us)."""
    return json.dumps(doc).encode()


INSTANCE = json.loads(MOTIVATION.read_text())
PLAN = json.loads(PLAN_TEXT)
PROFILE = json.loads(V100_JSON.read_text())
RAW_LINES = [line for line in RAW_V100.read_text().splitlines() if line.strip()]
# Servers named unlike the plan's workloads: a valid file ends at "no running server" (exit 2),
# so the fuzz never starts a load generator.
ENDPOINTS = {"instance": "motivation", "servers": [
    {"name": f"s{i}", "model_name": f"m{i}", "grpc_url": "127.0.0.1:1", "http_url": "127.0.0.1:2", "gpu": i}
    for i in range(2)]}
COMPARE = [{"instance": "motivation", "solver": s, "margin_pct": m, "num_gpus": 1, "lower_bound": 1,
            "status": "optimal", "gap": 0.0, "total_share_pct": 77.5, "feasible": True, "solve_seconds": 0.1,
            "message": ""} for s in ("greedy", "milp") for m in (0, 10)]
VALID = {"instance": INSTANCE, "plan": PLAN, "profile": PROFILE, "endpoints.json": {"servers": []},
         "compare JSON": COMPARE}


# -- random bytes and random JSON: never valid, always exit 1 or 2 ----------------------------


@FUZZ
@given(kind=st.sampled_from(sorted(READERS)), content=st.binary(max_size=200))
def test_random_bytes(kind, content):
    run_reader(kind, content, (1, 2))


@FUZZ
@given(kind=st.sampled_from(sorted(READERS)), doc=json_values)
def test_random_json_shapes(kind, doc):
    run_reader(kind, dump(doc), (1, 2))


# -- valid files with one field broken: exit 0, 1 or 2, never a traceback ---------------------


@FUZZ
@given(data=st.data(), kind=st.sampled_from(sorted(VALID)))
def test_one_broken_field(data, kind):
    doc = data.draw(mutated(VALID[kind] if kind != "endpoints.json" else ENDPOINTS))
    run_reader(kind, dump(doc), (0, 1, 2))


@FUZZ
@given(data=st.data())
def test_one_broken_field_of_a_raw_profile(data):
    lines = list(RAW_LINES)
    i = data.draw(st.integers(0, len(lines) - 1))
    lines[i] = json.dumps(data.draw(mutated(json.loads(lines[i]))))
    run_reader("raw profile", "\n".join(lines).encode(), (0, 2))


@FUZZ
@given(slo=st.sampled_from(EXTREMES) | st.floats(), rate=st.sampled_from(EXTREMES) | st.floats(),
       model=st.sampled_from(["alexnet", "resnet50", "vgg19", "ssd", "bert", ""]))
def test_extreme_workloads(slo, rate, model):
    doc = {"name": "x", "profile": "v100", "workloads": [
        {"name": "a", "model": model, "slo_ms": slo, "rate_rps": rate},
        {"name": "b", "model": "alexnet", "slo_ms": 15, "rate_rps": 500}]}
    run_reader("instance", dump(doc), (0, 1, 2))


@FUZZ
@given(cells=st.lists(st.fixed_dictionaries({c: st.sampled_from(["", "1", "x", "nan", "inf", "-3", "2.5", "True"])
                                             | st.text(max_size=5) for c in COLUMNS}), min_size=1, max_size=4))
def test_results_csv_cells(cells):
    out = stdio.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(cells)
    run_reader("results CSV", out.getvalue().encode(), (0, 1, 2))


@FUZZ
@given(name=st.text(max_size=12) | st.sampled_from(["[/b]", "[red]x[/red]", "[bold", "a\nb", "\x00", "é\u2028"]))
def test_any_name_is_printed_as_it_is(name):
    doc = {"name": name, "profile": "v100", "workloads": [
        {"name": name, "model": "alexnet", "slo_ms": 15, "rate_rps": 500},
        {"name": name + "'", "model": "vgg19", "slo_ms": 60, "rate_rps": 100}]}
    run_reader("instance", dump(doc), (0, 1, 2))
    plan = json.loads(PLAN_TEXT)
    plan["instance"] = name
    plan["gpus"][0]["workloads"][0]["name"] = name
    run_reader("plan", dump(plan), (0, 1, 2))
