"""The service's live metrics and `igniter top --url`'s source, on a served app (uvicorn in a
thread, dry-run plane): client windows posted to /v1/windows come out of /metrics under Prometheus
names (parsed by prometheus_client's parser), leave with their workload, and the ServiceSource
turns them into the table's rows."""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="needs the 'service' extra: pip install -e '.[service]'")
pytest.importorskip("uvicorn", reason="needs the 'service' extra: pip install -e '.[service]'")

import uvicorn
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console

from igniter_opt.controller.api import create_app
from igniter_opt.controller.core import Config, Controller
from igniter_opt.controller.dataplane import NoPlane
from igniter_opt.controller.records import Spec
from igniter_opt.deploy.backends.launcher import free_port
from igniter_opt.deploy.top import render_table
from igniter_opt.deploy.topservice import ServiceError, ServiceSource

pytestmark = pytest.mark.extra("service")


@pytest.fixture()
def served(tmp_path: Path) -> Iterator[tuple[str, Controller]]:
    ctl = Controller(Config(state_dir=tmp_path / "state", gpus=2), NoPlane())
    ctl.start()
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(ctl), host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive()
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", ctl
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        ctl.close()
    assert not thread.is_alive()


def post(url: str, body: bytes) -> tuple[int, bytes]:
    req = urllib.request.Request(url + "/v1/windows", data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def window(name: str, p99_ms: float, violation_pct: float) -> str:
    return (f'{{"workload": "{name}", "window_s": 1.0, "completed": 100, "throughput_rps": 100.0, "p50_ms": 4.0, '
            f'"p99_ms": {p99_ms}, "violation_pct": {violation_pct}, "errors": 0, "unix_s": {time.time()}}}')


def samples(url: str) -> dict[tuple[str, str], float]:
    with urllib.request.urlopen(url + "/metrics", timeout=10) as r:
        text = r.read().decode()
    return {(s.name, s.labels.get("workload", "")): s.value for f in text_string_to_metric_families(text)
            for s in f.samples if "workload" in s.labels}


def test_client_windows_reach_metrics_and_the_top_table(served):
    url, ctl = served
    ctl.add([Spec("a", "alexnet", 15.0, 100.0), Spec("b", "resnet50", 40.0, 100.0)])
    assert post(url, f'{{"windows": [{window("a", 12.0, 10.0)}, {window("b", 55.0, 40.0)}]}}'.encode())[0] == 202
    got = samples(url)
    assert got[("igniter_workload_latency_p99_seconds", "a")] == pytest.approx(0.012)
    assert got[("igniter_workload_latency_p50_seconds", "a")] == pytest.approx(0.004)
    assert got[("igniter_workload_slo_violation_ratio", "b")] == pytest.approx(0.4)
    assert got[("igniter_workload_throughput_rps", "a")] == pytest.approx(100.0)
    assert got[("igniter_workload_slo_seconds", "b")] == pytest.approx(0.040)

    status, body = post(url, f'{{"windows": [{window("zz", 1.0, 0.0)}]}}'.encode())
    assert status == 404 and b"zz" in body
    status, body = post(url, f'{{"windows": [{window("a", -1.0, 0.0)}]}}'.encode())
    assert status == 422 and b"p99_ms" in body

    rows = {r.workload: r for r in ServiceSource(url).latest()}
    assert rows["a"].p99_ms == pytest.approx(12.0) and rows["a"].share_pct == ctl.plan()["a"].share_pct
    assert rows["b"].breaks_slo and not rows["a"].breaks_slo and rows["b"].violation_pct == pytest.approx(40.0)
    console = Console(record=True, width=250)
    console.print(render_table(list(rows.values())))
    text = console.export_text()
    assert "55.0 > SLO" in text and "12.0" in text

    ctl.remove("a")
    got = samples(url)
    assert ("igniter_workload_latency_p99_seconds", "a") not in got
    assert ("igniter_workload_latency_p99_seconds", "b") in got


def test_an_unreachable_service_is_a_one_line_error():
    with pytest.raises(ServiceError, match="unreachable"):
        ServiceSource(f"http://127.0.0.1:{free_port()}", timeout_s=2).latest()
