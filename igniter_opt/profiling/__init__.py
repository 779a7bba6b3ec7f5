"""Measure a raw GPU profile (NVML, MPS, CUDA-event timing, ncu L2 counters) and validate a fitted
profile against measured co-locations."""

from __future__ import annotations

from igniter_opt.lazy import lazy_getattr

# Public API, imported on first use (these modules pull in optional or heavy dependencies).
_EXPORTS = {
    "RunOptions": "igniter_opt.profiling.run",
    "check_environment": "igniter_opt.profiling.run",
    "profile_run": "igniter_opt.profiling.run",
    "Colocated": "igniter_opt.profiling.validate",
    "ValidationResult": "igniter_opt.profiling.validate",
    "run_validation": "igniter_opt.profiling.validate",
    "sample_colocations": "igniter_opt.profiling.validate",
    "parse_models": "igniter_opt.profiling.grid",
    "plan_budget": "igniter_opt.profiling.grid",
}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy_getattr(__name__, _EXPORTS)
