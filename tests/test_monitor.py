"""Live monitoring: client windows, Triton's /metrics parsed with the Prometheus parser, the live table."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from rich.console import Console

from igniter_opt.deploy.load.protocol import Target
from igniter_opt.deploy.monitor import (
    MONITOR_FILE,
    JsonlTail,
    LiveMonitor,
    ServingState,
    WindowRecord,
    client_window,
    endpoints_state,
    parse_triton_metrics,
    read_records,
    triton_window,
)
from igniter_opt.deploy.top import RunDirSource, render_table

# What tritonserver 2.51 (nvidia-pytriton) answers on --metrics-port, trimmed, plus a summary as
# servers started with --metrics-config summary_latencies=true export it.
METRICS = """\
# HELP nv_inference_request_success Number of successful inference requests, all batch sizes
# TYPE nv_inference_request_success counter
nv_inference_request_success{model="alexnet",version="1"} 401
nv_inference_request_success{model="vgg19",version="1"} 161
# HELP nv_inference_request_failure Number of failed inference requests, all batch sizes
# TYPE nv_inference_request_failure counter
nv_inference_request_failure{model="alexnet",reason="OTHER",version="1"} 1
nv_inference_request_failure{model="alexnet",reason="BACKEND",version="1"} 2
# HELP nv_inference_count Number of inferences performed (does not include cached requests)
# TYPE nv_inference_count counter
nv_inference_count{model="alexnet",version="1"} 401
# HELP nv_inference_exec_count Number of model executions performed (does not include cached requests)
# TYPE nv_inference_exec_count counter
nv_inference_exec_count{model="alexnet",version="1"} 109
# HELP nv_inference_request_duration_us Cumulative inference request duration in microseconds
# TYPE nv_inference_request_duration_us counter
nv_inference_request_duration_us{model="alexnet",version="1"} 42080537
# HELP nv_inference_queue_duration_us Cumulative inference queuing duration in microseconds
# TYPE nv_inference_queue_duration_us counter
nv_inference_queue_duration_us{model="alexnet",version="1"} 13480311
# HELP nv_inference_compute_infer_duration_us Cumulative compute inference duration in microseconds
# TYPE nv_inference_compute_infer_duration_us counter
nv_inference_compute_infer_duration_us{model="alexnet",version="1"} 28227937
# HELP nv_inference_queue_summary_us Summary of inference queuing duration in microseconds
# TYPE nv_inference_queue_summary_us summary
nv_inference_queue_summary_us_count{model="alexnet",version="1"} 401
nv_inference_queue_summary_us_sum{model="alexnet",version="1"} 13480311
nv_inference_queue_summary_us{model="alexnet",version="1",quantile="0.5"} 30000
# HELP nv_cpu_utilization CPU utilization rate [0.0 - 1.0]
# TYPE nv_cpu_utilization gauge
nv_cpu_utilization 0.25
"""


@pytest.mark.extra("deploy")
def test_triton_metrics_parse_with_the_prometheus_parser():
    parsed = parse_triton_metrics(METRICS)
    assert set(parsed) == {"alexnet", "vgg19"}
    a = parsed["alexnet"]
    assert (a["success"], a["failure"], a["inferences"], a["executions"]) == (401, 3, 401, 109)
    assert (a["request_us"], a["queue_us"], a["compute_us"]) == (42080537, 13480311, 28227937)
    assert parsed["vgg19"]["success"] == 161 and parsed["vgg19"]["queue_us"] == 0
    with pytest.raises(ValueError):  # not Prometheus text: the parser refuses it
        parse_triton_metrics("this is { not metrics")


@pytest.mark.extra("deploy")
def test_triton_window_is_the_difference_per_request():
    before = parse_triton_metrics(METRICS)["alexnet"]
    now = dict(before, success=before["success"] + 10, inferences=before["inferences"] + 10,
               executions=before["executions"] + 4, request_us=before["request_us"] + 1_000_000,
               queue_us=before["queue_us"] + 300_000, compute_us=before["compute_us"] + 650_000)
    w = triton_window(now, before)
    assert w is not None
    assert (w["requests"], w["executions"], w["batch"]) == (10, 4, 2.5)
    assert (w["request_ms"], w["queue_ms"], w["compute_ms"]) == pytest.approx((100.0, 30.0, 65.0))
    assert triton_window(now, None) is None
    assert triton_window(before, before) == {"requests": 0.0, "executions": 0.0, "failures": 0.0}


def test_client_window_counts_what_completed_in_it():
    arr = np.array([0.0, 0.1, 0.2, 0.3, 1.2])
    done = np.array([0.05, 0.4, 0.6, 0.9, 1.3])   # latencies 50, 300, 400, 600, 100 ms
    ok = np.array([True, True, False, True, True])
    completed, failed, p50, p99, viol = client_window(arr, done, ok, 0.0, 1.0, slo_ms=350.0)
    assert (completed, failed) == (3, 1)
    assert p50 == pytest.approx(300.0) and 590 < p99 <= 600
    assert viol == pytest.approx(50.0)  # the failure and the 600 ms one, of 4
    assert client_window(arr, done, ok, 5.0, 6.0, 350.0) == (0, 0, None, None, 0.0)


def _targets() -> list[Target]:
    return [Target("cls", "cls", "x:1", 100.0, 50.0, (4,)), Target("det", "det", "x:2", 10.0, 200.0, (4,))]


def test_live_monitor_windows_listeners_file_and_top(tmp_path):
    heard: list[list[WindowRecord]] = []
    state = {"cls": ServingState(30.0, 0, "cls", "", "cls", "warm")}
    mon = LiveMonitor(_targets(), lambda: state, window_s=1.0, step_s=0.5, out=tmp_path / MONITOR_FILE,
                      listeners=[heard.append])
    arr = np.arange(100) / 100.0
    mon.on_progress([{"name": "cls", "arrivals": arr, "done": arr + 0.01, "ok": np.ones(100, bool)}])
    first = mon.tick(1.0)
    assert [r.workload for r in first] == ["cls", "det"]
    cls, det = first
    assert cls.completed == 99 and cls.p99_ms == pytest.approx(10.0) and not cls.breaks_slo  # 0.99 s completes at 1.0
    assert (cls.share_pct, cls.gpu, cls.shadow) == (30.0, 0, "warm")
    assert det.completed == 0 and det.p99_ms is None
    later = arr + 1.0
    mon.on_progress([{"name": "cls", "arrivals": later, "done": later + 0.08, "ok": np.ones(100, bool)}])
    second = mon.tick(2.0)
    assert second[0].breaks_slo and second[0].p50_ms == pytest.approx(80.0)
    assert heard == [first, second]
    assert read_records(tmp_path / MONITOR_FILE) == first + second
    source = RunDirSource(tmp_path)
    newest = source.latest()
    assert {r.workload: r.t_s for r in newest} == {"cls": 2.0, "det": 2.0}
    assert {r.workload for r in source.latest()} == {"cls", "det"}  # nothing new: the same rows
    console = Console(width=200, record=True)
    console.print(render_table(newest))
    text = console.export_text()
    assert "80.0 > SLO" in text and "warm" in text and "live windows at t = 2.0 s" in text
    row = next(line for line in text.splitlines() if "det" in line)
    assert "> SLO" not in row


def test_endpoints_state_reads_roles_and_shadows(tmp_path):
    doc = {"servers": [{"name": "a", "model_name": "a", "grpc_url": "h:1", "share_pct": 40.0, "gpu": 0,
                        "role": "shadow", "key": "a@shadow1", "metrics_url": "http://h:3/metrics"},
                       {"name": "b", "model_name": "b", "grpc_url": "h:2", "share_pct": 20.0, "gpu": 1}],
           "shadows": [{"workload": "b", "state": "warm"}]}
    (tmp_path / "endpoints.json").write_text(json.dumps(doc))
    st = endpoints_state(tmp_path / "endpoints.json")()
    assert st["a"] == ServingState(40.0, 0, "a@shadow1", "http://h:3/metrics", "a", "active")
    assert st["b"].shadow == "warm" and st["b"].server == "b"
    assert endpoints_state(tmp_path / "none.json")() == {}


def test_top_once_renders_a_run_directory(tmp_path):
    rec = WindowRecord(t_s=3.5, workload="cls", window_s=1.0, rate_rps=25.0, slo_ms=300.0, completed=25,
                       throughput_rps=25.0, p50_ms=200.0, p99_ms=320.0, violation_pct=4.0, errors=0, share_pct=10.0,
                       gpu=0, server="cls", shadow="none")
    (tmp_path / MONITOR_FILE).write_text(json.dumps(rec.to_dict()) + "\n" + '{"t_s": 4')  # a line being written
    cmd = [sys.executable, "-m", "igniter_opt", "top", "--run-dir", str(tmp_path), "--once"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "cls" in done.stdout and "320.0 > SLO" in done.stdout
    empty = subprocess.run([*cmd[:-2], str(tmp_path / "nothing"), "--once"], capture_output=True, text=True, timeout=60)
    assert empty.returncode == 1 and "no windows yet" in empty.stderr


def test_jsonl_tail_yields_whole_new_lines_and_restarts_on_rewrite(tmp_path):
    """How `igniter deploy --shadow` hears the windows a separate `igniter measure` writes."""
    path = tmp_path / MONITOR_FILE
    tail = JsonlTail(path)
    assert tail.poll() == []  # no file yet
    rec = WindowRecord(t_s=0.5, workload="a", window_s=1.0, rate_rps=1.0, slo_ms=1.0, completed=1,
                       throughput_rps=1.0, p50_ms=1.0, p99_ms=2.0, violation_pct=100.0, errors=0)
    line = json.dumps(rec.to_dict()) + "\n"
    path.write_text(line + line[:20])  # one whole line and the start of the next
    assert tail.poll() == [rec]
    with open(path, "a") as f:
        f.write(line[20:])
    assert tail.poll() == [rec] and tail.poll() == []
    assert not tail.restarted
    path.write_text(line)  # a new measurement truncates the file: read from its start
    assert tail.poll() == [rec] and tail.restarted
