"""Learned corrections: measured-vs-predicted errors per (model, GPU type), applied to later placements.

Every break a shadow controller records (RUN_DIR/corrections.jsonl, deploy/shadow.py) carries
`gpu_error_ratio`: Triton's measured compute time per request, less the PCIe transfer the model
adds, over the model's predicted GPU time for the batch that ran. `aggregate` groups them by GPU
type and model into a learned-margin file:

    {"kind": "igniter-learned-margin", "gpu_type": "...", "profile": "v100",
     "models": {"alexnet": {"factor": 1.53, "samples": 3, "ratios": [...]}}}

with factor = the median ratio, never below 1 (a model found faster than predicted in a few windows
is not packed tighter on that evidence). `apply_learned` returns a profile whose predicted GPU time
of each listed model is `factor` times the original for every batch, share and co-location (the
solo-time coefficients k1, k2, k3, k5, the idle time and the kernel count scale by the factor; the
power and L2 slopes by the same factor, so the power and L2 demand, which grow with solo
throughput, and so the clock and interference seen by co-runners, are unchanged). The transfer
time is the bytes over the bus and is not scaled. Solving with that profile (`igniter solve
--learned-margin FILE`) tightens exactly the workloads of those models.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from statistics import median
from typing import Any

from igniter_opt.data.errors import InputError
from igniter_opt.data.io import read_json
from igniter_opt.model.coefficients import Profile

KIND = "igniter-learned-margin"


def aggregate(corrections: list[dict[str, Any]]) -> dict[str, Any]:
    """A learned-margin document from correction records of one GPU type (InputError if mixed or none)."""
    rows = [c for c in corrections if isinstance(c.get("gpu_error_ratio"), (int, float))
            and math.isfinite(c["gpu_error_ratio"]) and c["gpu_error_ratio"] > 0]
    if not rows:
        raise InputError("no corrections with a measured error to learn from (a shadow switch records them)")
    types = {(c.get("gpu_type", ""), c.get("profile", "")) for c in rows}
    if len(types) > 1:
        raise InputError(f"corrections from several GPU types {sorted(types)}: learn one GPU type at a time")
    gpu_type, profile = types.pop()
    models: dict[str, dict[str, Any]] = {}
    for c in rows:
        models.setdefault(c["model"], {"ratios": []})["ratios"].append(float(c["gpu_error_ratio"]))
    for m in models.values():
        m["samples"] = len(m["ratios"])
        m["factor"] = max(1.0, float(median(m["ratios"])))
    return {"kind": KIND, "gpu_type": gpu_type, "profile": profile,
            "models": {k: models[k] for k in sorted(models)}}


def load_learned(path: str | Path, profile: Profile) -> dict[str, float]:
    """model -> factor from a learned-margin file for `profile`'s GPU type (InputError naming the field)."""
    data = read_json(Path(path), "a learned-margin file")
    if not isinstance(data, dict) or data.get("kind") != KIND:
        raise InputError(f"{path}: not a learned-margin file (make it with `igniter learn RUN_DIR -o FILE`)")
    if data.get("gpu_type") != profile.gpu:
        raise InputError(f"{path}: field gpu_type: learned on {data.get('gpu_type')!r}, the profile is for "
                         f"{profile.gpu!r}")
    factors = {}
    for model, entry in (data.get("models") or {}).items():
        factor = entry.get("factor") if isinstance(entry, dict) else None
        if not isinstance(factor, (int, float)) or isinstance(factor, bool) or not math.isfinite(factor) \
                or factor < 1:
            raise InputError(f"{path}: field models.{model}.factor: must be a finite number >= 1, got {factor!r}")
        if model not in profile.models:
            raise InputError(f"{path}: field models.{model}: not a model of profile {profile.name!r}")
        factors[model] = float(factor)
    return factors


def apply_learned(profile: Profile, factors: dict[str, float]) -> Profile:
    """The profile with each listed model's predicted GPU time scaled by its factor (module docstring)."""
    models = dict(profile.models)
    for name, f in factors.items():
        c = models[name]
        k1, k2, k3, k4, k5 = c.k
        # the kernel count becomes fractional: the scheduling delay scales with the GPU time
        models[name] = replace(c, k=(k1 * f, k2 * f, k3 * f, k4, k5 * f), t_idle_ms=c.t_idle_ms * f,
                               kernels=c.kernels * f,  # type: ignore[arg-type]
                               power=(c.power[0] * f, c.power[1]), l2=(c.l2[0] * f, c.l2[1]))
    notes = [*profile.notes, "learned margin: " + ", ".join(f"{m} x{f:.3g}" for m, f in sorted(factors.items()))]
    return replace(profile, models=models, notes=notes)
