"""The iGniter performance model: latency and throughput of workloads co-located on one GPU.

All functions are vectorised over the co-located workloads with numpy. The arithmetic follows
the reference implementation operation by operation, so predictions match it to the last digit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from igniter_opt.data.errors import InputError
from igniter_opt.data.schema import short
from igniter_opt.model.coefficients import Hardware, Profile

Array = NDArray[Any]  # numpy arrays of the model and the solvers (float unless said otherwise)


def solo_active_time(batch: Any, share: Any, k: Sequence[Any] | Array) -> Any:
    """t_solo = (k1 b^2 + k2 b + k3) / (r + k4) + k5, ms: active time alone at share r (%).

    Arrays or floats, broadcast like numpy (the result is of the inputs' kind).
    """
    k1, k2, k3, k4, k5 = k
    return (k1 * batch**2 + k2 * batch + k3) / (share + k4) + k5


@dataclass(frozen=True)
class ModelArrays:
    """The coefficients of a list of DNNs stacked as numpy arrays (one row per workload)."""

    k: Array  # (n, 5)
    power: Array  # (n, 2)
    l2: Array  # (n, 2)
    k_l2: Array
    kernels: Array
    t_idle: Array
    input_bytes: Array
    output_bytes: Array

    @classmethod
    def of(cls, profile: Profile, models: Sequence[str]) -> ModelArrays:
        coefs = [profile.model(m) for m in models]
        return cls(
            k=np.array([c.k for c in coefs], dtype=float).reshape(-1, 5),
            power=np.array([c.power for c in coefs], dtype=float).reshape(-1, 2),
            l2=np.array([c.l2 for c in coefs], dtype=float).reshape(-1, 2),
            k_l2=np.array([c.k_l2 for c in coefs], dtype=float),
            kernels=np.array([c.kernels for c in coefs], dtype=float),
            t_idle=np.array([c.t_idle_ms for c in coefs], dtype=float),
            input_bytes=np.array([c.input_bytes for c in coefs], dtype=float),
            output_bytes=np.array([c.output_bytes for c in coefs], dtype=float),
        )


@dataclass(frozen=True)
class SoloTerms:
    """What each workload contributes to its GPU, independent of the others (one entry each)."""

    t_solo: Array  # ms
    ability: Array  # solo throughput, req/s
    power: Array  # W above idle
    l2: Array  # L2 demand


def solo_terms(arrays: ModelArrays, batch: ArrayLike, share: ArrayLike) -> SoloTerms:
    """Solo active time, solo throughput, power and L2 demand of each workload."""
    batch = np.asarray(batch, dtype=float)
    share = np.asarray(share, dtype=float)
    t_solo = solo_active_time(batch, share, arrays.k.T)
    ability = (1000 * batch) / t_solo
    power = arrays.power[:, 0] * ability + arrays.power[:, 1]
    l2 = arrays.l2[:, 0] * ability + arrays.l2[:, 1]
    return SoloTerms(t_solo=t_solo, ability=ability, power=power, l2=l2)


def scheduling_increase(hw: Hardware, n: ArrayLike) -> Array:
    """Extra scheduling delay per kernel with n co-located workloads (0 when alone); n may be an array."""
    n = np.asarray(n, dtype=float)
    return np.where(n >= 2, hw.a_sch * n + hw.b_sch, 0.0)


def frequency_under_cap(hw: Hardware, total_power: ArrayLike) -> Array:
    """SM clock (MHz): F up to the power cap, then dropping by a_f per watt above it."""
    total_power = np.asarray(total_power, dtype=float)
    dropped = hw.a_f * (total_power - hw.power_cap_w) + hw.max_frequency_mhz
    return np.where(total_power > hw.power_cap_w, dropped, hw.max_frequency_mhz)


@dataclass(frozen=True)
class Prediction:
    """Predicted behaviour of one GPU's co-located workloads (arrays in workload order)."""

    latency_ms: Array  # T_inf: GPU time plus PCIe transfer
    throughput_rps: Array
    gpu_latency_ms: Array
    frequency_mhz: float
    power_w: float
    l2_total: float


def predict_arrays(hw: Hardware, arrays: ModelArrays, batch: ArrayLike, share: ArrayLike) -> Prediction:
    """Predict every workload of one GPU from stacked coefficients (the hot path of the solvers)."""
    batch = np.asarray(batch, dtype=float)
    terms = solo_terms(arrays, batch, share)
    n = len(batch)
    total_power = hw.idle_power_w + float(np.sum(terms.power))
    total_l2 = float(np.sum(terms.l2))
    freq = float(frequency_under_cap(hw, total_power))
    t_sched = arrays.kernels * float(scheduling_increase(hw, n)) + arrays.t_idle
    t_act = terms.t_solo * (1 + arrays.k_l2 * (total_l2 - terms.l2))
    gpu = (t_sched + t_act) / (freq / hw.max_frequency_mhz)
    B = hw.bandwidth_bytes_per_ms
    throughput = batch * 1000 / (gpu + arrays.output_bytes * batch / B)
    latency = gpu + (arrays.input_bytes + arrays.output_bytes) * batch / B
    return Prediction(latency_ms=latency, throughput_rps=throughput, gpu_latency_ms=gpu,
                      frequency_mhz=freq, power_w=total_power, l2_total=total_l2)


def predict(profile: Profile, models: Sequence[str], batch: Sequence[int],
            share: Sequence[float]) -> Prediction:
    """Predict latency and throughput of workloads co-located on one GPU of `profile`."""
    if not (len(models) == len(batch) == len(share)):
        raise ValueError("models, batch and share must have the same length")
    return predict_arrays(profile.hardware, ModelArrays.of(profile, models), batch, share)


def predict_gpus(profile: Profile, models: Sequence[str], batch: ArrayLike, share: ArrayLike,
                 gpu: ArrayLike) -> Prediction:
    """predict() for many GPUs at once: workload i runs on GPU gpu[i] (integers 0..G-1).

    The per-GPU sums (power, L2, member count) are bincounts, so a whole plan costs a few vector
    operations (verify at 10,000 workloads). frequency_mhz, power_w and l2_total of the result
    are per-GPU arrays here (typed float in Prediction for the one-GPU case)."""
    hw = profile.hardware
    arrays = ModelArrays.of(profile, models)
    batch = np.asarray(batch, dtype=float)
    gpu = np.asarray(gpu, dtype=np.int64)
    terms = solo_terms(arrays, batch, share)
    size = int(gpu.max(initial=-1)) + 1
    total_power = hw.idle_power_w + np.bincount(gpu, terms.power, minlength=size)
    total_l2 = np.bincount(gpu, terms.l2, minlength=size)
    n = np.bincount(gpu, minlength=size)
    freq = frequency_under_cap(hw, total_power)
    t_sched = arrays.kernels * scheduling_increase(hw, n)[gpu] + arrays.t_idle
    t_act = terms.t_solo * (1 + arrays.k_l2 * (total_l2[gpu] - terms.l2))
    gpu_ms = (t_sched + t_act) / (freq[gpu] / hw.max_frequency_mhz)
    B = hw.bandwidth_bytes_per_ms
    throughput = batch * 1000 / (gpu_ms + arrays.output_bytes * batch / B)
    latency = gpu_ms + (arrays.input_bytes + arrays.output_bytes) * batch / B
    return Prediction(latency_ms=latency, throughput_rps=throughput, gpu_latency_ms=gpu_ms,
                      frequency_mhz=freq, power_w=total_power, l2_total=total_l2)  # type: ignore[arg-type]


SHARE_SLACK = 1e-6  # float noise allowed on a GPU's share sum


def check_colocation(profile: Profile, models: Sequence[str], batch: Sequence[float], share: Sequence[float],
                     labels: Sequence[str], group: str) -> None:
    """Refuse what the model was not fitted for, as one-line InputErrors naming the label.

    Every model must be in the profile, every batch an integer inside the profile's fitted batch
    range, every share in [unit, 100], and the shares of one GPU (`group`) must sum to at most 100.
    """
    lo, hi = profile.fitted_range["batch"]
    unit = profile.hardware.unit_pct
    for label, m, b, r in zip(labels, models, batch, share):
        if m not in profile.models:
            known = ", ".join(sorted(profile.models))
            raise InputError(f"{label}: model {m!r} is not in profile {profile.name!r} (known: {known})")
        if isinstance(b, (float, np.floating)) and float(b).is_integer():
            b = int(b)
        if not (isinstance(b, (int, np.integer)) and lo <= b <= hi):
            raise InputError(f"{label}: batch {short(b)} is outside the fitted range {lo:g}..{hi:g} of profile "
                             f"{profile.name!r} (the model does not extrapolate)")
        if not 0 < r <= 100:
            raise InputError(f"{label}: share {r:g}% is not in (0, 100]")
        if r < unit - SHARE_SLACK:
            raise InputError(f"{label}: share {r:g}% is below the unit {unit:g}% of profile {profile.name!r} "
                             f"(the smallest MPS share it models)")
    total = float(np.sum(np.asarray(share, dtype=float)))
    if total > 100 + SHARE_SLACK:
        raise InputError(f"{group}: shares sum to {total:g}% > 100%")


def predict_checked(profile: Profile, models: Sequence[str], batch: Sequence[int], share: Sequence[float],
                    labels: Sequence[str], group: str) -> Prediction:
    """predict() for what a user gives: inputs checked by check_colocation, and a prediction that
    is not positive and finite (a profile whose coefficients break down there) refused too."""
    check_colocation(profile, models, batch, share, labels, group)
    pred = predict(profile, models, batch, share)
    ok = (np.isfinite(pred.latency_ms) & np.isfinite(pred.throughput_rps) & (pred.latency_ms > 0)
          & (pred.throughput_rps > 0))
    if not ok.all():
        i = int(np.argmin(ok))
        raise InputError(f"{labels[i]}: profile {profile.name!r} predicts latency {pred.latency_ms[i]:.4g} ms "
                         f"and throughput {pred.throughput_rps[i]:.4g} req/s here: outside where its "
                         f"coefficients hold (clock {pred.frequency_mhz:.4g} MHz)")
    return pred
