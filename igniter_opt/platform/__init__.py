"""What the host offers, used by deploy, profiling and bench: GPUs (NVML), MPS shares, child
processes and signals, and the connection to a Ray cluster.

Nothing here knows about plans or the model; optional dependencies (pynvml, ray) are imported on
first use.
"""

from __future__ import annotations

from igniter_opt.lazy import lazy_getattr

# Public API, imported on first use (pynvml and ray are optional extras).
_EXPORTS = {
    "MpsDaemon": "igniter_opt.platform.mps",
    "mps_available": "igniter_opt.platform.mps",
    "share_value": "igniter_opt.platform.mps",
    "GpuSampler": "igniter_opt.platform.nvml",
    "gpu_count": "igniter_opt.platform.nvml",
    "gpu_info": "igniter_opt.platform.nvml",
    "nvml_available": "igniter_opt.platform.nvml",
    "kill_and_reap": "igniter_opt.platform.processes",
    "sigterm_as_interrupt": "igniter_opt.platform.processes",
    "import_ray": "igniter_opt.platform.raycluster",
    "probe": "igniter_opt.platform.raycluster",
    "ray_connection": "igniter_opt.platform.raycluster",
}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy_getattr(__name__, _EXPORTS)
