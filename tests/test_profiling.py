"""Profiling and validation logic on synthetic timings (no GPU); GPU checks skip cleanly without one."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest

from igniter_opt.errors import InputError
from igniter_opt.perfmodel import load_profile, predict
from igniter_opt.perfmodel.coefficients import Profile
from igniter_opt.perfmodel.fit import GRID_BATCHES, GRID_SHARES, fit, load_raw
from igniter_opt.perfmodel.predict import ModelArrays, scheduling_increase, solo_terms
from igniter_opt.profiling import derive, grid, kernels, l2, raw

# --------------------------------------------------------------------------------------------
# A synthetic GPU: measurements generated from known coefficients through the model.


def truth_profile() -> Profile:
    """V100 DNN coefficients on an invented H-class GPU where 4+ concurrent VGG-19 hit the cap."""
    base = load_profile("v100")
    hw = dataclasses.replace(base.hardware, max_frequency_mhz=1980.0, power_cap_w=390.0, idle_power_w=60.0,
                             bandwidth_bytes_per_ms=2.5e7, unit_pct=100 / 66, a_f=-0.8, a_sch=0.005,
                             b_sch=-0.006)
    models = dict(base.models)
    models["vgg19"] = dataclasses.replace(models["vgg19"], power=(0.05, 90.0))
    return dataclasses.replace(base, name="truth", gpu="synthetic", hardware=hw, models=models)


def synthesize(truth: Profile, solo_idle_per_kernel: float = 0.0015):
    """What a perfect profiling run would measure on a GPU that follows the model exactly."""
    hw = truth.hardware
    F, cap = hw.max_frequency_mhz, hw.power_cap_w
    measured = []
    for name, m in truth.models.items():
        arrays = ModelArrays.of(truth, [name])
        points = []
        for b in GRID_BATCHES:
            for s in GRID_SHARES:
                p = predict(truth, [name], [b], [s])
                points.append(raw.PointMeasurement(b, s, float(p.gpu_latency_ms[0]), min(p.power_w, cap),
                                                   p.frequency_mhz))
        b, s = grid.COLOC_POINT
        solo = solo_terms(arrays, [b], [s])
        pair = predict(truth, [name, name], [b, b], [s, s])
        t_act = solo.t_solo[0] * (1 + m.k_l2 * solo.l2[0])
        diag = [float(solo_terms(arrays, [db], [ds]).l2[0]) for db, ds in grid.DIAGONAL]
        measured.append(raw.ModelMeasurement(
            name=name, input_bytes=m.input_bytes, output_bytes=m.output_bytes, grid=points,
            kernels=m.kernels, idle_ms=m.t_idle_ms, active_ms=float(solo.t_solo[0]),
            coloc_active_ms=float(t_act * F / pair.frequency_mhz), coloc_power_w=min(pair.power_w, cap),
            coloc_clock_mhz=pair.frequency_mhz, l2_diagonal=tuple(diag), l2_coloc=float(solo.l2[0])))
    power, clock, idle = [], [], []
    for n in range(1, grid.HW_MAX_CONCURRENT + 1):
        p = predict(truth, [grid.HW_MODEL] * n, [grid.HW_BATCH] * n, [grid.HW_SHARE] * n)
        power.append(min(p.power_w, cap))
        clock.append(p.frequency_mhz)
        idle.append((solo_idle_per_kernel + scheduling_increase(hw, n)) * F / p.frequency_mhz)
    hwm = raw.HardwareMeasurement(gpu="synthetic", idle_power_w=hw.idle_power_w, max_clock_mhz=F,
                                  power_cap_w=cap, unit_pct=hw.unit_pct,
                                  bandwidth_bytes_per_ms=hw.bandwidth_bytes_per_ms, concurrent_power_w=power,
                                  concurrent_clock_mhz=clock, concurrent_idle_per_kernel_ms=idle,
                                  extra={"sm_count": 132})
    return hwm, measured


def test_synthetic_gpu_really_throttles():
    hwm, _ = synthesize(truth_profile())
    assert hwm.concurrent_clock_mhz[:3] == [1980.0] * 3
    assert hwm.concurrent_clock_mhz[3] < 1980.0 and hwm.concurrent_clock_mhz[4] < hwm.concurrent_clock_mhz[3]
    assert max(hwm.concurrent_power_w) == 390.0  # measured power saturates at the cap


def test_round_trip_measurements_raw_fit_recovers_coefficients(tmp_path):
    truth = truth_profile()
    hwm, models = synthesize(truth)
    path = tmp_path / "synthetic-raw.jsonl"
    raw.write_raw(path, raw.raw_lines(hwm, models))
    fitted = fit(load_raw(path), name="fitted", origin=str(path))
    th, fh = truth.hardware, fitted.hardware
    for attr in ("max_frequency_mhz", "power_cap_w", "idle_power_w", "bandwidth_bytes_per_ms", "unit_pct"):
        assert getattr(fh, attr) == getattr(th, attr), attr
    assert fh.a_f == pytest.approx(th.a_f, rel=1e-6)
    assert (fh.a_sch, fh.b_sch) == pytest.approx((th.a_sch, th.b_sch), rel=1e-6)
    assert set(fitted.models) == set(truth.models)
    for name, t in truth.models.items():
        f = fitted.models[name]
        assert (f.kernels, f.t_idle_ms, f.input_bytes, f.output_bytes) == (
            t.kernels, t.t_idle_ms, t.input_bytes, t.output_bytes)
        assert f.power == pytest.approx(t.power, rel=1e-6), name
        assert f.l2 == pytest.approx(t.l2, rel=1e-6), name
        assert f.k_l2 == pytest.approx(t.k_l2, rel=1e-6), name
    # k1..k5 need not be unique; what they predict must be, on and off the grid
    rng = np.random.default_rng(0)
    names = list(truth.models)
    for _ in range(30):
        k = int(rng.integers(1, 5))
        ms = list(rng.choice(names, k))
        bs = list(rng.integers(1, 33, k))
        ss = list(rng.choice(np.arange(10, 101, 5), k))
        a, b = predict(truth, ms, bs, ss), predict(fitted, ms, bs, ss)
        np.testing.assert_allclose(b.latency_ms, a.latency_ms, rtol=1e-4)
        np.testing.assert_allclose(b.throughput_rps, a.throughput_rps, rtol=1e-4)


def test_raw_file_matches_reference_layout(tmp_path):
    hwm, models = synthesize(truth_profile())
    lines = raw.raw_lines(hwm, models)
    assert all(len(line) == 1 and len(next(iter(line.values()))) == 1 for line in lines)
    merged = raw.merge_lines(lines)
    reference = load_raw(grid_ref := (__import__("conftest").RAW_V100))
    assert grid_ref.is_file()
    for section in ("hardware", "alexnet", "ssd"):
        assert set(reference[section]) <= set(merged[section]), section
    gl = merged["vgg19"]["gpulatency"]
    assert np.shape(gl) == (3, 3)
    assert gl[0][0] > gl[0][2] and gl[2][0] > gl[0][0]  # rows batch, columns share


def test_raw_refuses_nan_and_missing_points(tmp_path):
    hwm, models = synthesize(truth_profile())
    bad = dataclasses.replace(hwm, idle_power_w=float("nan"))
    with pytest.raises(ValueError):
        raw.write_raw(tmp_path / "x.jsonl", raw.raw_lines(bad, models))
    models[0].grid.pop()
    with pytest.raises(ValueError, match="not measured"):
        raw.raw_lines(hwm, models)


def test_clock_snapping_keeps_real_drops():
    assert derive.snap_clock([1979.0, 1980.0, 1950.0], 1980.0).tolist() == [1980.0, 1980.0, 1950.0]
    assert derive.snap_clock(1975.5, 1980.0) == 1980.0
    assert derive.effective_max_clock(1980.0, 1980.0) == 1980.0
    assert derive.effective_max_clock(1980.0, 1755.0) == 1755.0
    assert derive.effective_max_clock(1980.0, float("nan")) == 1980.0
