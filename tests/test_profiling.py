"""Profiling and validation logic on synthetic timings (no GPU); GPU checks skip cleanly without one."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest

from igniter_opt.data.errors import InputError
from igniter_opt.data.profiles import GRID_BATCHES, GRID_SHARES, load_raw
from igniter_opt.model import load_profile, predict
from igniter_opt.model.coefficients import Profile
from igniter_opt.model.fit import fit
from igniter_opt.model.predict import ModelArrays, scheduling_increase, solo_terms
from igniter_opt.profiling import derive, grid, kernels, l2, raw, validate

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


def test_raw_file_matches_reference_layout():
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


# --------------------------------------------------------------------------------------------
# Derived quantities on synthetic timings.


def test_latency_stats_trim_warmup():
    lat = [50.0, 40.0] + [10.0] * 18  # two slow warm-up inferences out of 20
    s = derive.latency_stats(lat, warmup_fraction=0.1)
    assert s.iterations == 18 and s.mean_ms == 10.0 and s.p90_ms == 10.0
    assert derive.latency_stats([7.0]).mean_ms == 7.0
    with pytest.raises(ValueError):
        derive.latency_stats([])


def test_window_mean_skips_power_settling():
    t = np.arange(0, 3.0, 0.05)
    power = np.where(t < 1.0, 100.0, 300.0)  # NVML's 1 s average lags the load
    assert derive.window_mean(t, power, 0.0, 2.9, settle_s=1.0) == 300.0
    assert derive.window_mean(t, power, 0.0, 2.9) < 300.0
    assert derive.window_mean(t, power, 0.0, 0.4, settle_s=1.0) == 100.0  # short window: settle capped
    assert np.isnan(derive.window_mean(t, power, 5.0, 6.0))


def test_co_location_window_and_throughput():
    assert derive.overlap_window([1.0, 1.2], [4.0, 3.5]) == (1.2, 3.5)
    lat = np.full(10, 100.0)                      # 100 ms inferences
    ends = 1.0 + 0.1 * np.arange(1, 11)           # ending at 1.1 .. 2.0 s
    kept = derive.latencies_in_window(lat, ends, 1.25, 1.85)
    assert kept.size == 5                          # started >= 1.25 and ended <= 1.85
    assert derive.throughput_rps(8, ends, 1.0, 2.0) == pytest.approx(80.0)


def test_idle_active_unit_and_bandwidth():
    assert derive.idle_and_active([0.1, 0.3], [2.0, 2.2]) == pytest.approx((0.2, 1.9))
    assert derive.idle_per_kernel([0.2, 0.4], 30) == pytest.approx(0.01)
    assert derive.share_unit(80) == 2.5                    # V100: 2 of 80 SMs
    assert derive.share_unit(132) == pytest.approx(100 / 66)  # H100 SXM / H200
    assert derive.share_unit(132, step=5) == 5.0
    with pytest.raises(ValueError):
        derive.share_unit(132, step=0)
    assert derive.bandwidth_bytes_per_ms(64e6, [10.0, 2.0, 2.0, 2.1, 2.0]) == pytest.approx(32e6)


# --------------------------------------------------------------------------------------------
# Kernel traces.


def chrome_trace(iterations: int, kernel_us: list[float], gap_us: float, between_us: float = 500.0) -> dict:
    events, t = [], 1000.0
    for _ in range(iterations):
        for d in kernel_us:
            events.append({"ph": "X", "cat": "kernel", "name": "k", "ts": t, "dur": d})
            t += d + gap_us
        events.append({"ph": "X", "cat": "gpu_memcpy", "name": "Memcpy", "ts": t, "dur": 5.0})
        t += between_us
    events.append({"ph": "X", "cat": "cpu_op", "name": "aten::conv", "ts": 0.0, "dur": 1e6})
    return {"traceEvents": events}


def test_trace_idle_and_active_per_inference(tmp_path):
    path = tmp_path / "trace.json"
    path.write_text(json.dumps(chrome_trace(4, [10.0, 30.0, 20.0], gap_us=2.0)))
    tr = kernels.kernels_from_chrome_trace(path)
    assert tr.count == 12  # memcpy and CPU ops are not kernels
    timing = kernels.iteration_timing(tr, 4)
    assert timing.kernels.tolist() == [3, 3, 3, 3] and kernels.kernels_per_inference(timing) == 3
    np.testing.assert_allclose(timing.idle_ms, 0.004)        # two 2-us gaps
    np.testing.assert_allclose(timing.active_ms, 0.060)
    again = kernels.KernelTrace.from_lists(json.loads(json.dumps(tr.to_lists())))
    assert again.count == 12


def test_overlapping_kernels_leave_no_idle():
    tr = kernels.make_trace([0.0, 5.0, 30.0], [20.0, 10.0, 40.0])  # second kernel inside the first
    assert kernels.idle_us(tr) == 10.0 and kernels.span_us(tr) == 40.0
    with pytest.raises(ValueError):
        kernels.split_iterations(tr, 4)


# --------------------------------------------------------------------------------------------
# ncu CSV.

NCU_CSV = """==PROF== Connected to process 4242 (/usr/bin/python3.12)
==PROF== Disconnected from process 4242
"ID","Process ID","Process Name","Host Name","Kernel Name","Context","Stream","Block Size","Grid Size","Device","CC","Section Name","Metric Name","Metric Unit","Metric Value"
"0","4242","python3.12","h","void at::cuda::(anonymous namespace)::spin_kernel(long)","1","7","(1, 1, 1)","(1, 1, 1)","0","9.0","Command line profiler metrics","gpu__time_duration.sum","nsecond","1,504"
"0","4242","python3.12","h","void at::cuda::(anonymous namespace)::spin_kernel(long)","1","7","(1, 1, 1)","(1, 1, 1)","0","9.0","Command line profiler metrics","lts__t_sectors.avg.pct_of_peak_sustained_elapsed","%","0.01"
"1","4242","python3.12","h","sm90_xmma_fprop","1","7","(128, 1, 1)","(64, 1, 1)","0","9.0","Command line profiler metrics","gpu__time_duration.sum","nsecond","3,000"
"1","4242","python3.12","h","sm90_xmma_fprop","1","7","(128, 1, 1)","(64, 1, 1)","0","9.0","Command line profiler metrics","lts__t_sectors.avg.pct_of_peak_sustained_elapsed","%","40"
"1","4242","python3.12","h","sm90_xmma_fprop","1","7","(128, 1, 1)","(64, 1, 1)","0","9.0","Command line profiler metrics","lts__t_sector_hit_rate.pct","%","80"
"2","4242","python3.12","h","elementwise_kernel","1","7","(128, 1, 1)","(64, 1, 1)","0","9.0","Command line profiler metrics","gpu__time_duration.sum","usecond","1"
"2","4242","python3.12","h","elementwise_kernel","1","7","(128, 1, 1)","(64, 1, 1)","0","9.0","Command line profiler metrics","lts__t_sectors.avg.pct_of_peak_sustained_elapsed","%","10"
"2","4242","python3.12","h","elementwise_kernel","1","7","(128, 1, 1)","(64, 1, 1)","0","9.0","Command line profiler metrics","lts__t_sector_hit_rate.pct","%","40"
"3","4242","python3.12","h","void at::cuda::(anonymous namespace)::spin_kernel(long)","1","7","(1, 1, 1)","(1, 1, 1)","0","9.0","Command line profiler metrics","gpu__time_duration.sum","nsecond","1,500"
"4","4242","python3.12","h","gemv","1","7","(128, 1, 1)","(64, 1, 1)","0","9.0","Command line profiler metrics","gpu__time_duration.sum","nsecond","2000"
"4","4242","python3.12","h","gemv","1","7","(128, 1, 1)","(64, 1, 1)","0","9.0","Command line profiler metrics","lts__t_sectors.avg.pct_of_peak_sustained_elapsed","%","25.5"
"""


def test_parse_ncu_csv_units_separators_and_markers():
    ks = l2.parse_ncu_csv(NCU_CSV)
    assert [k.id for k in ks] == [0, 1, 2, 3, 4]
    assert ks[0].duration_ns == 1504.0 and ks[2].duration_ns == 1000.0  # "1,504" ns; 1 us
    segments = l2.split_by_marker(ks)
    assert [[k.id for k in s] for s in segments] == [[1, 2], [4]]
    demand = l2.demands_by_model(NCU_CSV, ["resnet50", "vgg19"])
    assert demand["resnet50"].pct_of_peak == pytest.approx((40 * 3000 + 10 * 1000) / 4000)  # 32.5
    assert demand["resnet50"].hit_rate_pct == pytest.approx(70.0)
    assert demand["resnet50"].kernels == 2 and demand["vgg19"].pct_of_peak == 25.5
    with pytest.raises(ValueError, match="segments"):
        l2.demands_by_model(NCU_CSV, ["only-one"])
    with pytest.raises(ValueError, match="header"):
        l2.parse_ncu_csv("==PROF== nothing profiled\n")


def test_ncu_commands():
    cmd = l2.ncu_profile_command("/tmp/r", ["python", "-m", "w"])
    assert cmd[0] == "ncu" and cmd[-3:] == ["python", "-m", "w"]
    assert "--profile-from-start" in cmd and cmd[cmd.index("--clock-control") + 1] == "none"
    assert l2.L2_METRIC in cmd[cmd.index("--metrics") + 1]
    assert l2.ncu_import_command("/tmp/r")[:3] == ["ncu", "--import", "/tmp/r.ncu-rep"]
    assert "--mps" not in cmd  # the whole GPU, no daemon: plain ncu
    client = l2.ncu_profile_command("/tmp/r", ["python", "-m", "w"], mps_client=True)
    assert client[client.index("--mps") + 1] == "client" and client.index("--mps") < client.index("python")


# --------------------------------------------------------------------------------------------
# The plan of a run.


def test_budget_fits_six_minutes_and_scales():
    models = grid.parse_models("alexnet,resnet50,vgg19,ssd300_vgg16")
    assert models == ["alexnet", "resnet50", "vgg19", "ssd"]
    b = grid.plan_budget(360, len(models))
    assert b.estimate_s <= 360 and grid.MIN_POINT_S <= b.point_s <= grid.MAX_POINT_S
    assert grid.plan_budget(240, 4).point_s < grid.plan_budget(360, 4).point_s
    assert grid.plan_budget(360, 4, l2=False).point_s >= b.point_s
    assert grid.count_steps(models) == 2 + 36 + 8 + 5 + 3
    keys = [w.key for w in grid.workers(models)]
    assert keys[:4] == ["s10", "s50", "s100", "partner"] and len(keys) == 4 + grid.HW_MAX_CONCURRENT
    assert sum(w.share for w in grid.workers(models) if w.key.startswith("hw")) <= 100
    with pytest.raises(InputError):
        grid.parse_models("alexnet,bert")
    with pytest.raises(InputError):
        grid.plan_budget(0, 4)


def test_io_bytes_match_the_reference_profile():
    from igniter_opt.profiling.timing import io_bytes
    ref = load_raw(__import__("conftest").RAW_V100)
    for m in ("alexnet", "resnet50", "vgg19", "ssd"):
        assert io_bytes(m) == (ref[m]["inputdata"], ref[m]["outputdata"]), m


def test_gpu_slug():
    from igniter_opt.profiling.run import gpu_slug
    assert gpu_slug("NVIDIA H200") == "h200" and gpu_slug("NVIDIA H100 80GB HBM3") == "h100"
    assert gpu_slug("Tesla V100-SXM2-16GB") == "v100"


# --------------------------------------------------------------------------------------------
# Validation: sampling and error statistics.


def test_sample_colocations_respects_the_rules():
    unit = 100 / 66
    cols = validate.sample_colocations(["alexnet", "resnet50", "vgg19", "ssd"], 200, unit, seed=3)
    assert len(cols) == 200
    sizes = {len(c) for c in cols}
    assert sizes <= {2, 3, 4} and {2, 3} <= sizes
    for c in cols:
        shares = np.array([w.share for w in c])
        assert shares.sum() <= 100 + 1e-6 and shares.min() >= 10 - 1e-9
        np.testing.assert_allclose(shares / unit, np.round(shares / unit), atol=1e-4)  # multiples of u
        assert all(1 <= w.batch <= 32 for w in c)
    again = validate.sample_colocations(["alexnet", "resnet50", "vgg19", "ssd"], 200, unit, seed=3)
    assert again == cols and validate.sample_colocations(["alexnet"], 5, 2.5, seed=4) != cols[:5]
    with pytest.raises(ValueError):
        validate.sample_colocations(["alexnet"], 1, 2.5, min_share=60)


def test_error_stats_per_model():
    def r(model, pl, ml, pt, mt):
        return validate.ValidationResult(0, model, 1, 50.0, pl, ml, pl, ml, pt, mt)
    results = [r("a", 11.0, 10.0, 90.0, 100.0), r("a", 10.0, 10.0, 100.0, 100.0), r("a", 13.0, 10.0, 100.0, 80.0),
               r("b", 5.0, 10.0, 100.0, 100.0)]
    s = validate.error_stats(results)
    assert s["a"]["latency"]["median"] == pytest.approx(0.1) and s["a"]["latency"]["max"] == pytest.approx(0.3)
    assert s["a"]["throughput"]["max"] == pytest.approx(0.25) and s["a"]["latency"]["n"] == 3
    assert s["b"]["latency"]["median"] == pytest.approx(0.5)
    assert s["all"]["latency"]["n"] == 4 and s["all"]["latency"]["median"] == pytest.approx(0.2)
    assert s["all"]["latency"]["p90"] == pytest.approx(np.percentile([0.1, 0.0, 0.3, 0.5], 90))


def test_join_and_summaries_against_the_model(v100):
    col = [validate.Colocated("alexnet", 4, 10.0), validate.Colocated("vgg19", 6, 37.5)]
    pred = validate.predictions(v100, col)
    measured = [{"latency_ms": float(pred["latency_ms"][i]) * 1.1, "gpu_latency_ms": 1.0,
                 "throughput_rps": float(pred["throughput_rps"][i])} for i in range(2)]
    res = validate.join(7, col, pred, measured)
    assert [x.colocation for x in res] == [7, 7]
    assert [x.latency_error for x in res] == pytest.approx([0.1 / 1.1] * 2)
    assert [x.throughput_error for x in res] == pytest.approx([0.0, 0.0])
    ends = 10.0 + 0.01 * np.arange(1, 101)
    answer = {"lat_ms": [5.0] * 100, "gpu_ms": [4.0] * 100, "end_t": ends.tolist()}
    s = validate.summarize_transfer(answer, 4, 10.2, 11.0)
    assert s["latency_ms"] == 5.0 and s["gpu_latency_ms"] == 4.0
    assert s["throughput_rps"] == pytest.approx(400.0, rel=0.02)


# --------------------------------------------------------------------------------------------
# Worker client (a stand-in child speaking the protocol) and the CLI without a GPU.

FAKE_WORKER = """
import json, sys
print(json.dumps({"ready": True, "sm_count": 132}), flush=True)
for line in sys.stdin:
    cmd = json.loads(line)
    if cmd["op"] == "quit":
        print(json.dumps({"ok": True}), flush=True); break
    if cmd["op"] == "die":
        sys.exit(3)
    if cmd["op"] == "hang":
        continue
    print(json.dumps({"ok": cmd["op"] == "time", "echo": cmd, "error": "bad op"}), flush=True)
