"""The plan of a profiling run: which points are measured, by which workers, for how long.

Pure: the orchestration (run.py) follows this plan on a GPU; tests check it here.
"""

from __future__ import annotations

from dataclasses import dataclass

from igniter_opt.data import dnn
from igniter_opt.data.dnn import DNNS
from igniter_opt.data.errors import InputError
from igniter_opt.data.profiles import GRID_BATCHES, GRID_SHARES

# torchvision builders of the paper's DNNs, by raw-profile name.
MODELS = {name: spec.torchvision for name, spec in DNNS.items()}
ALIASES = {**dnn.ALIASES, "vgg": "vgg19", "resnet": "resnet50"}

COLOC_POINT = (16, 50)                       # solo idle/active time and the same-model co-location
DIAGONAL = ((1, 10), (16, 50), (32, 100))    # L2 demand points (raw l2caches), as in fit.py
HW_MODEL, HW_BATCH, HW_SHARE = "vgg19", 32, 20  # 1..5 concurrent VGG-19 for power/clock/scheduling
HW_MAX_CONCURRENT = 5
TRACE_ITERS = 12                             # inferences traced per kernel trace

# Fixed costs (s) of a run on an H100/H200: worker start-up (torch import, models, CUDA graphs) and
# one ncu run per diagonal point; what is left of the budget goes to timed windows.
STARTUP_S = 45.0
NCU_RUN_S = 35.0
IDLE_POWER_S = 2.5
TRACE_LOAD_S = 3.0   # co-runners keep loading the GPU this long while one worker traces its kernels
MIN_POINT_S, MAX_POINT_S = 1.2, 2.5


def parse_models(spec: str) -> list[str]:
    """'alexnet,resnet50,...' -> raw-profile names (aliases resolved, order kept, no duplicates)."""
    out: list[str] = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        name = ALIASES.get(part, part)
        if name not in MODELS:
            raise InputError(f"unknown model {part!r} (known: {', '.join(MODELS)})")
        if name not in out:
            out.append(name)
    if not out:
        raise InputError("no models given")
    return out


@dataclass(frozen=True)
class WorkerSpec:
    """One worker process: its key, MPS share, models and the batches it prepares."""

    key: str
    share: float
    models: tuple[str, ...]
    batches: tuple[int, ...]


@dataclass(frozen=True)
class Budget:
    """Seconds of each timed window, chosen so the whole run fits the budget."""

    point_s: float          # one grid point
    coloc_s: float          # one same-model co-location
    concurrent_s: float     # one 1..5 VGG-19 step
    ncu_timeout_s: float    # one ncu run
    estimate_s: float       # predicted total


def workers(models: list[str]) -> list[WorkerSpec]:
    """Worker processes of a run: one per grid share holding every model, a co-location partner,
    and HW_MAX_CONCURRENT VGG-19 workers at HW_SHARE for the hardware steps."""
    specs = [WorkerSpec(f"s{s:g}", float(s), tuple(models), tuple(GRID_BATCHES)) for s in GRID_SHARES]
    specs.append(WorkerSpec("partner", float(COLOC_POINT[1]), tuple(models), (COLOC_POINT[0],)))
    specs += [WorkerSpec(f"hw{i}", float(HW_SHARE), (HW_MODEL,), (HW_BATCH,))
              for i in range(HW_MAX_CONCURRENT)]
    return specs


def count_steps(models: list[str], l2: bool = True) -> int:
    """Progress-bar steps: idle power, bandwidth, grid points, traces, co-locations, hw steps, ncu."""
    n = len(models)
    return 2 + n * len(GRID_BATCHES) * len(GRID_SHARES) + 2 * n + HW_MAX_CONCURRENT + (len(DIAGONAL) if l2 else 0)


def plan_budget(budget_s: float, n_models: int, l2: bool = True) -> Budget:
    """Split `budget_s` (e.g. 360) into timed windows; 80% of what the fixed costs leave is used."""
    if budget_s <= 0:
        raise InputError("--budget-s must be positive")
    fixed = (STARTUP_S + IDLE_POWER_S + (len(DIAGONAL) * NCU_RUN_S if l2 else 0.0)
             + (n_models + HW_MAX_CONCURRENT) * TRACE_LOAD_S)
    # windows, in units of point_s: grid points, co-locations (+ trace), hardware steps (+ trace)
    units = n_models * len(GRID_BATCHES) * len(GRID_SHARES) + 1.5 * n_models + 1.5 * HW_MAX_CONCURRENT
    point = min(MAX_POINT_S, max(MIN_POINT_S, 0.8 * (budget_s - fixed) / units))
    estimate = fixed + units * point
    ncu_timeout = max(NCU_RUN_S * 3, 60.0)
    return Budget(point_s=point, coloc_s=point, concurrent_s=point, ncu_timeout_s=ncu_timeout,
                  estimate_s=estimate)
