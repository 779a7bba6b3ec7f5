"""`igniter serve --fleet FILE` (issue 21): policy igniter over GPU slots of several types, a new GPU
of the type with the least cost of the share that serves the workload alone, types recorded in the
plan and /v1/plan showing them and the cost. Real planner, SQLite and HTTP stack; no tritonserver.

The second type's profile is SYNTHETIC: examples/fleets/synthetic-slow.json (derived from the V100
profile by examples/fleets/make_synthetic_profile.py; not a measured GPU)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="needs the 'service' extra: pip install -e '.[service]'")
pytest.importorskip("httpx", reason="needs the 'service' extra: pip install -e '.[service]'")

from fastapi.testclient import TestClient

from igniter_opt.controller.api import create_app
from igniter_opt.controller.core import Config, Controller
from igniter_opt.controller.dataplane import NoPlane
from igniter_opt.controller.fleetplace import load_service_fleet
from igniter_opt.controller.placement import demand, to_solver_plan
from igniter_opt.controller.records import Spec
from igniter_opt.data.errors import InputError
from igniter_opt.solvers.verify import verify

pytestmark = pytest.mark.extra("service")
ROOT = Path(__file__).resolve().parent.parent
SYNTHETIC = ROOT / "examples" / "fleets" / "synthetic-slow.json"


def fleet_file(tmp: Path, types: list[dict], name: str = "fleet.json") -> Path:
    """A fleet file beside a copy of the synthetic profile (so "synthetic-slow.json" is relative)."""
    shutil.copy(SYNTHETIC, tmp / "synthetic-slow.json")
    path = tmp / name
    path.write_text(json.dumps(types))
    return path


V100 = {"type": "v100", "profile": "v100", "count": 1, "price_per_hour": 2.48}
SLOW = {"type": "slow", "profile": "synthetic-slow.json", "count": 2, "price_per_hour": 1.24}


def controller(tmp: Path, fleet: Path) -> Controller:
    ctl = Controller(Config(state_dir=tmp / "state", gpus=1, policy="igniter", fleet=str(fleet)), NoPlane())
    ctl.start()
    return ctl


def W(name: str, model: str = "resnet50", slo: float = 100.0, rate: float = 50.0) -> dict:
    return {"name": name, "model": model, "slo_ms": slo, "rate_rps": rate}


def test_a_fleet_service_places_by_cost_records_types_and_shows_cost(tmp_path: Path) -> None:
    path = fleet_file(tmp_path, [V100, SLOW])
    sf = load_service_fleet(path)
    assert sf.slot_types == (0, 1, 1) and sf.gpus == 3
    spec = Spec("a", "vgg19", 60.0, 120.0)
    per_type = {t.name: (t.price or 0.0) * demand(t.profile, spec).r_lower for t in sf.fleet.types}
    cheapest = min(per_type, key=lambda k: per_type[k])
    ctl = controller(tmp_path, path)
    try:
        assert ctl.config.gpus == 3  # the fleet's counts, not --gpus
        c = TestClient(create_app(ctl))
        assert c.post("/v1/workloads", json=W("a", "vgg19", 60, 120)).status_code == 201
        plan = c.get("/v1/plan").json()
        assert plan["fleet_gpus"] == 3 and plan["num_gpus"] == 1
        assert plan["gpus"][0]["gpu_type"] == cheapest
        price = {"v100": 2.48, "slow": 1.24}
        assert plan["cost"] == pytest.approx(price[cheapest])

        # fill the fleet: each new GPU is of a type with a slot left; the plan verifies per type
        for i in range(8):
            r = c.post("/v1/workloads", json=W(f"w{i}", "vgg19", 60, 150))
            if r.status_code == 409:
                assert r.json()["field"] == "gpus" and "no GPU of type" in r.json()["reason"]
                break
            assert r.status_code == 201, r.json()
        else:
            pytest.fail("a fleet of 3 GPUs took 9 heavy workloads")
        plan = c.get("/v1/plan").json()
        types = [g["gpu_type"] for g in plan["gpus"]]
        assert sorted(types) == ["slow", "slow", "v100"]  # every slot used, each with its type
        assert plan["cost"] == pytest.approx(2.48 + 2 * 1.24)
        assert ctl.store.plan_info().gpu_types == {str(g["gpu"]): g["gpu_type"] for g in plan["gpus"]}
        checked, problems = verify(to_solver_plan(ctl.plan(), ctl.profile, fleet=sf), sf.fleet)
        assert problems == [] and checked.feasible and checked.cost == pytest.approx(plan["cost"])
        # the slow type's predictions differ from the V100's: each GPU was predicted with its own
        slow_gpu = next(g for g in plan["gpus"] if g["gpu_type"] == "slow")
        member = ctl.plan()[slow_gpu["workloads"][0]["name"]]
        v100_view, _ = verify(to_solver_plan({member.name: member}, ctl.profile), ctl.profile)
        assert member.predicted_latency_ms != pytest.approx(v100_view.gpus[0].workloads[0].predicted_latency_ms)

        # a model that no type knows is 422; removal keeps the types and lowers the cost
        assert c.post("/v1/workloads", json=W("x", "bert")).status_code == 422
        for w in slow_gpu["workloads"]:
            assert c.delete(f"/v1/workloads/{w['name']}").status_code == 200
        after = c.get("/v1/plan").json()
        assert len(after["gpus"]) == 2 and after["cost"] == pytest.approx(2.48 + 1.24)
        assert all(g["gpu_type"] == dict(zip(range(3), ("v100", "slow", "slow")))[g["gpu"]] for g in after["gpus"])
    finally:
        ctl.close()

    # a restart whose fleet gives a slot in use another type is refused, naming slot and types
    swapped = fleet_file(tmp_path, [SLOW, V100], "swapped.json")
    with pytest.raises(InputError, match=r"GPU slot \d of type '(v100|slow)'; this fleet makes it"):
        controller(tmp_path, swapped)
    ctl = controller(tmp_path, path)  # the same fleet re-adopts the plan
    ctl.close()


def test_bad_fleet_files_and_options_are_one_line_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from igniter_opt.cli import app

    monkeypatch.delenv("IGNITER_TOKEN", raising=False)
    cases = [
        ([V100, dict(SLOW, count=None)], "fleet[1].count: missing"),
        ([V100, dict(SLOW, price_per_hour=-1)], "fleet[1].price_per_hour"),
        ([V100, dict(SLOW, count=-2)], "fleet[1].count"),
        ([V100, dict(SLOW, type="v100")], "GPU type 'v100' is named twice"),
        ([V100, dict(SLOW, profile="nosuch")], "fleet[1].profile"),
        ([V100, {k: v for k, v in SLOW.items() if k != "price_per_hour"}], "give every type a price"),
        ([dict(V100, count=0)], "every count is 0"),
        ({"type": "v100"}, "non-empty list"),
    ]
    runner = CliRunner()
    for i, (types, message) in enumerate(cases):
        items = [{k: v for k, v in t.items() if v is not None} for t in types] if isinstance(types, list) else types
        path = fleet_file(tmp_path, items, f"bad{i}.json")  # type: ignore[arg-type]
        with pytest.raises(InputError, match=message.replace("[", r"\[").replace("]", r"\]")):
            load_service_fleet(path)
        result = runner.invoke(app, ["serve", "--fleet", str(path), "--backend", "none",
                                     "--state-dir", str(tmp_path / "s")])
        assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output, result.output
        assert str(path) in result.output
    good = fleet_file(tmp_path, [V100, SLOW])
    for args, message in ((["--gpus", "2"], "not with --fleet"), (["--policy", "exact"], "policy igniter only"),
                          (["--backend", "ray"], "--backend ray needs a running cluster")):  # a fleet is fine on ray
        result = runner.invoke(app, ["serve", "--fleet", str(good), "--state-dir", str(tmp_path / "s"), *args],
                               env={"RAY_ADDRESS": ""})
        assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output, result.output
    result = runner.invoke(app, ["serve", "--state-dir", str(tmp_path / "s"), "--backend", "none"])
    assert result.exit_code == 2 and "--gpus: missing" in result.output
