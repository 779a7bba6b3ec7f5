"""Fit the model's coefficients from a raw GPU profile, exactly as the iGniter reference does.

The raw profile (igniter_opt.data.profiles.load_raw) is iGniter's JSON-lines format: each line is
{section: {key: value}} and the keys of a section merge across lines. Sections are "hardware" and
one per DNN. Every fit uses
scipy.optimize.curve_fit with its default start point, like the reference, so that the fitted
digits match the published V100 values.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import OptimizeWarning, curve_fit

from igniter_opt.data.errors import InputError
from igniter_opt.data.profiles import GRID_BATCHES, GRID_SHARES, RawProfile
from igniter_opt.data.profileschema import check_raw
from igniter_opt.model.coefficients import Hardware, ModelCoefficients, Profile
from igniter_opt.model.predict import solo_active_time


def _field(raw: RawProfile, section: str, key: str, origin: str) -> Any:
    try:
        return raw[section][key]
    except KeyError:
        raise InputError(f"{origin}: field {section}.{key} is missing") from None


def fit_power_frequency(power: list[float], frequency: list[float], max_freq: float,
                        power_cap: float, idle_power: float) -> float:
    """a_f from 1..n concurrent VGG-19 runs (MHz per W above the power cap).

    From the first point whose frequency is below F on, measured powers are replaced by a linear
    extrapolation (mean step of the points at F; power[0] - P_idle when no such step exists),
    because the measured power saturates at the cap while demand keeps growing.
    Returns 0 when the clock never dropped (no evidence of a drop, so none is predicted).
    """
    power = [float(p) for p in power]
    step, steps = 0.0, 0
    for i, f in enumerate(frequency):
        if f == max_freq:
            if i >= 1:
                step += power[i] - power[i - 1]
                steps += 1
            continue
        step = step / steps if steps else power[0] - idle_power
        previous = power[i - 1] if i >= 1 else idle_power
        for j in range(i, len(power)):
            power[j] = previous + step
            previous = power[j]

        def p_f(po: Any, a: Any) -> Any:
            return a * (po - power_cap) + max_freq

        popt, _ = curve_fit(p_f, power[i:], frequency[i:])
        return float(popt[0])
    return 0.0


# A clock that falls while the measured power is below this fraction of the cap is not held by the cap.
BELOW_CAP = 0.95


def effective_power_cap(power: list[float], frequency: list[float], max_freq: float,
                        power_cap: float, idle_power: float) -> float:
    """The power at which the clock starts to fall: the cap, unless the sweep shows it falling below.

    iGniter's GPUs (T4, V100) hold F until the board reaches its power limit. An H200 lowered its
    clock at 624 W of its 700 W limit: there the last power measured at F (a lower bound on the
    true knee, so the drop is predicted early, never late) takes the cap's place in the model.
    """
    for i, f in enumerate(frequency):
        if f < max_freq:
            if power[i] >= BELOW_CAP * power_cap:
                return power_cap
            return float(power[i - 1]) if i >= 1 else idle_power
    return power_cap


def fit_scheduling_delay(idle_times: list[float], frequency: list[float],
                         max_freq: float) -> tuple[float, float]:
    """(a_sch, b_sch): idle time scaled to F, minus the solo one, against co-location count 2..n."""
    scaled = np.asarray(idle_times, dtype=float) * np.asarray(frequency, dtype=float) / max_freq
    counts = np.arange(2, len(scaled) + 1)

    def idle_f(n: Any, a_sch: Any, b_sch: Any) -> Any:
        return a_sch * n + b_sch

    popt, _ = curve_fit(idle_f, counts, scaled[1:] - scaled[0])
    return float(popt[0]), float(popt[1])


def _activetime_func(x: Any, k1: Any, k2: Any, k3: Any, k4: Any, k5: Any) -> Any:
    return solo_active_time(x[0], x[1], (k1, k2, k3, k4, k5))


def fit_active_time(gpu_latency: ArrayLike, frequency: ArrayLike, t_idle: float,
                    max_freq: float) -> tuple[float, ...]:
    """k1..k5 from the 3x3 grid of GPU latency (scaled to F where the clock dropped, minus t_idle)."""
    latency = np.asarray(gpu_latency, dtype=float)
    freq = np.asarray(frequency, dtype=float)
    active = np.where(freq < max_freq, latency * (freq / max_freq), latency) - t_idle
    batches, shares = np.meshgrid(GRID_BATCHES, GRID_SHARES, indexing="ij")
    x = np.array([batches.ravel(), shares.ravel()])
    popt, _ = curve_fit(_activetime_func, x, active.ravel(), maxfev=100000)
    return tuple(float(v) for v in popt)


def _line(x: Any, k: Any, b: Any) -> Any:
    return k * x + b


def fit_power_and_l2(power: ArrayLike, gpu_latency: ArrayLike, frequency: ArrayLike, l2caches: ArrayLike, t_idle: float,
                     idle_power: float, max_freq: float) -> tuple[tuple[float, float], tuple[float, float]]:
    """Power line over grid points at full clock; L2 line over the grid's diagonal."""
    batches = np.repeat(np.asarray(GRID_BATCHES, dtype=float), len(GRID_SHARES))
    ability = 1000 * batches / (np.asarray(gpu_latency, dtype=float).ravel() - t_idle)
    full_clock = np.asarray(frequency, dtype=float).ravel() > max_freq - 1
    extra_power = np.asarray(power, dtype=float).ravel() - idle_power
    popt_p, _ = curve_fit(_line, list(ability[full_clock]), list(extra_power[full_clock]))
    diagonal = [ability[0], ability[4], ability[8]]
    caches = np.asarray(l2caches, dtype=float)
    if np.ptp(caches) == 0:  # a flat L2 line (the unit proxy): exact, not curve_fit's 1e-13 slope
        return (float(popt_p[0]), float(popt_p[1])), (0.0, float(caches[0]))
    popt_c, _ = curve_fit(_line, diagonal, l2caches)
    return (float(popt_p[0]), float(popt_p[1])), (float(popt_c[0]), float(popt_c[1]))


