"""Random instances for tests and benchmarks (one function, stable signature)."""

from __future__ import annotations

import numpy as np

from igniter_opt.data.dnn import MODEL_NAMES
from igniter_opt.data.instance import Instance, Workload

# Per model (every DNN of data.dnn): SLO range (ms) and request-rate range (req/s), drawn uniformly.
RANGES: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {
    "alexnet": ((10.0, 40.0), (200.0, 1500.0)),
    "resnet50": ((20.0, 80.0), (100.0, 800.0)),
    "vgg19": ((30.0, 100.0), (50.0, 500.0)),
    "ssd": ((40.0, 100.0), (50.0, 300.0)),
}


def random_instance(n: int, seed: int, profile: str = "v100") -> Instance:
    """n workloads drawn with numpy's default_rng(seed); the same (n, seed) gives the same instance.

    Each workload: model uniform over alexnet, resnet50, vgg19, ssd; SLO uniform in the model's
    range, rounded to 1 ms (alexnet 10-40, resnet50 20-80, vgg19 30-100, ssd 40-100 ms); rate
    uniform in the model's range, rounded to 10 req/s (alexnet 200-1500, resnet50 100-800,
    vgg19 50-500, ssd 50-300 req/s). Every draw is servable on a V100 (replicas for the largest
    rates). Names are "<model>-<i>"; the instance is "random-n<n>-s<seed>", policy "paper".
    """
    rng = np.random.default_rng(seed)
    models = list(MODEL_NAMES)
    workloads = []
    for i in range(n):
        model = models[int(rng.integers(len(models)))]
        (slo_lo, slo_hi), (rate_lo, rate_hi) = RANGES[model]
        slo = float(round(rng.uniform(slo_lo, slo_hi)))
        rate = float(round(rng.uniform(rate_lo, rate_hi) / 10) * 10)
        workloads.append(Workload(name=f"{model}-{i}", model=model, slo_ms=slo, rate_rps=rate))
    return Instance(name=f"random-n{n}-s{seed}", profile=profile, workloads=tuple(workloads))


# Per model: SLO range (ms) of the mixed family; rates are 50-400 req/s for every model.
MIXED_SLO: dict[str, tuple[float, float]] = {
    "alexnet": (10.0, 30.0), "resnet50": (25.0, 80.0), "vgg19": (40.0, 120.0), "ssd": (50.0, 150.0),
}
MIXED_RATE = (50.0, 400.0)


def mixed_instance(n: int, seed: int, profile: str = "v100") -> Instance:
    """n workloads of the `mixed` family (the datacenter-scale benchmark of the exact solver).

    Model uniform over the four; SLO uniform in the model's range (alexnet 10-30, resnet50 25-80,
    vgg19 40-120, ssd 50-150 ms), rate uniform in 50-400 req/s, both rounded to 1. Drawn with
    numpy's default_rng(seed + 7919 n) so instances of different sizes are independent.
    """
    workloads = _mixed_draws(np.random.default_rng(seed + 7919 * n), n, (1.0, 1.0), MIXED_RATE)
    return Instance(name=f"mixed-n{n}-s{seed}", profile=profile, workloads=tuple(workloads))


def _mixed_draws(rng: np.random.Generator, n: int, slo_scale: tuple[float, float],
                 rates: tuple[float, float]) -> list[Workload]:
    """n workloads: model uniform over MIXED_SLO's four, SLO uniform between the model's low end
    times slo_scale[0] and its high end times slo_scale[1], rate uniform in `rates`, both rounded
    to 1 (drawn in that order, workload by workload)."""
    models = list(MIXED_SLO)
    workloads = []
    for i in range(n):
        model = models[int(rng.integers(len(models)))]
        lo, hi = MIXED_SLO[model]
        slo = float(round(rng.uniform(lo * slo_scale[0], hi * slo_scale[1])))
        rate = float(round(rng.uniform(*rates)))
        workloads.append(Workload(name=f"{model}-{i}", model=model, slo_ms=slo, rate_rps=rate))
    return workloads


# The few family: a handful of high-rate workloads, each over several GPUs (split into replicas)
FEW_SLO_SCALE = (1.0, 10.0)  # times the mixed family's SLO range
FEW_RATE = (500.0, 3000.0)


def few_instance(n: int, seed: int, policy: str = "paper", profile: str = "v100") -> Instance:
    """n workloads of the `few` family: model uniform over the four, SLO uniform in the mixed
    family's range scaled by 1-10 (loose SLOs allow large batches), rate uniform in 500-3000
    req/s, both rounded to 1; most need several GPUs, so plans split them into replicas. Drawn
    with default_rng(seed + 104729 n); the instance is "few-n<n>-s<seed>"."""
    workloads = _mixed_draws(np.random.default_rng(seed + 104729 * n), n, FEW_SLO_SCALE, FEW_RATE)
    return Instance(name=f"few-n{n}-s{seed}", profile=profile, workloads=tuple(workloads), batch_policy=policy)
