"""Records and their file formats: instances, plans, profiles on disk, the DNN list, errors.

Every file is read and written through one validation layer: `io` (UTF-8, strict JSON, output
paths) and `schema` (pydantic models of each file; one-line errors naming file, field and value).

Everything else builds on these; nothing here imports the model, the solvers or anything above.
"""

from igniter_opt.data.dnn import DNNS, MODEL_NAMES, ModelSpec, spec_for
from igniter_opt.data.errors import InfeasibleError, InputError, MissingExtraError, SolveInterrupted, require
from igniter_opt.data.export import export_igniter, igniter_configs
from igniter_opt.data.instance import (
    BATCH_POLICIES,
    GpuType,
    Instance,
    Workload,
    load_instance,
    read_json,
)
from igniter_opt.data.plan import STATUSES, GpuPlan, PlacedWorkload, Plan, load_plan
from igniter_opt.data.profiles import (
    GRID_BATCHES,
    GRID_SHARES,
    RawProfile,
    bundled_profiles,
    load_raw,
    read_profile_json,
)

__all__ = [
    "DNNS", "MODEL_NAMES", "ModelSpec", "spec_for",
    "InfeasibleError", "InputError", "MissingExtraError", "SolveInterrupted", "require",
    "export_igniter", "igniter_configs",
    "BATCH_POLICIES", "GpuType", "Instance", "Workload", "load_instance", "read_json",
    "STATUSES", "GpuPlan", "PlacedWorkload", "Plan", "load_plan",
    "GRID_BATCHES", "GRID_SHARES", "RawProfile", "bundled_profiles", "load_raw", "read_profile_json",
]
