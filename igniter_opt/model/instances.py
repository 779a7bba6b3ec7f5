"""An instance checked against its GPU profile: every workload's model must have coefficients.

This is the model's check, not the file format's: `data.instance.load_instance` reads and
validates the file; `load_checked_instance` also loads its profile and checks the models, with
errors naming the file, the field and the value.
"""

from __future__ import annotations

from pathlib import Path

from igniter_opt.data.errors import InputError
from igniter_opt.data.instance import Instance, load_instance
from igniter_opt.model.coefficients import Profile, load_profile


def check_models(instance: Instance, profile: Profile, origin: str = "") -> None:
    """Every workload's model must be in the profile; the error names file, field and value."""
    for i, w in enumerate(instance.workloads):
        if w.model not in profile.models:
            known = ", ".join(sorted(profile.models))
            raise InputError(f"{origin or instance.name}: field workloads[{i}].model: {w.model!r} is not "
                             f"in profile {profile.name!r} (known: {known})")


def load_checked_instance(path: str | Path) -> Instance:
    """Load and validate an instance file, its profile and its models against that profile (a
    fleet: every type's profile must load and know every model the workloads use)."""
    inst = load_instance(path)
    if inst.fleet is not None:
        for k, t in enumerate(inst.fleet):
            try:
                profile = load_profile(t.profile)
            except InputError as exc:
                raise InputError(f"{path}: field fleet[{k}].profile: {exc}") from None
            for i, w in enumerate(inst.workloads):
                if w.model not in profile.models:
                    raise InputError(f"{path}: field fleet[{k}].profile: profile {profile.name!r} of type "
                                     f"{t.name!r} has no model {w.model!r} (used by workloads[{i}])")
        return inst
    try:
        profile = load_profile(inst.profile)
    except InputError as exc:
        raise InputError(f"{path}: field profile: {exc}") from None
    check_models(inst, profile, str(path))
    return inst
