"""Export a plan as the reference iGniter's per-GPU config files (config_gpuN.json).

The reference's launcher reads {"models", "rates", "slos", "resources", "batches"} per GPU, with
model names suffixed "_dynamic" (its Triton model folders) and SLOs already halved. Unlike the
published code, which writes each workload's index into "batches", the batch sizes are written.
"""

from __future__ import annotations

from pathlib import Path

from igniter_opt.data.io import dumps, output_dir, write_text
from igniter_opt.data.plan import Plan


def igniter_configs(plan: Plan) -> list[dict]:
    """One reference config per GPU of the plan, in GPU order."""
    return [{
        "models": [f"{w.model}_dynamic" for w in gpu.workloads],
        "rates": [w.rate_rps for w in gpu.workloads],
        "slos": [w.slo_ms / 2 for w in gpu.workloads],
        "resources": [w.resource_pct for w in gpu.workloads],
        "batches": [w.batch for w in gpu.workloads],
    } for gpu in plan.gpus]


def export_igniter(plan: Plan, directory: str | Path) -> list[Path]:
    """Write config_gpu1.json ... into directory; returns the paths written."""
    directory = output_dir(directory)
    return [write_text(directory / f"config_gpu{n}.json", dumps(config, indent=None) + "\n")
            for n, config in enumerate(igniter_configs(plan), 1)]