"""


def test_worker_client_round_trip_errors_and_timeouts(tmp_path):
    from igniter_opt.profiling.worker import WorkerError, WorkerProcess, run_together

    def start(key):
        return WorkerProcess(key, [sys.executable, "-c", FAKE_WORKER], {}, tmp_path / f"{key}.log").start()
    a, b = start("a"), start("b")
    try:
        assert a.wait_ready(20)["sm_count"] == 132 and b.wait_ready(20)["ready"]
        answers = run_together([a, b], [{"op": "time", "x": 1}, {"op": "time", "x": 2}], 20)
        assert [x["echo"]["x"] for x in answers] == [1, 2]
        with pytest.raises(WorkerError, match="bad op"):
            a.request({"op": "frobnicate"}, 20)
        with pytest.raises(WorkerError, match="no answer"):
            a.request({"op": "hang"}, 0.3)
        with pytest.raises(WorkerError, match="exited"):
            b.request({"op": "die"}, 20)
    finally:
        a.close()
        b.close()
    assert a.proc is None and b.proc is None


def igniter(*args):
    return subprocess.run([sys.executable, "-m", "igniter_opt", *map(str, args)], capture_output=True, text=True,
                          timeout=120)


def _gpu_host() -> bool:
    import importlib.util

    from igniter_opt.platform.nvml import nvml_available
    return importlib.util.find_spec("torch") is not None and nvml_available()


@pytest.mark.skipif(_gpu_host(), reason="this host has a GPU and torch")
def test_cli_exits_2_without_gpu(tmp_path):
    res = igniter("profile", "run", "--models", "alexnet", "--out", tmp_path / "raw.jsonl")
    assert res.returncode == 2 and "error:" in res.stderr and "GPU" in res.stderr
    assert not (tmp_path / "raw.jsonl").exists()
    res = igniter("validate", "--profile", "v100", "--samples", "2")
    assert res.returncode == 2 and "GPU" in res.stderr


def test_cli_bad_input_exits_2(tmp_path):
    assert igniter("profile", "run", "--models", "bert", "--out", tmp_path / "r").returncode == 2
    assert igniter("validate", "--profile", "v100", "--samples", "0", "--dry-run").returncode == 2


def test_cli_validate_dry_run_json_predicts_sampled_colocations():
    res = igniter("validate", "--profile", "v100", "--samples", "4", "--seed", "5", "--dry-run", "--json")
    assert res.returncode == 0, res.stderr
    cols = json.loads(res.stdout)["colocations"]
    assert len(cols) == 4 and all(2 <= len(c) <= 4 for c in cols)
    for c in cols:
        p = predict(load_profile("v100"), [w["model"] for w in c], [w["batch"] for w in c], [w["share"] for w in c])
        assert [w["predicted_latency_ms"] for w in c] == pytest.approx(p.latency_ms.tolist())


# --------------------------------------------------------------------------------------------
# On a GPU host only.


@pytest.mark.gpu
@pytest.mark.skipif(not _gpu_host(), reason="needs an NVIDIA GPU with torch")
def test_gpu_worker_times_and_traces(tmp_path):
    from igniter_opt.profiling.worker import WorkerProcess, worker_argv
    w = WorkerProcess("gpu", worker_argv(["alexnet"], [1]), {}, tmp_path / "gpu.log").start()
    try:
        ready = w.wait_ready(300)
        assert ready["sm_count"] > 0
        ans = w.request({"op": "time", "model": "alexnet", "batch": 1, "seconds": 0.5}, 120)
        assert len(ans["lat_ms"]) > 10 and derive.latency_stats(ans["lat_ms"]).mean_ms > 0
        tr = w.request({"op": "trace", "model": "alexnet", "batch": 1, "iters": 5}, 120)
        timing = kernels.iteration_timing(kernels.KernelTrace.from_lists(tr), 5)
        assert kernels.kernels_per_inference(timing) > 5
    finally:
        w.close()


# --------------------------------------------------------------------------------------------
# The run's order: timings are written before ncu runs; an ncu that fails falls back, in notes.


class _Context:
    def __init__(self, *_args, **_kwargs) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *_exc) -> None:
        return None

    def client_env(self, share: float) -> dict[str, str]:
        return {"CUDA_MPS_PIPE_DIRECTORY": "/nowhere", "CUDA_MPS_ACTIVE_THREAD_PERCENTAGE": f"{share:g}"}


def _synthetic_profiler(monkeypatch, tmp_path, ncu):
    """profile_run on the synthetic GPU: every phase answers from synthesize(), `ncu(mps)` stands in
    for the L2 pass (it may raise)."""
    from types import SimpleNamespace

    from igniter_opt.platform import mps, nvml
    from igniter_opt.profiling import run

    hwm, models = synthesize(truth_profile())
    names = [m.name for m in models]
    facts = {"sm_count": 132, "io_bytes": {m.name: (m.input_bytes, m.output_bytes) for m in models}}
    worker = SimpleNamespace(ready=facts, close=lambda: None,
                             request=lambda *_: {"bytes": 1 << 20, "pinned": [0.05], "pageable": [0.1]})
    monkeypatch.setattr(run, "check_environment", lambda _l2: None)
    monkeypatch.setattr(mps, "MpsDaemon", _Context)
    monkeypatch.setattr(nvml, "GpuSampler", _Context)
    monkeypatch.setattr(nvml, "gpu_info", lambda: SimpleNamespace(name="synthetic", max_sm_clock_mhz=1980.0,
                                                                  power_limit_w=390.0))
    monkeypatch.setattr(run.grid, "IDLE_POWER_S", 0.0)
    monkeypatch.setattr(run.Sampled, "means", lambda *_: (60.0, 1980.0))
    monkeypatch.setattr(run.Profiler, "_start_workers", lambda self, _m: self.workers.update(s100=worker))
    monkeypatch.setattr(run.Profiler, "_grid", lambda *_: {m.name: m.grid for m in models})
    monkeypatch.setattr(run.Profiler, "_solo_and_coloc", lambda *_: {
        m.name: {"kernels": m.kernels, "idle": m.idle_ms, "active": m.active_ms, "active_2": m.coloc_active_ms,
                 "power_2": m.coloc_power_w, "clock_2": m.coloc_clock_mhz} for m in models})
    monkeypatch.setattr(run.Profiler, "_concurrent", lambda *_: (
        hwm.concurrent_power_w, hwm.concurrent_clock_mhz, hwm.concurrent_idle_per_kernel_ms))
    monkeypatch.setattr(run.Profiler, "_ncu", lambda _self, m: ncu(m))
    out = tmp_path / "raw.jsonl"
    opts = run.RunOptions(models=names, out=out, budget_s=240, work_dir=tmp_path / "work")
    return run, opts, out, {m.name: list(m.l2_diagonal) for m in models}


def test_profile_run_falls_back_to_ncu_outside_mps_and_says_so(tmp_path, monkeypatch):
    calls = []

    def ncu(mps):
        calls.append(mps is not None)
        if mps is not None:
            raise RuntimeError("==ERROR== MPS clients are not supported")
        return diag, {}
    run, opts, out, diag = _synthetic_profiler(monkeypatch, tmp_path, ncu)
    run.profile_run(opts)
    assert calls == [True, False]
    prof = load_raw(out)
    assert all(prof[m]["l2caches"] == diag[m] for m in diag)
    notes = prof["hardware"]["notes"]
    assert any("under MPS failed" in n and "not supported" in n for n in notes)
    assert "L2 demand measured outside MPS (whole GPU at every diagonal point)" in notes
    assert (opts.work_dir / "steps.log").read_text().count("\n") >= 2


def test_profile_run_keeps_its_timings_when_ncu_fails_or_dies(tmp_path, monkeypatch):
    def failing(_mps):
        raise subprocess.TimeoutExpired("ncu", 105)
    run, opts, out, diag = _synthetic_profiler(monkeypatch, tmp_path, failing)
    run.profile_run(opts)
    prof = load_raw(out)
    assert all(prof[m]["l2caches"] == [1.0, 1.0, 1.0] for m in diag)
    assert "L2 demand: unit proxy per co-runner (ncu gave nothing)" in prof["hardware"]["notes"]
    fit(prof, name="h")  # a profile that fits

    def killed(_mps):  # the lease ends during the L2 pass: the timings are on disk already
        raise KeyboardInterrupt
    run, opts, out, diag = _synthetic_profiler(monkeypatch, tmp_path, killed)
    out.unlink()
    with pytest.raises(KeyboardInterrupt):
        run.profile_run(opts)
    prof = load_raw(out)
    assert prof["hardware"]["profile_seconds"] >= 0
    assert all(prof[m]["l2cache"] == 1.0 and prof[m]["l2_source"].startswith("provisional") for m in diag)
    assert prof["alexnet"]["gpulatency"] == raw.grid_matrix(truth_points(), "latency_ms")


def truth_points():
    return next(m.grid for m in synthesize(truth_profile())[1] if m.name == "alexnet")


def test_fit_takes_the_clock_knee_below_the_cap_as_the_cap(tmp_path):
    """The H200 (docs/gpu-h200.md) lowered its clock at 624 W of 700: a_f > 0 against the board
    limit, which the model cannot hold. The last power at full clock becomes the cap instead."""
    truth = truth_profile()
    hwm, models = synthesize(truth)
    F = hwm.max_clock_mhz
    power, clock = [150.0, 240.0, 330.0, 420.0, 470.0], [F, F, F, F, F - 27]
    knee = dataclasses.replace(hwm, power_cap_w=700.0, concurrent_power_w=power, concurrent_clock_mhz=clock)
    path = tmp_path / "knee-raw.jsonl"
    raw.write_raw(path, raw.raw_lines(knee, models))
    fitted = fit(load_raw(path), origin=str(path))
    hw = fitted.hardware
    assert hw.power_cap_w == 420.0
    assert hw.a_f == pytest.approx(-27 / 90)  # one step (90 W) of extrapolated demand past the knee
    assert any("420.0 W" in note and "700 W" in note for note in fitted.notes)
    at_cap = dataclasses.replace(knee, concurrent_power_w=[150.0, 300.0, 450.0, 600.0, 690.0])
    raw.write_raw(path, raw.raw_lines(at_cap, models))
    held = fit(load_raw(path), origin=str(path))  # a drop at the cap (iGniter's GPUs): the board limit
    assert held.hardware.power_cap_w == 700.0 and held.notes == []
    assert held.hardware.a_f == pytest.approx(-27 / 50)


def test_fit_of_a_flat_l2_line_is_exactly_flat(tmp_path):
    """The unit L2 proxy (ncu did not run) gives equal L2 values: slope 0, not curve_fit's -1e-13,
    which the profile schema refuses as a negative L2 demand."""
    hwm, models = synthesize(truth_profile())
    flat = [dataclasses.replace(m, l2_diagonal=(1.0, 1.0, 1.0)) for m in models]
    path = tmp_path / "flat-raw.jsonl"
    raw.write_raw(path, raw.raw_lines(hwm, flat))
    fitted = fit(load_raw(path), origin=str(path))
    assert all(m.l2 == (0.0, 1.0) for m in fitted.models.values())


def test_validation_report_says_what_the_profile_rests_on(tmp_path):
    """The report reads the L2 source, budget and notes from the files: the first H200 lease's
    script printed `--l2 ncu` for a profile whose L2 demands were the unit proxy."""
    from typer.testing import CliRunner

    from igniter_opt.cli import app as cli_app

    root = __import__("conftest").ROOT
    out = tmp_path / "v.md"
    result = CliRunner().invoke(cli_app, [
        "profile", "report", str(root / "docs" / "validation-h200.json"),
        "--raw", str(root / "igniter_opt" / "profiles" / "h200-raw.jsonl"), "--profile", "h200",
        "-o", str(out), "--command", "igniter profile run ...", "--run-seconds", "143"])
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "L2 demand: provisional: ncu still to run (the unit proxy" in text
    assert "budget 230.0 s" in text and "567.9 W is the clock's knee" in text
    assert "| all | 29 | 9.4% | 24.5% | 30.6% |" in text and "median error: 9.4%" in text
    v100 = CliRunner().invoke(cli_app, [
        "profile", "report", str(root / "docs" / "validation-h200.json"),
        "--raw", str(root / "igniter_opt" / "profiles" / "v100-raw.jsonl"), "--profile", "v100", "-o", str(out)])
    assert v100.exit_code == 0 and "the unit proxy" not in out.read_text()  # measured L2: no proxy warning
    bad = tmp_path / "bad.json"
    bad.write_text('{"errors": {}}')
    refused = CliRunner().invoke(cli_app, ["profile", "report", str(bad), "--raw", "x", "--profile", "h200",
                                               "-o", str(out)])
    assert refused.exit_code == 2 and "bad.json" in refused.output
