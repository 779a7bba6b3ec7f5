"""The CLI's fixed choices as Enums, so typer checks them and lists them in --help.

Each value is exactly what the library takes; commands pass `.value` on. The solver choice is
built from the solver registry, so a newly registered solver is a choice without editing the CLI.
"""

from __future__ import annotations

from enum import Enum

from igniter_opt.bench.families import FAMILIES
from igniter_opt.data.instance import BATCH_POLICIES
from igniter_opt.deploy.load.protocol import DISTRIBUTIONS
from igniter_opt.solvers.registry import solver_names

SolverName = Enum("SolverName", {name: name for name in solver_names()}, type=str)  # type: ignore[misc]
BatchPolicy = Enum("BatchPolicy", {name: name for name in BATCH_POLICIES}, type=str)  # type: ignore[misc]
Distribution = Enum("Distribution", {name: name for name in DISTRIBUTIONS}, type=str)  # type: ignore[misc]
Family = Enum("Family", {name: name for name in FAMILIES}, type=str)  # type: ignore[misc]


class Backend(str, Enum):
    """Where deploy starts Triton servers."""

    local = "local"
    docker = "docker"
    ray = "ray"


class Device(str, Enum):
    """What the served models run on (auto: the GPU when NVML sees one; emulate: the emulated GPU)."""

    auto = "auto"
    cpu = "cpu"
    gpu = "gpu"
    emulate = "emulate"


class Dtype(str, Enum):
    """Compute dtype of profiling and validation."""

    float32 = "float32"
    float16 = "float16"
    bfloat16 = "bfloat16"


class L2Source(str, Enum):
    """Where profiling takes L2 demand from."""

    ncu = "ncu"
    none = "none"


def value(choice: Enum | None) -> str | None:
    """The library value of a choice (None stays None)."""
    return None if choice is None else str(choice.value)
