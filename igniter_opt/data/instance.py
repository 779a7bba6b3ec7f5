"""Instances: the inference workloads to provision (model, latency SLO, request rate).

JSON: {"name", "profile": "v100" | path, "batch_policy": "paper" | "joint" (optional),
"workloads": [{"name", "model", "slo_ms", "rate_rps"}]}. Validation errors name the file,
the field and the value.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from igniter_opt.data.errors import InputError

if TYPE_CHECKING:
    from igniter_opt.model import Profile

BATCH_POLICIES = ("paper", "joint")


@dataclass(frozen=True)
class Workload:
    """One inference service: a DNN with a latency SLO (ms) at a request rate (req/s)."""

    name: str
    model: str
    slo_ms: float
    rate_rps: float


@dataclass(frozen=True)
class Instance:
    """A provisioning problem: workloads plus the GPU profile they run on."""

    name: str
    profile: str
    workloads: tuple[Workload, ...]
    batch_policy: str = "paper"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "profile": self.profile, "batch_policy": self.batch_policy,
                "workloads": [asdict(w) for w in self.workloads]}

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def from_dict(cls, data: Any, origin: str = "<instance>") -> Instance:
        """Validate and build an instance; errors say `origin: field: problem (value)`."""
        if not isinstance(data, dict):
            raise InputError(f"{origin}: an instance must be a JSON object")
        name = _get(data, "name", str, origin)
        profile = _get(data, "profile", str, origin)
        policy = data.get("batch_policy", "paper")
        if policy not in BATCH_POLICIES:
            raise InputError(f"{origin}: field batch_policy: must be one of {BATCH_POLICIES}, got {policy!r}")
        items = data.get("workloads")
        if not isinstance(items, list) or not items:
            raise InputError(f"{origin}: field workloads: must be a non-empty list, got {items!r}")
        workloads = tuple(_workload(w, f"workloads[{i}]", origin) for i, w in enumerate(items))
        seen: set[str] = set()
        for i, w in enumerate(workloads):
            if w.name in seen:
                raise InputError(f"{origin}: field workloads[{i}].name: duplicate workload name {w.name!r}")
            seen.add(w.name)
        return cls(name=name, profile=profile, workloads=workloads, batch_policy=policy)


def _get(data: dict, key: str, kind: type, origin: str, where: str = "") -> Any:
    field = f"{where}.{key}" if where else key
    if key not in data:
        raise InputError(f"{origin}: field {field}: missing")
    value = data[key]
    if kind is str and (not isinstance(value, str) or not value):
        raise InputError(f"{origin}: field {field}: must be a non-empty string, got {value!r}")
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise InputError(f"{origin}: field {field}: must be a number, got {value!r}")
        if value <= 0:
            raise InputError(f"{origin}: field {field}: must be > 0, got {value!r}")
        value = float(value)
    return value


def _workload(item: Any, where: str, origin: str) -> Workload:
    if not isinstance(item, dict):
        raise InputError(f"{origin}: field {where}: must be an object, got {item!r}")
    return Workload(
        name=_get(item, "name", str, origin, where),
        model=_get(item, "model", str, origin, where),
        slo_ms=_get(item, "slo_ms", float, origin, where),
        rate_rps=_get(item, "rate_rps", float, origin, where),
    )


def read_json(path: str | Path) -> Any:
    """Read a JSON file; a missing file or malformed JSON is an InputError naming the file."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: malformed JSON at line {exc.lineno} column {exc.colno} ({exc.msg})") from None


def check_models(instance: Instance, profile: Profile, origin: str = "") -> None:
    """Every workload's model must be in the profile; the error names file, field and value."""
    for i, w in enumerate(instance.workloads):
        if w.model not in profile.models:
            known = ", ".join(sorted(profile.models))
            raise InputError(f"{origin or instance.name}: field workloads[{i}].model: {w.model!r} is not "
                             f"in profile {profile.name!r} (known: {known})")


def load_instance(path: str | Path, check_profile: bool = True) -> Instance:
    """Load and validate an instance file, its profile and its models against that profile.

    A relative profile path is taken from the instance file's folder.
    """
    from igniter_opt.model import load_profile

    inst = Instance.from_dict(read_json(path), origin=str(path))
    if inst.profile.endswith(".json") and not Path(inst.profile).is_absolute():
        candidate = Path(path).parent / inst.profile
        if candidate.is_file():
            inst = Instance(inst.name, str(candidate), inst.workloads, inst.batch_policy)
    if check_profile:
        try:
            profile = load_profile(inst.profile)
        except InputError as exc:
            raise InputError(f"{path}: field profile: {exc}") from None
        check_models(inst, profile, str(path))
    return inst
