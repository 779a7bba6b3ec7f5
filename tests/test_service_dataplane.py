"""The service's data plane with a stand-in tritonserver (a real process answering Triton's health
endpoint; it exits at once when its repository is named bad*, and on its first start when named
flaky*): a start that fails once is retried, one that fails twice rolls the change back, and a
restarted controller re-adopts live servers, restarts dead ones and kills orphans."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="needs the 'service' extra: pip install -e '.[service]'")

from fastapi.testclient import TestClient

from igniter_opt.controller.api import create_app
from igniter_opt.controller.apply import ApplyError
from igniter_opt.controller.core import Config, Controller
from igniter_opt.controller.dataplane import LocalPlane
from igniter_opt.controller.records import Server, Spec
from igniter_opt.deploy.backends.local import running

pytestmark = pytest.mark.extra("service")

FAKE = f"""#!{sys.executable}
import http.server, os, sys
args = dict(a[2:].split("=", 1) for a in sys.argv[1:] if a.startswith("--") and "=" in a)
repo = args["model-repository"]
if "/bad" in repo:
    sys.exit(1)
tried = os.path.join(os.path.dirname(os.path.dirname(repo)), "flaky.tried")  # beside the servers
if "/flaky" in repo and not os.path.exists(tried):  # fails its first start only
    open(tried, "w").close()
    sys.exit(3)
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/v2/health/ready" else 404)
        self.end_headers()
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", int(args["http-port"])), H).serve_forever()
"""


@pytest.fixture()
def fake(tmp_path: Path) -> str:
    path = tmp_path / "bin" / "tritonserver"
    path.parent.mkdir()
    path.write_text(FAKE)
    path.chmod(0o755)
    return str(path)


def servers_under(state: Path) -> list[int]:
    marker = str(state.resolve() / "servers")
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and running(int(p.name))
            and marker in (p / "cmdline").read_bytes().decode(errors="replace") if (p / "cmdline").exists()]


def make(state: Path, fake: str) -> Controller:
    ctl = Controller(Config(state_dir=state, gpus=2, grace_s=0.2), LocalPlane(state, fake, ready_timeout_s=20))
    ctl.start()
    return ctl


def test_a_failed_start_rolls_the_change_back(tmp_path, fake):
    state = tmp_path / "state"
    ctl = make(state, fake)
    try:
        ctl.add([Spec("good", "resnet50", 100.0, 30.0)])
        before = (ctl.plan(), ctl.store.endpoints(), ctl.version(), ctl.store.servers())
        with pytest.raises(ApplyError, match=r"exited before it was ready \(exit status 1\).*again: .*exit status 1"):
            ctl.add([Spec("bad1", "vgg19", 100.0, 30.0)])
        assert (ctl.plan(), ctl.store.endpoints(), ctl.version(), ctl.store.servers()) == before
        r = TestClient(create_app(ctl)).post("/v1/workloads", json={"name": "bad2", "model": "alexnet",
                                                                    "slo_ms": 100, "rate_rps": 30})
        assert r.status_code == 503 and r.json()["field"] == "server" and "rolled back" in r.json()["reason"]
        assert (ctl.plan(), ctl.store.endpoints(), ctl.version(), ctl.store.servers()) == before
        assert len(servers_under(state)) == 1  # only good's
    finally:
        ctl.close(teardown=True)
    assert servers_under(state) == []


def test_a_start_that_fails_once_is_retried_with_new_ports(tmp_path, fake, capsys):
    state = tmp_path / "state"
    ctl = make(state, fake)
    try:
        ctl.add([Spec("flaky", "resnet50", 100.0, 30.0)])
        said = capsys.readouterr().err  # the operator sees the failed start and the retry
        assert "flaky-s1 exited before it was ready (exit status 3)" in said and "once more on new ports" in said
        (server,) = ctl.store.servers()  # the failed one's row is gone
        assert server.id == "flaky-s2" and server.status == "serving" and ctl.plane.alive(server)
        assert ctl.store.endpoints()["flaky"].server_id == server.id
        assert (state / "servers" / "flaky.tried").exists()  # its first start did fail
        assert servers_under(state) == [server.pid]
    finally:
        ctl.close(teardown=True)
    assert servers_under(state) == []


def test_restart_readopts_restarts_the_dead_and_kills_orphans(tmp_path, fake):
    state = tmp_path / "state"
    first = make(state, fake)
    first.add([Spec("a", "resnet50", 100.0, 30.0)])
    first.add([Spec("b", "vgg19", 200.0, 10.0)])
    endpoints = first.store.endpoints()
    servers = {s.workload: s for s in first.store.servers()}
    orphan = first.plane.spawn(Server(id="zz-s99", workload="zz", status="starting"),
                               first.plan()["a"])  # started, never committed: a crash in between
    first.plane.stop(servers["b"])  # b's server died while the controller was away
    first._stop.set()  # the controller "crashes": servers left running, its state file and lock released
    first.store.close()
    assert running(orphan.pid) and running(servers["a"].pid)
    second = make(state, fake)
    try:
        now = second.store.endpoints()
        assert now["a"] == endpoints["a"]  # adopted: same server, same version
        assert now["b"].server_id != endpoints["b"].server_id and now["b"].version > endpoints["b"].version
        assert not running(orphan.pid)
        assert set(second.plan()) == {"a", "b"} and "adopted 1 server(s)" in second.notes[0]
        assert sorted(s.workload for s in second.store.servers()) == ["a", "b"]
    finally:
        second.close(teardown=True)
    assert servers_under(state) == []
    assert os.path.isdir(state / "servers")
