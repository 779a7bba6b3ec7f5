"""Learned corrections: errors aggregated per model, applied as a scaled GPU time, used by solve."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from igniter_opt.data.errors import InputError
from igniter_opt.data.instance import load_instance
from igniter_opt.model import load_profile, predict
from igniter_opt.model.learned import KIND, aggregate, apply_learned, load_learned
from igniter_opt.solvers.solve import solve

ROOT = Path(__file__).resolve().parent.parent
MOTIVATION = ROOT / "instances" / "paper" / "motivation.json"
GPU = load_profile("v100").gpu


def _corr(model: str, ratio: float, gpu: str = GPU) -> dict:
    return {"workload": model, "model": model, "gpu_type": gpu, "profile": "v100", "action": "switched",
            "gpu_error_ratio": ratio}


def test_scaled_profile_scales_exactly_the_gpu_time_of_the_listed_model():
    profile = load_profile("v100")
    learned = apply_learned(profile, {"alexnet": 1.5})
    models, batches = ["vgg19", "resnet50", "alexnet"], [6, 8, 4]
    for shares in ([37.5, 30, 10], [20, 20, 60], [5, 5, 5]):
        a, b = predict(profile, models, batches, shares), predict(learned, models, batches, shares)
        np.testing.assert_allclose(b.gpu_latency_ms[2], 1.5 * a.gpu_latency_ms[2], rtol=1e-12)
        np.testing.assert_allclose(b.gpu_latency_ms[:2], a.gpu_latency_ms[:2], rtol=1e-12)  # co-runners unchanged
        assert (b.frequency_mhz, b.power_w) == pytest.approx((a.frequency_mhz, a.power_w))
    assert learned.models["resnet50"] == profile.models["resnet50"] and "alexnet x1.5" in learned.notes[-1]


def test_aggregate_median_never_below_one_and_one_gpu_type():
    learned = aggregate([_corr("alexnet", 1.4), _corr("alexnet", 1.6), _corr("alexnet", 1.5),
                         _corr("vgg19", 0.8), {"action": "shadow-failed"}])
    assert learned["kind"] == KIND and learned["gpu_type"] == GPU
    assert learned["models"]["alexnet"]["factor"] == pytest.approx(1.5) and learned["models"]["alexnet"]["samples"] == 3
    assert learned["models"]["vgg19"]["factor"] == 1.0
    with pytest.raises(InputError, match="several GPU types"):
        aggregate([_corr("alexnet", 1.5), _corr("alexnet", 1.5, "NVIDIA H100")])
    with pytest.raises(InputError, match="no corrections"):
        aggregate([{"action": "replan-needed", "gpu_error_ratio": None}])


def test_load_learned_checks_gpu_type_factor_and_model(tmp_path):
    profile = load_profile("v100")
    path = tmp_path / "l.json"
    for doc, word in [({"kind": "x"}, "not a learned-margin file"),
                      ({"kind": KIND, "gpu_type": "NVIDIA H100", "models": {}}, "field gpu_type"),
                      ({"kind": KIND, "gpu_type": GPU, "models": {"alexnet": {"factor": 0.5}}},
                       "models.alexnet.factor"),
                      ({"kind": KIND, "gpu_type": GPU, "models": {"bert": {"factor": 1.2}}}, "models.bert")]:
        path.write_text(json.dumps(doc))
        with pytest.raises(InputError, match=word):
            load_learned(path, profile)


def test_learn_then_solve_with_the_learned_margin(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "corrections.jsonl").write_text("".join(json.dumps(_corr("alexnet", r)) + "\n" for r in (1.5, 1.6)))
    learned = tmp_path / "learned.json"
    cli = [sys.executable, "-m", "igniter_opt"]
    done = subprocess.run([*cli, "learn", str(run), "-o", str(learned)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "alexnet: x1.550 from 2 measured break(s)" in done.stdout
    plan_path = tmp_path / "plan.json"
    done = subprocess.run([*cli, "solve", str(MOTIVATION), "--learned-margin", str(learned), "-o", str(plan_path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    plan = json.loads(plan_path.read_text())
    share = {w["name"]: w["resource_pct"] for g in plan["gpus"] for w in g["workloads"]}
    plain = {w.name: w.resource_pct for w in solve(load_instance(MOTIVATION), "greedy").workloads()}
    assert share["alexnet"] > plain["alexnet"] == 10.0  # alexnet is given more GPU for its learned error
    assert "learned margin" in plan["message"] and "alexnet x1.55" in plan["message"]
    bad = subprocess.run([*cli, "learn", str(tmp_path / "nothing"), "-o", str(learned)], capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode == 2 and "no corrections file" in bad.stderr
