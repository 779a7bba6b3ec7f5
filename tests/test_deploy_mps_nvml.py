"""MPS daemon commands/env and the NVML sampler: pure tests everywhere, real ones on a GPU host."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import fake_mps_control

from igniter_opt.platform.mps import (
    MAX_PIPE_DIR_LEN,
    MpsDaemon,
    mps_available,
    mps_env,
    quit_command,
    share_value,
    start_command,
)
from igniter_opt.platform.nvml import GpuSampler, GpuSamples, gpu_info, nvml_available

FAKE_CONTROL = fake_mps_control("CUDA_MPS")


@pytest.fixture
def fake_control(tmp_path, monkeypatch):
    exe = tmp_path / "fake-mps-control"
    exe.write_text(FAKE_CONTROL)
    exe.chmod(0o755)
    log = tmp_path / "calls.jsonl"
    monkeypatch.setenv("FAKE_MPS_LOG", str(log))
    return exe, log


def _calls(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_mps_commands_and_env():
    assert start_command() == ["nvidia-cuda-mps-control", "-d"]
    assert quit_command() == (["nvidia-cuda-mps-control"], "quit\n")
    assert mps_env(Path("/r/p"), Path("/r/l")) == {"CUDA_MPS_PIPE_DIRECTORY": "/r/p", "CUDA_MPS_LOG_DIRECTORY": "/r/l"}
    assert share_value(50) == "50" and share_value(37.5) == "37.5"
    with pytest.raises(ValueError):
        share_value(0)


def test_mps_daemon_start_client_env_stop(tmp_path, fake_control):
    exe, log = fake_control
    run = tmp_path / "run"
    with MpsDaemon(run, control=str(exe)) as mps:
        assert mps.started and mps.pipe_dir == (run / "mps" / "pipe").resolve()
        assert mps.client_env(25) == {"CUDA_MPS_PIPE_DIRECTORY": str(mps.pipe_dir),
                                      "CUDA_MPS_ACTIVE_THREAD_PERCENTAGE": "25"}
    calls = _calls(log)
    assert calls[0] == {"argv": ["-d"], "env": mps.env, "stdin": ""}
    assert calls[-1] == {"argv": [], "env": mps.env, "stdin": "quit\n"}
    assert mps.env["CUDA_MPS_LOG_DIRECTORY"] == str((run / "mps" / "log").resolve())
    assert not mps.started


def test_mps_daemon_stops_on_exception_and_keyboard_interrupt(tmp_path, fake_control):
    exe, log = fake_control
    for exc in (RuntimeError("boom"), KeyboardInterrupt()):
        with pytest.raises(type(exc)):
            with MpsDaemon(tmp_path / type(exc).__name__, control=str(exe)):
                raise exc
        assert _calls(log)[-1]["stdin"] == "quit\n"


def test_mps_daemon_reuses_ours_and_leaves_it_running(tmp_path, fake_control):
    exe, log = fake_control
    first = MpsDaemon(tmp_path, control=str(exe))
    first.start()
    with MpsDaemon(tmp_path, control=str(exe)) as second:   # ours already answers: not started again
        assert not second.started
    assert [c["stdin"] for c in _calls(log)] == ["", "get_server_list\n"]
    first.stop()
    assert _calls(log)[-1]["stdin"] == "quit\n"


def test_mps_long_run_dir_gets_a_short_pipe_dir_that_stop_removes(tmp_path, fake_control):
    exe, _ = fake_control
    deep = tmp_path / ("x" * 90)
    with MpsDaemon(deep, control=str(exe)) as mps:
        pipe = mps.pipe_dir
        assert len(str(pipe)) <= MAX_PIPE_DIR_LEN + 30 and str(mps.log_dir).startswith(str(deep.resolve()))
        assert pipe.is_dir() and mps.started
    assert not pipe.parent.exists()  # the short directory went with the daemon
    idle = MpsDaemon(deep, control=str(exe))
    made = idle.pipe_dir.parent
    assert made.is_dir()
    idle.stop()  # never started: its directory goes all the same
    assert not made.exists()
    # a node's teardown names another object's short directory: it is removed as well
    setup = MpsDaemon(deep, control=str(exe))
    setup.start()
    teardown = MpsDaemon(deep, control=str(exe))
    teardown.pipe_dir = setup.pipe_dir
    teardown.started = True
    teardown.stop()
    assert not setup.pipe_dir.parent.exists()
    # a pipe directory that is not one of ours is never removed
    other = MpsDaemon(deep, control=str(exe))
    other.pipe_dir = tmp_path / "theirs" / "pipe"
    (tmp_path / "theirs" / "pipe").mkdir(parents=True)
    other.stop()
    assert (tmp_path / "theirs" / "pipe").is_dir()


def test_gpu_samples_summary():
    s = GpuSamples(t=np.array([0.0, 0.1, 0.2]), power_w=np.array([100.0, 200.0, 300.0]),
                   sm_clock_mhz=np.array([1980.0, 1900.0, 1800.0]), util_pct=np.array([0.0, 50.0, 100.0]))
    assert s.summary() == {"samples": 3, "power_w": {"mean": 200.0, "max": 300.0, "min": 100.0},
                           "sm_clock_mhz": {"mean": pytest.approx(1893.333, rel=1e-5), "max": 1980.0, "min": 1800.0},
                           "util_pct": {"mean": 50.0, "max": 100.0, "min": 0.0}}
    assert GpuSamples().summary()["power_w"] == {"mean": None, "max": None, "min": None}


def test_sampler_thread_samples_and_is_joined():
    values = iter(range(1000))

    def reader():
        v = float(next(values))
        return v, 1000.0 + v, 50.0
    before = threading.active_count()
    with GpuSampler(interval_s=0.01, reader=reader) as sampler:
        time.sleep(0.15)
        assert sampler.running
    assert not sampler.running and threading.active_count() == before
    s = sampler.samples()
    assert s.t.size >= 3 and np.all(np.diff(s.t) > 0) and np.all(s.sm_clock_mhz - s.power_w == 1000.0)


def test_sampler_joined_when_body_raises():
    with pytest.raises(KeyboardInterrupt):
        with GpuSampler(interval_s=0.01, reader=lambda: (1.0, 2.0, 3.0)) as sampler:
            raise KeyboardInterrupt
    assert not sampler.running


needs_gpu = pytest.mark.skipif(not nvml_available(), reason="no NVIDIA GPU / NVML on this host")


@pytest.mark.gpu
@needs_gpu
def test_nvml_on_gpu():
    info = gpu_info(0)
    assert info.name and info.max_sm_clock_mhz > 0 and info.power_limit_w > 0 and info.memory_mib > 0
    with GpuSampler(0, interval_s=0.05) as sampler:
        time.sleep(0.5)
    summary = sampler.samples().summary()
    assert summary["samples"] >= 3 and summary["power_w"]["mean"] > 0


@pytest.mark.gpu
@pytest.mark.skipif(not mps_available(), reason="no GPU or no nvidia-cuda-mps-control")
def test_real_mps_daemon(tmp_path):
    with MpsDaemon(tmp_path) as mps:
        assert mps.started and mps.running()
    assert not mps.running()


def test_mps_unavailable_without_binary(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    assert mps_available() is False