def fit_model(raw: RawProfile, name: str, hw: Hardware, origin: str) -> ModelCoefficients:
    """Coefficients of one DNN section of a raw profile."""

    def get(key: str) -> Any:
        return _field(raw, name, key, origin)

    F = hw.max_frequency_mhz
    t_idle = float(get("idletime_1"))
    l2cache = float(get("l2cache"))
    k_l2 = ((get("activetime_2") * get("frequency_2") / F) / get("activetime_1") - 1) / l2cache
    k = fit_active_time(get("gpulatency"), get("frequency"), t_idle, F)
    power, l2 = fit_power_and_l2(get("power"), get("gpulatency"), get("frequency"), get("l2caches"),
                                 t_idle, hw.idle_power_w, F)
    return ModelCoefficients(
        name=name, kernels=int(get("kernel")), t_idle_ms=t_idle,
        input_bytes=float(get("inputdata")), output_bytes=float(get("outputdata")),
        k=k, power=power, l2=l2, k_l2=float(k_l2),  # type: ignore[arg-type]
    )


FIT_ERRORS = (RuntimeError, ValueError, TypeError, ZeroDivisionError, OverflowError, FloatingPointError,
              np.linalg.LinAlgError)


def fit(raw: RawProfile, name: str = "profile", gpu: str = "", origin: str = "<raw>") -> Profile:
    """Fit a Profile from a raw profile (see load_raw).

    The raw profile is validated first (data/schema.py: RawHardwareSpec, RawModelSpec); a fit that
    fails or gives a non-finite coefficient is an InputError naming the raw file.
    """
    check_raw(raw, origin)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OptimizeWarning)
            warnings.simplefilter("ignore", RuntimeWarning)
            profile = _fit(raw, name, gpu, origin)
    except InputError:
        raise
    except FIT_ERRORS as exc:
        first = (str(exc).splitlines() or [""])[0][:120]
        raise InputError(f"{origin}: the fit failed ({type(exc).__name__}: {first})") from None
    try:  # the fitted coefficients pass the same schema as a profile file
        return Profile.from_dict(profile.to_dict(), origin)
    except InputError as exc:
        raise InputError(f"fitting gave an unusable profile: {exc}") from None


def _fit(raw: RawProfile, name: str, gpu: str, origin: str) -> Profile:
    def hwf(key: str) -> Any:
        return _field(raw, "hardware", key, origin)

    F, P_max, P_idle = float(hwf("maxGPUfrequency")), float(hwf("maxGPUpower")), float(hwf("idlepower"))
    cap = effective_power_cap(hwf("power"), hwf("frequency"), F, P_max, P_idle)
    a_f = fit_power_frequency(hwf("power"), hwf("frequency"), F, cap, P_idle)
    a_sch, b_sch = fit_scheduling_delay(hwf("idletime"), hwf("frequency"), F)
    hw = Hardware(max_frequency_mhz=F, power_cap_w=cap, idle_power_w=P_idle,
                  bandwidth_bytes_per_ms=float(hwf("bandwidth")), unit_pct=float(hwf("unit")),
                  a_f=a_f, a_sch=a_sch, b_sch=b_sch)
    models = {m: fit_model(raw, m, hw, origin) for m in raw if m != "hardware"}
    notes = [] if cap == P_max else [
        f"power_cap_w {cap:.1f} W is the clock's knee measured below the board's {P_max:g} W limit "
        f"(the clock fell at {min(hwf('frequency')):g} MHz while under {BELOW_CAP:.0%} of the limit)"]
    return Profile(name=name, gpu=gpu or str(raw["hardware"].get("gpu", "")), hardware=hw,
                   models=models, source=Path(origin).name, notes=notes)
