"""`igniter serve --device emulate`: the emulation file follows the controller's plan (a stand-in
tritonserver answering Triton's health endpoint, as in test_service_dataplane.py): each server's
key is its id, its service times are the model's prediction at its share with the plan's
co-runners (rewritten when one arrives or leaves), injected errors are carried, and the service
says it is an emulation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="needs the 'service' extra: pip install -e '.[service]'")

from fastapi.testclient import TestClient

from igniter_opt.controller.api import create_app
from igniter_opt.controller.core import Config, Controller
from igniter_opt.controller.emulated import EmulatedPlane
from igniter_opt.controller.records import Spec
from igniter_opt.controller.server import ServeOptions, make_plane
from igniter_opt.data.errors import InputError
from igniter_opt.model import load_profile, predict
from tests.test_service_dataplane import fake, servers_under  # noqa: F401  (the fixture)

pytestmark = pytest.mark.extra("service")


def service_ms(state: Path, key: str) -> list[float]:
    return json.loads((state / "emulation.json").read_text())["servers"][key]["service_ms"]


def test_the_emulation_file_follows_the_plan(tmp_path, fake):  # noqa: F811
    state = tmp_path / "state"
    profile = load_profile("v100")
    plane = EmulatedPlane(state, profile, {"a": 1.5}, time_scale=4.0, tritonserver=fake, ready_timeout_s=20)
    ctl = Controller(Config(state_dir=state, gpus=1, grace_s=0.2), plane, profile)
    ctl.start()
    try:
        ctl.add([Spec("a", "alexnet", 15.0, 200.0)])
        a = ctl.plan()["a"]
        key_a = ctl.store.endpoints()["a"].server_id
        assert key_a is not None
        doc = json.loads((state / "emulation.json").read_text())
        assert doc["emulated"] is True and doc["time_scale"] == 4.0
        srv = doc["servers"][key_a]
        assert srv["active"] and srv["error"] == 1.5 and srv["share_pct"] == a.share_pct
        alone = [float(predict(profile, ["alexnet"], [n], [a.share_pct]).latency_ms[0]) for n in range(1, a.batch + 1)]
        assert srv["service_ms"] == pytest.approx(alone)
        cfg = (state / "servers" / key_a / "repo" / "a" / "config.pbtxt").read_text()
        assert str(state.resolve() / "emulation.json") in cfg and key_a in cfg and "KIND_CPU" in cfg

        ctl.add([Spec("b", "resnet50", 40.0, 100.0)])  # one GPU: b runs beside a
        plan = ctl.plan()
        key_b = ctl.store.endpoints()["b"].server_id
        assert key_b is not None and plan["a"].gpu == plan["b"].gpu
        key_a2 = ctl.store.endpoints()["a"].server_id  # a re-shared gets a new server, else keeps its own
        assert key_a2 is not None
        share_a, share_b = plan["a"].share_pct, plan["b"].share_pct
        beside = float(predict(profile, ["alexnet", "resnet50"], [1, plan["b"].batch],
                               [share_a, share_b]).latency_ms[0])
        assert service_ms(state, key_a2)[0] == pytest.approx(beside)
        assert beside > float(predict(profile, ["alexnet"], [1], [share_a]).latency_ms[0])  # interference
        assert json.loads((state / "emulation.json").read_text())["servers"][key_b]["error"] == 1.0

        ctl.remove("b")  # b leaves: a's service times are those of a alone again
        assert service_ms(state, key_a2)[0] == pytest.approx(
            float(predict(profile, ["alexnet"], [1], [share_a]).latency_ms[0]))

        client = TestClient(create_app(ctl))
        body = client.get("/v1/plan").json()
        assert body["emulated"] is True and body["emulation"]["inject_error"] == {"a": 1.5}
        assert client.get("/readyz").json()["emulated"] is True and client.get("/healthz").json()["emulated"]
    finally:
        ctl.close(teardown=True)
    assert servers_under(state) == []


def test_emulation_options_are_checked(tmp_path):
    config = Config(state_dir=tmp_path, gpus=1)
    with pytest.raises(InputError, match="--device emulate runs with --backend local"):
        make_plane(config, ServeOptions(backend="ray", device="emulate"))
    with pytest.raises(InputError, match="are for --device emulate"):
        make_plane(config, ServeOptions(backend="local", device="cpu", time_scale=2.0))


@pytest.mark.parametrize(("args", "message"), [
    (["--inject-error", "a=0"], "factor must be a finite number > 0"),
    (["--inject-error", "a"], "expected NAME=FACTOR"),
    (["--time-scale", "0.5"], "--time-scale: must be a finite number >= 1"),
    (["--backend", "none"], "--device emulate runs with --backend local"),
])
def test_serve_emulate_bad_options_are_one_line_exit_2(tmp_path, args, message):
    from typer.testing import CliRunner

    from igniter_opt.cli.app import app

    result = CliRunner().invoke(app, ["serve", "--gpus", "1", "--device", "emulate", "--state-dir",
                                      str(tmp_path / "st"), "--port", "1", *args])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


def test_top_url_unreachable_is_one_line_exit_1():
    from typer.testing import CliRunner

    from igniter_opt.cli.app import app
    from igniter_opt.deploy.backends.launcher import free_port

    result = CliRunner().invoke(app, ["top", "--url", f"http://127.0.0.1:{free_port()}", "--once"])
    assert result.exit_code == 1 and "unreachable" in result.output and "Traceback" not in result.output


def test_fleet_is_refused_with_emulate_or_shadow(tmp_path):
    from typer.testing import CliRunner

    from igniter_opt.cli.app import app

    fleet = tmp_path / "fleet.json"
    fleet.write_text('{"types": [{"name": "v100", "profile": "v100", "count": 1}]}')
    for extra in (["--device", "emulate"], ["--shadow"]):
        result = CliRunner().invoke(app, ["serve", "--fleet", str(fleet), "--state-dir", str(tmp_path / "st"),
                                          *extra])
        assert result.exit_code == 2 and "not with --device emulate or --shadow" in result.output
