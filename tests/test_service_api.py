"""The service's API over a controller without servers (--backend none): validation, errors,
tokens, concurrency, both policies, state across restarts. Real planner, real SQLite, real HTTP
stack (FastAPI's TestClient / httpx over ASGI); no tritonserver."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="needs the 'service' extra: pip install -e '.[service]'")
pytest.importorskip("httpx", reason="needs the 'service' extra: pip install -e '.[service]'")

import httpx
from fastapi.testclient import TestClient

from igniter_opt.controller.api import create_app
from igniter_opt.controller.core import Config, Controller
from igniter_opt.controller.dataplane import NoPlane
from igniter_opt.controller.placement import gpus_of, to_solver_plan
from igniter_opt.controller.server import check_binding, read_token
from igniter_opt.data.errors import InputError
from igniter_opt.model import load_profile
from igniter_opt.solvers.verify import verify

pytestmark = pytest.mark.extra("service")
TOKEN = "s3cret-token-0123456789"


def controller(tmp: Path, gpus: int = 3, policy: str = "igniter", **kw: object) -> Controller:
    ctl = Controller(Config(state_dir=tmp, gpus=gpus, policy=policy, **kw), NoPlane())  # type: ignore[arg-type]
    ctl.start()
    return ctl


def snapshot(ctl: Controller) -> tuple:
    return ctl.plan(), ctl.store.endpoints(), ctl.version()


def assert_verifies(ctl: Controller) -> None:
    plan = ctl.plan()
    profile = load_profile("v100")
    checked, problems = verify(to_solver_plan(plan, profile), profile)
    assert problems == [] and (checked.feasible or not plan)
    for members in gpus_of(plan).values():
        assert sum(m.share_pct for m in members) <= 100 + 1e-9


def W(name: str, model: str = "resnet50", slo: float = 100.0, rate: float = 50.0) -> dict:
    return {"name": name, "model": model, "slo_ms": slo, "rate_rps": rate}


def test_admit_answers_with_place_and_endpoint(tmp_path):
    ctl = controller(tmp_path)
    try:
        c = TestClient(create_app(ctl))
        r = c.post("/v1/workloads", json=W("a"))
        assert r.status_code == 201
        w = r.json()["workloads"][0]
        assert w["gpu"] == 0 and 0 < w["share_pct"] <= 100 and w["batch"] >= 1
        assert 0 < w["predicted_latency_ms"] <= 50.0  # SLO/2
        assert w["endpoint"]["version"] == 1 and w["endpoint"]["model_name"] == "a"
        assert c.get("/v1/workloads/a").json()["share_pct"] == w["share_pct"]
        assert "/v1/workloads" in c.get("/openapi.json").json()["paths"]
        text = c.get("/metrics").text
        assert "igniter_workloads 1.0" in text and 'igniter_admissions_total{result="admitted"} 1.0' in text
        assert c.get("/healthz").json() == {"status": "ok", "emulated": False} and c.get("/readyz").status_code == 200
    finally:
        ctl.close()


BAD = [  # (method, path, body, raw, expected status, expected field)
    ("post", "/v1/workloads", W("x", model="bert"), None, 422, "model"),
    ("post", "/v1/workloads", W("x", rate=-5), None, 422, "rate_rps"),
    ("post", "/v1/workloads", None, b'{"name":"x","model":"resnet50","slo_ms":100,"rate_rps":NaN}', 422, "rate_rps"),
    ("post", "/v1/workloads", None, b'{"name":"x","model":"resnet50","slo_ms":100,"rate_rps":Infinity}', 422,
     "rate_rps"),
    ("post", "/v1/workloads", W("x", rate=1e12), None, 422, "rate_rps"),
    ("post", "/v1/workloads", W("x"), "WRONG-TOKEN", 401, "authorization"),
    ("post", "/v1/workloads", W("x", slo=-1), None, 422, "slo_ms"),
    ("post", "/v1/workloads", None, b'{"name":"x","model":"resnet50","slo_ms":NaN,"rate_rps":5}', 422, "slo_ms"),
    ("post", "/v1/workloads", W("x", slo=1e9), None, 422, "slo_ms"),
    ("post", "/v1/workloads", W("x", slo=0.001), None, 409, "slo_ms"),
    ("post", "/v1/workloads", W("x", rate=5000, slo=20), None, 409, "rate_rps"),
    ("post", "/v1/workloads", W("keep"), None, 409, "name"),
    ("post", "/v1/workloads", W(".." + "/etc"), None, 422, "name"),
    ("post", "/v1/workloads", W("a/b"), None, 422, "name"),
    ("post", "/v1/workloads", W(".hidden"), None, 422, "name"),
    ("post", "/v1/workloads", W("x" * 65), None, 422, "name"),
    ("post", "/v1/workloads", W(""), None, 422, "name"),
    ("post", "/v1/workloads", None, b'{"name": "x", "model": ', 422, "body"),
    ("post", "/v1/workloads", None, b'{"name":"x","model":"resnet50","slo_ms":100,"rate_rps":5,"gpu":3}', 422,
     "gpu"),
    ("post", "/v1/workloads", None, b'{"workloads": []}', 422, "name"),
    ("post", "/v1/workloads", None, b"[" + b"1," * 40000 + b"1]", 413, "body"),
    ("post", "/v1/workloads:batch", {"workloads": [W("d1"), W("d1")]}, None, 422, "body"),
    ("patch", "/v1/workloads/ghost", {"rate_rps": 10}, None, 404, "name"),
    ("patch", "/v1/workloads/keep", {}, None, 422, "body"),
    ("delete", "/v1/workloads/ghost", None, None, 404, "name"),
]


def test_25_bad_requests_each_a_4xx_json_and_nothing_changes(tmp_path):
    assert len(BAD) == 25
    ctl = controller(tmp_path, gpus=2)
    try:
        c = TestClient(create_app(ctl, token=TOKEN), headers={"Authorization": f"Bearer {TOKEN}"})
        assert c.post("/v1/workloads", json=W("keep")).status_code == 201
        before = snapshot(ctl)
        for method, path, body, raw, status, field in BAD:
            headers = {"content-type": "application/json"}
            kwargs: dict = {"json": body} if body is not None else {}
            if raw == "WRONG-TOKEN":
                headers["Authorization"] = "Bearer " + TOKEN[::-1]
            elif raw is not None:
                kwargs = {"content": raw}
            r = c.request(method.upper(), path, headers=headers, **kwargs)
            assert r.status_code == status, (path, body, raw and raw[:80], r.text)
            answer = r.json()
            assert set(answer) == {"field", "reason"} and answer["reason"], answer
            assert answer["field"] == field, (answer, path, body)
            assert snapshot(ctl) == before
    finally:
        ctl.close()


def test_serve_refuses_bad_options_in_one_line(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from igniter_opt.cli import app

    monkeypatch.delenv("IGNITER_TOKEN", raising=False)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    runner = CliRunner()
    for args, message in ((["--host", "0.0.0.0"], "needs a bearer token"),
                          (["--backend", "ray"], "needs a running cluster"),
                          (["--margin", "120"], "--margin 120")):
        result = runner.invoke(app, ["serve", "--gpus", "2", "--state-dir", str(tmp_path / "s"), *args])
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output and "Traceback" not in result.output


def test_token_rules(tmp_path):
    with pytest.raises(InputError, match="needs a bearer token"):
        check_binding("0.0.0.0", None)
    check_binding("127.0.0.1", None)
    check_binding("::1", None)
    check_binding("0.0.0.0", TOKEN)
    short = tmp_path / "short"
    short.write_text("abc\n")
    with pytest.raises(InputError, match="at least 16"):
        read_token(short)
    good = tmp_path / "tok"
    good.write_text(TOKEN + "\n")
    assert read_token(good, env={}) == TOKEN
    assert read_token(None, env={"IGNITER_TOKEN": TOKEN}) == TOKEN
    assert read_token(None, env={}) is None
    ctl = controller(tmp_path / "state")
    try:
        c = TestClient(create_app(ctl, token=TOKEN))
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            r = c.post("/v1/workloads", json=W("a"), headers=headers)
            assert r.status_code == 401 and r.json()["field"] == "authorization"
            assert TOKEN not in r.text
        assert ctl.plan() == {}
        assert c.get("/healthz").status_code == 200  # probes stay open
        ok = c.post("/v1/workloads", json=W("a"), headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 201
    finally:
        ctl.close()


def test_100_concurrent_admissions_every_one_answered_and_the_plan_verifies(tmp_path):
    ctl = controller(tmp_path, gpus=4)
    rng = random.Random(7)
    models = ["alexnet", "resnet50", "vgg19", "ssd"]
    bodies = [W(f"w{i}", rng.choice(models), rng.choice([50.0, 100.0, 200.0]), rng.choice([10.0, 40.0, 120.0]))
              for i in range(100)]

    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=create_app(ctl))
        async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=120) as client:
            return await asyncio.gather(*[client.post("/v1/workloads", json=b) for b in bodies])
    try:
        answers = asyncio.run(run())
        codes = [r.status_code for r in answers]
        assert set(codes) <= {201, 409}, codes
        admitted = {b["name"] for b, r in zip(bodies, answers) if r.status_code == 201}
        assert 0 < len(admitted) < 100  # the fleet fills up: some placed, some refused
        assert set(ctl.plan()) == admitted
        assert all(r.json()["field"] == "gpus" for r in answers if r.status_code == 409)
        assert_verifies(ctl)
        assert ctl.version() == len(admitted)
    finally:
        ctl.close()


def test_igniter_policy_removal_keeps_co_runners_and_restart_keeps_state(tmp_path):
    ctl = controller(tmp_path, gpus=2)
    c = TestClient(create_app(ctl))
    for name, model in (("a", "resnet50"), ("b", "vgg19"), ("c", "alexnet")):
        assert c.post("/v1/workloads", json=W(name, model)).status_code == 201
    before = c.get("/v1/workloads").json()["workloads"]
    assert c.delete("/v1/workloads/b").status_code == 200
    after = {w["name"]: w for w in c.get("/v1/workloads").json()["workloads"]}
    same = ("gpu", "share_pct", "batch", "endpoint")
    for w in before:
        if w["name"] != "b":  # same GPU, share, batch and endpoint; less interference: not slower
            assert {k: after[w["name"]][k] for k in same} == {k: w[k] for k in same}
            assert after[w["name"]]["predicted_latency_ms"] <= w["predicted_latency_ms"]
    r = c.patch("/v1/workloads/a", json={"rate_rps": 150.0})
    assert r.status_code == 200 and r.json()["rate_rps"] == 150.0
    assert r.json()["endpoint"]["version"] > after["a"]["endpoint"]["version"]
    listed = c.get("/v1/workloads").json()
    ctl.close()
    again = controller(tmp_path, gpus=2)
    try:
        assert TestClient(create_app(again)).get("/v1/workloads").json() == listed
    finally:
        again.close()


def test_long_poll_answers_when_the_endpoint_changes(tmp_path):
    ctl = controller(tmp_path)

    async def run() -> tuple[int, int]:
        transport = httpx.ASGITransport(app=create_app(ctl))
        async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=30) as client:
            first = (await client.post("/v1/workloads", json=W("a"))).json()["workloads"][0]["endpoint"]["version"]
            poll = asyncio.ensure_future(client.get(f"/v1/workloads/a/endpoint?after_version={first}&wait=20"))
            await asyncio.sleep(0.3)
            assert not poll.done()
            await client.patch("/v1/workloads/a", json={"rate_rps": 80.0})
            return first, (await asyncio.wait_for(poll, 10)).json()["version"]
    try:
        first, second = asyncio.run(run())
        assert second > first
    finally:
        ctl.close()


def test_exact_policy_reports_both_objectives_and_respects_max_changes(tmp_path):
    ctl = controller(tmp_path / "a", gpus=4, policy="exact", time_limit_s=20.0)
    try:
        c = TestClient(create_app(ctl))
        for i, (model, rate) in enumerate([("resnet50", 60.0), ("vgg19", 40.0), ("alexnet", 100.0),
                                           ("resnet50", 80.0), ("ssd", 10.0), ("vgg19", 20.0)]):
            assert c.post("/v1/workloads", json=W(f"w{i}", model, 100.0, rate)).status_code == 201
        r = c.patch("/v1/workloads/w0", json={"rate_rps": 200.0})
        assert r.status_code == 200
        plan = c.get("/v1/plan").json()
        gpus, changes = plan["objectives"]["gpus"], plan["objectives"]["changes"]
        assert gpus["status"] in ("optimal", "time_limit") and gpus["lower_bound"] <= plan["num_gpus"]
        assert plan["num_gpus"] == gpus["value"]
        assert changes["status"] in ("optimal", "optimal_over_candidates", "best_found")
        assert changes["lower_bound"] <= changes["value"] <= changes["running"] == 5
        assert_verifies(ctl)
    finally:
        ctl.close()
    strict = controller(tmp_path / "b", gpus=1, policy="exact", max_changes=0)
    try:
        c = TestClient(create_app(strict))
        assert c.post("/v1/workloads", json=W("a", "resnet50", 100.0, 100.0)).status_code == 201
        assert c.post("/v1/workloads", json=W("b", "resnet50", 100.0, 100.0)).status_code == 201
        before = snapshot(strict)
        r = c.post("/v1/workloads", json=W("c", "vgg19", 100.0, 200.0))
        if r.status_code == 409:  # placing c needs a co-runner re-shared: refused, nothing changed
            assert r.json()["field"] in ("max_changes", "gpus") and snapshot(strict) == before
        else:
            assert all(strict.plan()[n].same_place(before[0][n]) for n in ("a", "b"))
    finally:
        strict.close()


def test_a_workload_at_a_margin_gets_headroom(tmp_path):
    ctl = controller(tmp_path, gpus=2)
    try:
        c = TestClient(create_app(ctl))
        plain = c.post("/v1/workloads", json=W("plain", "vgg19", 60.0, 100.0)).json()["workloads"][0]
        safe = c.post("/v1/workloads", json={**W("safe", "vgg19", 60.0, 100.0), "margin_pct": 20.0}).json()
        safe = safe["workloads"][0]
        assert plain["margin_pct"] == 0.0 and safe["margin_pct"] == 20.0
        assert safe["predicted_latency_ms"] <= 0.8 * 30.0 + 1e-9 < plain["predicted_latency_ms"]
        r = c.post("/v1/workloads", json={**W("x"), "margin_pct": 80.0})
        assert r.status_code == 422 and r.json()["field"] == "margin_pct"
        assert c.patch("/v1/workloads/safe", json={"rate_rps": 90.0}).json()["margin_pct"] == 20.0  # kept
    finally:
        ctl.close()


def test_one_controller_per_state_dir_and_a_fleet_that_holds_the_plan(tmp_path):
    ctl = controller(tmp_path, gpus=3)
    try:
        with pytest.raises(InputError, match="this --state-dir is in use by pid "):
            controller(tmp_path, gpus=3)
        c = TestClient(create_app(ctl))
        for i in range(3):  # one vgg19 at 52.5% per GPU slot
            assert c.post("/v1/workloads", json=W(f"v{i}", "vgg19", 10.0, 10.0)).json()["workloads"][0]["gpu"] == i
    finally:
        ctl.close()
    smaller = Controller(Config(state_dir=tmp_path, gpus=2), NoPlane())
    with pytest.raises(InputError, match=r"--gpus 2: the plan .* uses GPU slot 2; start with --gpus 3"):
        smaller.start()
    smaller.close()  # as `igniter serve` does after a failed start: the directory is free again
    controller(tmp_path, gpus=3).close()
