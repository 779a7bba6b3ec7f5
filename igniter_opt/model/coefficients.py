"""Coefficients of the iGniter performance model: one GPU type and the DNNs profiled on it.

A `Profile` is what `fit` produces from a raw GPU profile and what `predict`, the solvers and
`verify` consume. It round-trips through JSON (igniter_opt/profiles/*.json, read by
igniter_opt.data.profiles).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from igniter_opt.data.errors import InputError
from igniter_opt.data.io import write_json
from igniter_opt.data.profiles import GRID_RANGE, read_profile_json
from igniter_opt.data.profileschema import ProfileSpec
from igniter_opt.data.schema import parse


@dataclass(frozen=True)
class Hardware:
    """GPU-wide coefficients.

    max_frequency_mhz F, power_cap_w P_max, idle_power_w P_idle, bandwidth_bytes_per_ms B (PCIe),
    unit_pct u (smallest MPS share step), a_f (MHz per W above the cap, < 0),
    a_sch, b_sch (extra scheduling delay per kernel: a_sch * n + b_sch for n co-located workloads).
    """

    max_frequency_mhz: float
    power_cap_w: float
    idle_power_w: float
    bandwidth_bytes_per_ms: float
    unit_pct: float
    a_f: float
    a_sch: float
    b_sch: float


@dataclass(frozen=True)
class ModelCoefficients:
    """Per-DNN coefficients.

    kernels n_k, t_idle_ms (solo idle time per inference), input/output bytes per request,
    k = (k1..k5) of the solo active time (k1 b^2 + k2 b + k3) / (r + k4) + k5,
    power = (a_p, b_p) and l2 = (a_c, b_c) lines against solo throughput, k_l2 L2 sensitivity.
    """

    name: str
    kernels: int
    t_idle_ms: float
    input_bytes: float
    output_bytes: float
    k: tuple[float, float, float, float, float]
    power: tuple[float, float]
    l2: tuple[float, float]
    k_l2: float


@dataclass(frozen=True)
class Profile:
    """A fitted GPU profile: hardware coefficients plus one entry per DNN."""

    name: str
    gpu: str
    hardware: Hardware
    models: dict[str, ModelCoefficients]
    source: str = ""
    notes: list[str] = field(default_factory=list)
    # The grid the coefficients were fitted on: batches and shares (%) as [smallest, largest].
    # Batches beyond it are extrapolation the model refuses (see docs/decisions.md).
    fitted_range: dict[str, tuple[float, float]] = field(default_factory=lambda: dict(GRID_RANGE))

    @property
    def max_batch(self) -> int:
        """The largest batch the profile measured: the batch rule never goes above it."""
        return int(self.fitted_range["batch"][1])

    def model(self, name: str) -> ModelCoefficients:
        """Coefficients of one DNN; a clear error when the profile does not know it."""
        try:
            return self.models[name]
        except KeyError:
            known = ", ".join(sorted(self.models))
            raise InputError(f"model {name!r} is not in profile {self.name!r} (known: {known})") from None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "gpu": self.gpu,
            "source": self.source,
            "notes": list(self.notes),
            "hardware": asdict(self.hardware),
            "models": {k: _model_to_dict(m) for k, m in self.models.items()},
            "fitted_range": {k: list(v) for k, v in self.fitted_range.items()},
        }

    @classmethod
    def from_dict(cls, data: Any, origin: str = "<profile>") -> Profile:
        """Validate (data/schema.py: ProfileSpec) and build; a profile without fitted_range was
        fitted on the standard grid."""
        spec = parse(ProfileSpec, data, origin, what="a profile")
        fitted = spec.fitted_range.model_dump() if spec.fitted_range else GRID_RANGE
        return cls(
            name=spec.name, gpu=spec.gpu, source=spec.source, notes=list(spec.notes),
            hardware=Hardware(**spec.hardware.model_dump()),
            models={k: _model_from_dict(k, v.model_dump()) for k, v in spec.models.items()},
            fitted_range={k: (v[0], v[1]) for k, v in fitted.items()},
        )

    def save(self, path: str | Path) -> None:
        write_json(path, self.to_dict())


def _model_to_dict(m: ModelCoefficients) -> dict[str, Any]:
    d = asdict(m)
    d.pop("name")
    d["k"] = list(m.k)
    d["power"] = list(m.power)
    d["l2"] = list(m.l2)
    return d


def _model_from_dict(name: str, d: dict[str, Any]) -> ModelCoefficients:
    return ModelCoefficients(
        name=name,
        kernels=int(d["kernels"]),
        t_idle_ms=float(d["t_idle_ms"]),
        input_bytes=float(d["input_bytes"]),
        output_bytes=float(d["output_bytes"]),
        k=tuple(float(x) for x in d["k"]),  # type: ignore[arg-type]
        power=tuple(float(x) for x in d["power"]),  # type: ignore[arg-type]
        l2=tuple(float(x) for x in d["l2"]),  # type: ignore[arg-type]
        k_l2=float(d["k_l2"]),
    )


def load_profile(name_or_path: str | Path) -> Profile:
    """Load a bundled profile by name (``v100``) or a fitted profile JSON by path."""
    data, path = read_profile_json(name_or_path)
    return Profile.from_dict(data, origin=str(path))
