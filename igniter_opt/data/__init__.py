"""Records and their file formats: instances, plans, profiles on disk, the DNN list, errors.

Everything else builds on these; nothing here imports the model or the solvers at import time.
"""

from igniter_opt.data.dnn import DNNS, MODEL_NAMES, ModelSpec, spec_for
from igniter_opt.data.errors import InfeasibleError, InputError, SolveInterrupted
from igniter_opt.data.export import export_igniter, igniter_configs
from igniter_opt.data.instance import BATCH_POLICIES, Instance, Workload, check_models, load_instance, read_json
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
    "InfeasibleError", "InputError", "SolveInterrupted",
    "export_igniter", "igniter_configs",
    "BATCH_POLICIES", "Instance", "Workload", "check_models", "load_instance", "read_json",
    "STATUSES", "GpuPlan", "PlacedWorkload", "Plan", "load_plan",
    "GRID_BATCHES", "GRID_SHARES", "RawProfile", "bundled_profiles", "load_raw", "read_profile_json",
]
