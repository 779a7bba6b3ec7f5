"""The performance model: each equation on hand-checked numbers, fit and predict against the reference."""

import re
from dataclasses import replace

import numpy as np
import pytest
from conftest import RAW_V100

from igniter_opt.data.errors import InputError
from igniter_opt.data.profiles import load_raw
from igniter_opt.model import Hardware, ModelCoefficients, Profile, load_profile, predict
from igniter_opt.model.fit import fit
from igniter_opt.model.predict import frequency_under_cap, scheduling_increase, solo_active_time

HW = Hardware(max_frequency_mhz=1500, power_cap_w=300, idle_power_w=50, bandwidth_bytes_per_ms=1000,
              unit_pct=2.5, a_f=-2.0, a_sch=0.01, b_sch=0.02)
TOY = ModelCoefficients(name="toy", kernels=10, t_idle_ms=0.5, input_bytes=100, output_bytes=50,
                        k=(1.0, 2.0, 3.0, 4.0, 5.0), power=(0.1, 10.0), l2=(0.01, 1.0), k_l2=0.1)


def toy_profile(**hw_changes) -> Profile:
    return Profile(name="toy", gpu="", hardware=replace(HW, **hw_changes), models={"toy": TOY})


def test_solo_active_time_by_hand():
    # (1*4 + 2*2 + 3) / (6 + 4) + 5 = 6.1
    assert solo_active_time(2, 6, TOY.k) == pytest.approx(6.1)


def test_scheduling_delay_zero_alone_linear_when_shared():
    assert scheduling_increase(HW, 1) == 0.0
    assert scheduling_increase(HW, 3) == pytest.approx(0.01 * 3 + 0.02)


def test_frequency_drops_only_above_the_cap():
    f = frequency_under_cap(HW, [250.0, 300.0, 310.0])
    np.testing.assert_allclose(f, [1500.0, 1500.0, 1480.0])


def test_alone_below_cap_by_hand():
    # b=2, r=6: t_solo 6.1 ms, ability 1000*2/6.1, power 50 + 0.1*ability + 10 < 300: full clock.
    pred = predict(toy_profile(), ["toy"], [2], [6])
    t_gpu = 0.5 + 6.1  # no scheduling increase, no L2 contention alone
    assert pred.gpu_latency_ms[0] == pytest.approx(t_gpu)
    assert pred.latency_ms[0] == pytest.approx(t_gpu + (100 + 50) * 2 / 1000)
    assert pred.throughput_rps[0] == pytest.approx(2000 / (t_gpu + 50 * 2 / 1000))
    assert pred.frequency_mhz == 1500


def test_two_colocated_by_hand_with_l2_and_clock_drop():
    prof = toy_profile(power_cap_w=60.0)
    pred = predict(prof, ["toy", "toy"], [2, 4], [6, 10])
    t1, t2 = 6.1, (16 + 8 + 3) / 14 + 5
    a1, a2 = 2000 / t1, 4000 / t2
    c1, c2 = 0.01 * a1 + 1, 0.01 * a2 + 1
    power = 50 + (0.1 * a1 + 10) + (0.1 * a2 + 10)
    freq = -2.0 * (power - 60) + 1500
    sched = 10 * (0.01 * 2 + 0.02) + 0.5
    gpu1 = (sched + t1 * (1 + 0.1 * c2)) * 1500 / freq
    gpu2 = (sched + t2 * (1 + 0.1 * c1)) * 1500 / freq
    assert pred.frequency_mhz == pytest.approx(freq)
    np.testing.assert_allclose(pred.gpu_latency_ms, [gpu1, gpu2], rtol=1e-12)
    np.testing.assert_allclose(pred.latency_ms, [gpu1 + 0.3, gpu2 + 0.6], rtol=1e-12)


def test_fit_reproduces_reference_coefficients(reference):
    fitted = fit(load_raw(RAW_V100))
    ref = reference["fitted_coefficients"]
    assert fitted.hardware.a_f == pytest.approx(ref["hardware"]["powerp"][0], rel=1e-6)
    assert (fitted.hardware.a_sch, fitted.hardware.b_sch) == pytest.approx(tuple(ref["hardware"]["idlef"]), rel=1e-6)
    assert set(fitted.models) == {"alexnet", "resnet50", "vgg19", "ssd"}
    for name, m in fitted.models.items():
        np.testing.assert_allclose(m.k, ref[name]["act_popt"], rtol=1e-6)
        np.testing.assert_allclose(m.power, ref[name]["power_popt"], rtol=1e-6)
        np.testing.assert_allclose(m.l2, ref[name]["l2cache_popt"], rtol=1e-6)
        assert m.k_l2 == pytest.approx(ref[name]["k_l2"], rel=1e-6)


def test_bundled_profile_is_the_fit_of_the_bundled_raw_file(v100):
    assert RAW_V100.is_file()
    refit = fit(load_raw(RAW_V100), name="v100")
    assert refit.hardware == v100.hardware
    assert refit.models == v100.models


def test_bundled_h200_profile_is_the_fit_of_its_measurements():
    """The H200 profile (docs/gpu-h200.md) is what `profile fit` makes of the raw file measured on
    the lent H200; its power cap is the clock's knee, below the board's 700 W."""
    raw_path = RAW_V100.parent / "h200-raw.jsonl"
    h200 = load_profile("h200")
    refit = fit(load_raw(raw_path), name="h200", gpu="NVIDIA H200", origin=str(raw_path))
    assert refit.hardware == h200.hardware and refit.models == h200.models
    assert h200.hardware.power_cap_w < 700.0 and h200.hardware.a_f < 0 and h200.notes


def _prediction_cases(reference):
    yield reference["motivation_example"]["prediction_for_plan"]
    yield from reference["more_predictions"]


def test_predictions_match_reference(reference, v100):
    cases = list(_prediction_cases(reference))
    assert len(cases) == 5
    for case in cases:
        pred = predict(v100, case["models"], case["batches"], case["resources"])
        np.testing.assert_allclose(pred.latency_ms, case["latency"], rtol=1e-6)
        np.testing.assert_allclose(pred.throughput_rps, case["throughput"], rtol=1e-6)


def test_profile_round_trips_through_json(tmp_path, v100):
    path = tmp_path / "p.json"
    v100.save(path)
    assert load_profile(path) == v100


def test_unknown_profile_and_model_are_input_errors(v100):
    with pytest.raises(InputError, match="nope"):
        load_profile("nope")
    with pytest.raises(InputError, match="bert"):
        v100.model("bert")


def test_malformed_raw_line_names_file_and_line(tmp_path):
    raw = tmp_path / "raw.jsonl"
    raw.write_text('{"hardware": {"idlepower": 50}}\n{oops\n')
    with pytest.raises(InputError, match=r"raw.jsonl:2"):
        load_raw(raw)


def test_missing_raw_field_is_named(tmp_path):
    raw = tmp_path / "raw.jsonl"
    lines = [line for line in RAW_V100.read_text().splitlines() if "maxGPUpower" not in line]
    raw.write_text("\n".join(lines))
    with pytest.raises(InputError, match=re.escape("hardware.maxGPUpower")):
        fit(load_raw(raw), origin=str(raw))
