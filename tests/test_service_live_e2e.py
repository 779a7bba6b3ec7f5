"""`igniter serve --device emulate` end to end: a real tritonserver serving the emulated stand-in,
`igniter client measure` under load posting its windows, the service's /metrics (Prometheus text
parser) carrying client and Triton figures for the workload, `igniter top --url --once` showing
them, and nothing left behind after SIGTERM with --teardown."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request

import pytest
from conftest import triton_pids

pytest.importorskip("fastapi", reason="needs the 'service' extra: pip install -e '.[service]'")
pytest.importorskip("uvicorn", reason="needs the 'service' extra: pip install -e '.[service]'")

from prometheus_client.parser import text_string_to_metric_families

from igniter_opt.deploy.backends.launcher import free_port
from igniter_opt.deploy.backends.local import find_tritonserver

pytestmark = [pytest.mark.triton, pytest.mark.slow, pytest.mark.extra("service", "deploy", "triton"),
              pytest.mark.skipif(find_tritonserver() is None, reason="no tritonserver (pip install nvidia-pytriton)")]

SCALE, ERROR = 10.0, 1.5


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as r:
        return bytes(r.read())


def live(url: str) -> dict[str, float]:
    text = get(url + "/metrics").decode()
    return {s.name + ("/" + s.labels["source"] if "source" in s.labels else ""): s.value
            for f in text_string_to_metric_families(text) for s in f.samples if s.labels.get("workload") == "a"}


def igniter(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "igniter_opt", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_emulated_service_exports_live_metrics_and_top_shows_them(tmp_path):
    state = (tmp_path / "state").resolve()
    url = f"http://127.0.0.1:{free_port()}"
    log = tmp_path / "serve.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "igniter_opt", "serve", "--gpus", "1", "--device", "emulate",
                                 "--time-scale", str(SCALE), "--inject-error", f"a={ERROR}", "--teardown",
                                 "--state-dir", str(state), "--port", url.rsplit(":", 1)[1]],
                                stdout=out, stderr=subprocess.STDOUT)
    measuring = None
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            try:
                get(url + "/readyz")
                break
            except OSError:
                time.sleep(0.2)
        assert "EMULATED" in log.read_text()
        added = igniter("client", "add", "a", "--model", "alexnet", "--slo", "15", "--rate", "100", "--url", url)
        assert added.returncode == 0, added.stderr
        plan = json.loads(get(url + "/v1/plan"))
        assert plan["emulated"] and plan["emulation"]["time_scale"] == SCALE
        measuring = subprocess.Popen([sys.executable, "-m", "igniter_opt", "client", "measure", "--duration", "6",
                                      "--warmup", "1", "--url", url, "--json"],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        need = {"igniter_workload_latency_p99_seconds", "igniter_workload_slo_violation_ratio",
                "igniter_workload_throughput_rps/client", "igniter_workload_throughput_rps/triton",
                "igniter_workload_triton_queue_seconds", "igniter_workload_triton_compute_seconds"}
        deadline = time.monotonic() + 60
        got: dict[str, float] = {}
        while not need <= set(got):
            assert time.monotonic() < deadline, (sorted(got), log.read_text())
            time.sleep(0.5)
            got = live(url)
        emulation = json.loads((state / "emulation.json").read_text())
        server = next(s for s in emulation["servers"].values() if s["active"])
        # Triton's compute time per request is the stand-in's sleep: the prediction x error x scale
        assert got["igniter_workload_triton_compute_seconds"] * 1000 >= 0.9 * server["service_ms"][0] * ERROR * SCALE
        # a client can be no faster than one emulated batch (the windows of the two sides differ in time)
        assert got["igniter_workload_latency_p99_seconds"] * 1000 >= 0.9 * server["service_ms"][0] * ERROR * SCALE
        assert got["igniter_workload_slo_seconds"] == pytest.approx(0.015 * SCALE)
        top = igniter("top", "--url", url, "--once")
        assert top.returncode == 0 and "alexnet" not in top.stderr and " a " in top.stdout, top.stdout + top.stderr
        assert f"{15 * SCALE:g}" in top.stdout
        out, err = measuring.communicate(timeout=120)
        assert measuring.returncode == 0, err
        assert "not posted" not in err
        assert triton_pids(state)
    finally:
        if measuring is not None and measuring.poll() is None:
            measuring.kill()
            measuring.wait()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, log.read_text()
    assert triton_pids(state) == []
