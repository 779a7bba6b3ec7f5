"""Deploy a plan and measure it.

types (the records every part shares), session (`deploy`: one Triton server per workload on a
backend, MPS shares, endpoints.json, tear-down), repository + models (Triton model repositories),
backends/ (the launcher interface, local processes, docker, a Ray cluster), load/ (the open-loop
load generator and its workers), measure and report.
"""

from __future__ import annotations

from igniter_opt.lazy import lazy_getattr

# Public API, imported on first use (these modules pull in optional or heavy dependencies).
_EXPORTS = {
    "DeployOptions": "igniter_opt.deploy.types",
    "Deployment": "igniter_opt.deploy.types",
    "deploy": "igniter_opt.deploy.session",
    "read_endpoints": "igniter_opt.deploy.session",
    "Endpoint": "igniter_opt.deploy.types",
    "LaunchError": "igniter_opt.deploy.types",
    "Launcher": "igniter_opt.deploy.backends.launcher",
    "ServerSpec": "igniter_opt.deploy.types",
    "LoadError": "igniter_opt.deploy.load.generator",
    "LoadOptions": "igniter_opt.deploy.load.generator",
    "Target": "igniter_opt.deploy.load.generator",
    "WorkloadResult": "igniter_opt.deploy.load.generator",
    "run_load": "igniter_opt.deploy.load.generator",
    "measurement_report": "igniter_opt.deploy.report",
    "report_table": "igniter_opt.deploy.report",
    "save_report": "igniter_opt.deploy.report",
    "ModelConfig": "igniter_opt.deploy.repository",
    "write_repository": "igniter_opt.deploy.repository",
}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy_getattr(__name__, _EXPORTS)
