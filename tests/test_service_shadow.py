"""`igniter serve --shadow` on the emulated plane with a stand-in tritonserver (as in
test_service_dataplane.py): every workload gets a warm shadow at deploy/shadow.py's share, idle in
the emulation file; K violating client windows switch its endpoint to the shadow (version bump,
plan share raised, old server draining, correction in the state); calm windows do not."""

from __future__ import annotations

import json
import time

import pytest

pytest.importorskip("fastapi", reason="needs the 'service' extra: pip install -e '.[service]'")

from fastapi.testclient import TestClient

from igniter_opt.controller.api import create_app
from igniter_opt.controller.core import Config, Controller
from igniter_opt.controller.emulated import EmulatedPlane
from igniter_opt.controller.live import ClientWindow
from igniter_opt.controller.records import Spec
from igniter_opt.model import load_profile
from tests.test_service_dataplane import fake, servers_under  # noqa: F401  (the fixture)

pytestmark = pytest.mark.extra("service")


def window(name: str, p99_ms: float) -> ClientWindow:
    return ClientWindow(name, 1.0, 100, 100.0, p99_ms / 2, p99_ms, 50.0 if p99_ms > 150 else 0.0, 0, time.time())


def shadows(ctl: Controller) -> list:
    return [s for s in ctl.store.servers() if s.status == "shadow"]


def test_k_violating_windows_switch_to_the_warm_shadow(tmp_path, fake):  # noqa: F811
    state = tmp_path / "state"
    profile = load_profile("v100")
    plane = EmulatedPlane(state, profile, {"a": 1.5}, time_scale=10.0, tritonserver=fake, ready_timeout_s=20)
    ctl = Controller(Config(state_dir=state, gpus=1, grace_s=0.2, shadow=True, shadow_windows=2), plane, profile)
    ctl.start()
    try:
        ctl.add([Spec("a", "alexnet", 15.0, 100.0)])
        deadline = time.monotonic() + 60
        while not shadows(ctl):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        shadow = shadows(ctl)[0]
        before = (ctl.plan()["a"], ctl.store.endpoints()["a"])
        share = ctl.shadows.shares[shadow.id][2]
        assert share > before[0].share_pct
        while shadow.id not in (emu := json.loads((state / "emulation.json").read_text())["servers"]):
            assert time.monotonic() < deadline  # the plane records a stand-in once it answers, a moment later
            time.sleep(0.1)
        assert emu[shadow.id]["active"] is False and emu[before[1].server_id]["active"] is True

        ctl.live.feed([window("a", 100.0)])        # under the SLO x 10: no switch
        ctl.live.feed([window("a", 200.0)])        # one violating window: not yet
        assert ctl.store.endpoints()["a"] == before[1]
        ctl.live.feed([window("a", 220.0)])        # the second: switched
        after = ctl.store.endpoints()["a"]
        assert after.server_id == shadow.id and after.version > before[1].version
        assert ctl.plan()["a"].share_pct == share
        old = next(s for s in ctl.store.servers() if s.id == before[1].server_id)
        assert old.status == "draining"
        corr = TestClient(create_app(ctl)).get("/v1/corrections").json()["corrections"]
        assert len(corr) == 1 and corr[0]["action"] == "switched" and corr[0]["new_share_pct"] == share
        assert corr[0]["measured_p99_ms"] == 220.0 and corr[0]["old_share_pct"] == before[0].share_pct
        emu = json.loads((state / "emulation.json").read_text())["servers"]
        assert emu[shadow.id]["active"] is True and emu[shadow.id]["share_pct"] == share
        deadline = time.monotonic() + 60             # the old server drains; a new shadow comes if one fits
        while any(s.id == old.id for s in ctl.store.servers()):
            assert time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        ctl.close(teardown=True)
    assert servers_under(state) == []


def test_windows_begun_before_a_switch_do_not_count(tmp_path):
    from igniter_opt.controller.dataplane import NoPlane
    from igniter_opt.controller.shadows import Shadows

    ctl = Controller(Config(state_dir=tmp_path / "st", gpus=1), NoPlane())
    ctl.start()
    try:
        ctl.add([Spec("a", "alexnet", 15.0, 100.0)])
        calls: list[str] = []
        sh = Shadows(ctl, windows=2)
        sh.switch = lambda name, _w: calls.append(name) or {}  # type: ignore[method-assign]
        sh.switched["a"] = time.time() + 0.5                  # a switch that "just happened"
        sh.on_windows([window("a", 300.0), window("a", 300.0)])
        assert calls == []                                    # the old server's backlog
        late = ClientWindow("a", 1.0, 100, 100.0, 150.0, 300.0, 50.0, 0, time.time() + 2.0)
        sh.on_windows([late, late])
        assert calls == ["a"]
    finally:
        ctl.close()
