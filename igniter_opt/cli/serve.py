"""CLI: `igniter serve`, the provisioning controller (igniter_opt/controller; docs/service.md)."""

from __future__ import annotations

import os
from enum import Enum
from pathlib import Path

import typer

from igniter_opt.cli.app import app, at_least, non_negative, positive
from igniter_opt.cli.choices import BatchPolicy, Device
from igniter_opt.data.errors import InputError, require
from igniter_opt.solvers.margin import check_margin


class Policy(str, Enum):
    """Placement policy of the service."""

    igniter = "igniter"
    exact = "exact"


class ServeBackend(str, Enum):
    """Where the service starts servers (none: placement and state only)."""

    local = "local"
    ray = "ray"
    none = "none"


@app.command("serve")
def serve_cmd(gpus: int | None = typer.Option(None, "--gpus", help="GPUs of the fleet (plan GPU slots 0..N-1); "
                                                                  "required unless --fleet.", callback=at_least(1)),
              profile: str = typer.Option("v100", "--profile", help="GPU profile (bundled name or JSON path)."),
              fleet: Path | None = typer.Option(None, "--fleet", help="A mixed fleet instead of --gpus/--profile: a "
                                                "JSON list of {type, profile, count, price_per_hour} (policy igniter; "
                                                "with --backend ray each slot asks for accelerator_type:<type>; "
                                                "docs/fleets.md)."),
              policy: Policy = typer.Option(Policy.igniter, "--policy",
                                            help="igniter (the reference greedy per arrival) | exact (re-plan "
                                                 "all: fewest GPUs, then fewest changed workloads)."),
              backend: ServeBackend = typer.Option(ServeBackend.local, "--backend",
                                                   help="local (tritonserver processes) | ray (detached actors "
                                                        "on a running cluster) | none (dry run)."),
              state_dir: Path = typer.Option(Path("igniter-state"), "--state-dir",
                                             help="SQLite state, server repositories and logs; the same DIR "
                                                  "re-adopts running servers after a restart."),
              host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (beyond loopback a token "
                                                                   "is required)."),
              port: int = typer.Option(8080, "--port", help="TCP port.", callback=at_least(1)),
              token_file: Path | None = typer.Option(None, "--token-file",
                                                     help="Bearer token file (else $IGNITER_TOKEN)."),
              max_changes: int | None = typer.Option(None, "--max-changes", callback=at_least(0),
                                                     help="exact: at most K running workloads changed per "
                                                          "re-plan (409 otherwise)."),
              time_limit: float = typer.Option(10.0, "--time-limit", callback=positive,
                                               help="exact: seconds per re-plan stage."),
              margin: float = typer.Option(0.0, "--margin", help="Robustness margin % (0 <= PCT < 100)."),
              batch_policy: BatchPolicy = typer.Option(BatchPolicy["paper"], "--batch-policy",
                                                       help="exact: paper or joint batches."),
              grace: float = typer.Option(5.0, "--grace", callback=non_negative,
                                          help="Seconds a replaced server keeps serving after its endpoint "
                                               "switched."),
              teardown: bool = typer.Option(False, "--teardown",
                                            help="On SIGTERM/Ctrl-C stop every server too (else they keep "
                                                 "serving for the next controller)."),
              tritonserver: str | None = typer.Option(None, "--tritonserver",
                                                      help="tritonserver binary (else $PATH, else nvidia-pytriton's)."),
              device: Device = typer.Option(Device.auto, "--device", help="auto | cpu | gpu | emulate (local "
                                            "stand-ins sleeping the model's predicted latency for the current "
                                            "plan: an emulation, not GPU figures)."),
              inject_error: list[str] = typer.Option([], "--inject-error",
                                                     help="emulate: NAME=FACTOR multiplies workload NAME's "
                                                          "emulated service time (a wrong prediction)."),
              shadow: bool = typer.Option(False, "--shadow",
                                          help="A warm shadow server per workload at a larger share; K violating "
                                               "client windows switch the workload to it (docs/service.md)."),
              shadow_windows: int = typer.Option(2, "--shadow-windows", callback=at_least(1),
                                                 help="--shadow: consecutive windows with p99 > SLO that switch."),
              time_scale: float = typer.Option(1.0, "--time-scale",
                                               help="emulate: servers run F times slower than the plan "
                                                    "(clients offer rate / F; latency / F compares)."),
              address: str | None = typer.Option(None, "--address", help="ray: the cluster HOST:PORT (else "
                                                                         "$RAY_ADDRESS).")) -> None:
    """Run the provisioning controller: an HTTP JSON API that admits, changes and removes workloads."""
    for module in ("fastapi", "uvicorn", "prometheus_client"):
        require(module, "service", "igniter serve")
    from igniter_opt.controller.core import Config  # fastapi and uvicorn only when serving
    from igniter_opt.controller.server import ServeOptions, serve
    from igniter_opt.deploy.emulation import check_time_scale, parse_inject_errors
    from igniter_opt.deploy.types import LaunchError

    check_margin(margin, "--margin")
    if fleet is None and gpus is None:
        raise InputError("--gpus: missing (give --gpus N, or --fleet FILE)")
    if fleet is not None:
        if gpus is not None:
            raise InputError(f"--gpus {gpus}: not with --fleet (the fleet's counts are its GPUs)")
        if policy is not Policy.igniter:
            raise InputError(f"--policy {policy.value}: --fleet takes policy igniter only")
        if device is Device.emulate or shadow:
            raise InputError("--fleet: not with --device emulate or --shadow yet (they predict with one profile)")
        from igniter_opt.controller.fleetplace import load_service_fleet

        gpus = load_service_fleet(fleet).gpus  # validated here: a bad fleet is one line before anything starts
    assert gpus is not None
    errors = parse_inject_errors(inject_error, None)
    check_time_scale(time_scale)
    config = Config(state_dir=state_dir.resolve(), gpus=gpus, profile=profile, policy=policy.value,
                    margin_pct=margin, batch_policy=str(batch_policy.value), max_changes=max_changes,
                    time_limit_s=time_limit, grace_s=grace, shadow=shadow, shadow_windows=shadow_windows,
                    fleet=None if fleet is None else str(fleet.resolve()))
    if state_dir.exists() and not state_dir.is_dir():
        raise InputError(f"--state-dir {state_dir}: not a directory")
    os.makedirs(state_dir, exist_ok=True)
    options = ServeOptions(host=host, port=port, backend=backend.value, token_file=token_file,
                           tritonserver=tritonserver, device=device.value, teardown=teardown, address=address,
                           inject_error=errors, time_scale=time_scale)
    try:
        serve(config, options)
    except LaunchError as exc:
        raise InputError(str(exc)) from None
