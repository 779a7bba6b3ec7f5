"""CLI: deploy a plan on Triton servers, measure it, or both (`run`)."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from igniter_opt.cli.app import (
    EXIT_CHECK_FAILED,
    app,
    console,
    emit_json,
    err_console,
    fail,
    non_negative,
    output_file,
    positive,
)
from igniter_opt.cli.choices import Backend, Device, Distribution
from igniter_opt.data import io
from igniter_opt.data.dnn import ALIASES, SPECS
from igniter_opt.data.errors import InputError
from igniter_opt.data.plan import Plan, load_plan
from igniter_opt.deploy.gputypes import parse_gpu_map
from igniter_opt.deploy.load.generator import LoadError, LoadOptions, WorkloadResult, require_load_client
from igniter_opt.deploy.measure import measure
from igniter_opt.deploy.report import report_table, save_report
from igniter_opt.deploy.session import deploy, read_endpoints
from igniter_opt.deploy.types import Deployment, DeployOptions, LaunchError

RUN_DIR_HELP = "Run directory: repositories, logs, MPS pipes and endpoints.json (how `measure` finds servers)."
BackendOpt = typer.Option(Backend.local, "--backend", help="local (tritonserver processes) | docker (NGC containers) | "
                                                          "ray (a Ray cluster: pip install 'igniter-opt[cluster]').")
AddressOpt = typer.Option(None, "--address", help="ray: the cluster's address HOST:PORT (else $RAY_ADDRESS, else a "
                                                  "local cluster is started and stopped).")
CpusOpt = typer.Option(0.5, "--cpus-per-server", help="ray: CPUs reserved per server in its GPU's bundle.")
RunDirOpt = typer.Option(Path("igniter-run"), "--run-dir", help=RUN_DIR_HELP)
NoMpsOpt = typer.Option(False, "--no-mps", help="Do not start MPS: shares are then NOT enforced.")
TritonOpt = typer.Option(None, "--tritonserver",
                         help="local: tritonserver binary (else $PATH, else nvidia-pytriton's).")
ImageOpt = typer.Option(None, "--image",
                        help="docker: image (default nvcr.io/nvidia/tritonserver:24.08-pyt-python-py3).")
DeviceOpt = typer.Option(Device.auto, "--device", help="auto (GPU when NVML sees one) | cpu | gpu.")
GpuMapOpt = typer.Option(None, "--gpu-map", metavar="TYPE=I,J",
                         help="local, mixed fleet: this host's device indices of GPU type TYPE (repeatable).")
Fp16Opt = typer.Option(False, "--fp16", help="GPU: run the torchvision models in fp16.")
DurationOpt = typer.Option(10.0, "--duration", help="Measured window, seconds.", callback=positive)
WarmupOpt = typer.Option(2.0, "--warmup", help="Warm-up before the window, seconds (not measured).",
                         callback=non_negative)
DistOpt = typer.Option(Distribution["constant"], "--distribution", help="Arrival process.")
OutOpt = typer.Option(None, "-o", "--output", help="Write the report JSON here.", callback=output_file)
JsonOpt = typer.Option(False, "--json", help="Print the report JSON to stdout instead of a table.")


def check_deployable(plan: Plan, origin: str) -> None:
    """Every workload of the plan must have a servable model (InputError naming the field)."""
    for j, gpu in enumerate(plan.gpus):
        for i, w in enumerate(gpu.workloads):
            if ALIASES.get(w.model, w.model) not in SPECS:
                raise InputError(f"{origin}: field gpus[{j}].workloads[{i}].model: no deployable model "
                                 f"{w.model!r} (known: {', '.join(sorted(SPECS) + sorted(ALIASES))})")


def _load(path: Path) -> Plan:
    """The plan file, validated, with deployable models and fresh predictions."""
    plan = load_plan(path)
    check_deployable(plan, str(path))
    return _with_predictions(plan)


def _with_predictions(plan: Plan) -> Plan:
    """Verify the plan under its own profile: fresh predictions, and a loud warning when the model
    predicts it breaks an SLO (a plan is never deployed as if it were fine when it is not)."""
    from igniter_opt.model import load_profile
    from igniter_opt.solvers.fleet import plan_fleet
    from igniter_opt.solvers.verify import verify

    try:
        checked, problems = verify(plan, plan_fleet(plan) or load_profile(plan.profile))
    except InputError as exc:
        err_console.print(f"[yellow]warning:[/yellow] no predictions for this plan ({escape(str(exc))})",
                          highlight=False, soft_wrap=True, markup=True)
        return plan
    if problems:
        err_console.print(f"[red]warning: the model predicts this plan breaks its SLOs:[/red] "
                          f"{escape('; '.join(problems))}", highlight=False, soft_wrap=True, markup=True)
    return checked


def _options(backend: Backend, run_dir: Path, no_mps: bool, tritonserver: str | None, image: str | None,
             device: Device, fp16: bool, address: str | None = None, cpus: float = 0.5,
             gpu_map: list[str] | None = None) -> DeployOptions:
    if address and backend != Backend.ray:
        raise InputError(f"--address is for --backend ray (got --backend {backend.value})")
    if gpu_map and backend != Backend.local:
        raise InputError(f"--gpu-map is for --backend local (ray places types by accelerator_type; got "
                         f"--backend {backend.value})")
    return DeployOptions(backend=backend.value, run_dir=run_dir, mps=not no_mps, tritonserver=tritonserver,
                         image=image, device=device.value, fp16=fp16, address=address, cpus_per_server=cpus,
                         gpu_map=parse_gpu_map(gpu_map))


def _load_options(duration: float, warmup: float, distribution: Distribution, seed: int) -> LoadOptions:
    try:
        return LoadOptions(duration_s=duration, warmup_s=warmup, distribution=distribution.value, seed=seed)
    except ValueError as exc:
        raise InputError(str(exc)) from None


def _announce(dep: Deployment, quiet_stdout: bool = False) -> None:
    for note in dep.notes:
        err_console.print(note, highlight=False, soft_wrap=True)
    for w in dep.warnings:
        err_console.print(f"[bold red]WARNING:[/bold red] [bold]{escape(w)}[/bold]", highlight=False, soft_wrap=True,
                          markup=True)
    table = Table(title=f"{dep.plan.instance}: {len(dep.endpoints)} server(s), backend {dep.backend}, "
                        f"{'GPU' if dep.gpu else 'CPU'}, MPS {'on' if dep.mps else 'off'}")
    ray = dep.backend == "ray"
    for col in ("workload", "model name", "gRPC", "HTTP", "plan GPU" if ray else "GPU", "share %",
                *(("node", "CUDA_VISIBLE_DEVICES") if ray else ()), "pid/container"):
        table.add_column(col)
    for e in dep.endpoints:
        node = (getattr(e, "node_id", "")[:8], str(getattr(e, "cuda_visible_devices", None))) if ray else ()
        table.add_row(e.name, e.model_name, e.grpc_url, e.http_url, "-" if e.gpu is None else str(e.gpu),
                      f"{e.share_pct:g}", *node, e.handle[:12])
    (err_console if quiet_stdout else console).print(table)


def _finish(report: dict, results: list[WorkloadResult], output: Path | None, as_json: bool, title: str) -> None:
    if output is not None:
        save_report(report, output)
    if as_json:
        emit_json(report)
    else:
        console.print(report_table(report, results, title))
        if output is not None:
            console.print(f"report written to {output}")
    bad = [r.name for r in results if r.errors or r.measured_throughput_rps < 0.9 * r.offered_rps]
    if bad:
        err_console.print(f"[red]failed:[/red] errors, or under 90% of the arrivals offered in the window, "
                          f"for {escape(', '.join(bad))}", highlight=False, markup=True)
        for r in results:
            for message in r.error_samples:
                err_console.print(f"  {r.name}: {message}", highlight=False, markup=False, soft_wrap=True)
        raise typer.Exit(EXIT_CHECK_FAILED)


@app.command("deploy")
def deploy_cmd(plan: Path = typer.Argument(..., help="Plan JSON."), backend: Backend = BackendOpt,
               run_dir: Path = RunDirOpt, no_mps: bool = NoMpsOpt, tritonserver: str | None = TritonOpt,
               image: str | None = ImageOpt, device: Device = DeviceOpt, fp16: bool = Fp16Opt,
               address: str | None = AddressOpt, cpus_per_server: float = CpusOpt,
               gpu_map: list[str] | None = GpuMapOpt) -> None:
    """Start one Triton server per workload of the plan and keep them up until Ctrl-C."""
    loaded = _load(plan)
    io.output_dir(run_dir)
    options = _options(backend, run_dir, no_mps, tritonserver, image, device, fp16, address, cpus_per_server,
                       gpu_map)
    try:
        with deploy(loaded, options) as dep:
            _announce(dep)
            console.print(f"servers up; endpoints in {dep.run_dir / 'endpoints.json'}; Ctrl-C stops them")
            try:
                while True:
                    time.sleep(1.0)
            except KeyboardInterrupt:
                err_console.print("stopping servers ...")
    except LaunchError as exc:
        raise InputError(str(exc)) from None
    console.print("all servers stopped")


@app.command("measure")
def measure_cmd(plan: Path = typer.Argument(..., help="Plan JSON (the one deployed)."), run_dir: Path = RunDirOpt,
                duration: float = DurationOpt, warmup: float = WarmupOpt, distribution: Distribution = DistOpt,
                seed: int = typer.Option(0, help="Seed of the Poisson arrivals."),
                output: Path | None = OutOpt, as_json: bool = JsonOpt) -> None:
    """Drive servers started by `igniter deploy --run-dir D` (found in D/endpoints.json) at the plan's rates."""
    require_load_client()
    loaded = _load(plan)
    endpoints = read_endpoints(run_dir)
    try:
        report, results = measure(loaded, endpoints, _load_options(duration, warmup, distribution, seed))
    except LoadError as exc:
        fail(f"{exc} (are the servers of {run_dir} still up?)")
    _finish(report, results, output, as_json, f"{loaded.instance}: predicted vs measured")


@app.command("run")
def run_cmd(plan: Path = typer.Argument(..., help="Plan JSON."), backend: Backend = BackendOpt,
            run_dir: Path = RunDirOpt, no_mps: bool = NoMpsOpt, duration: float = DurationOpt,
            warmup: float = WarmupOpt, distribution: Distribution = DistOpt,
            seed: int = typer.Option(0, help="Seed of the Poisson arrivals."),
            output: Path | None = OutOpt, tritonserver: str | None = TritonOpt,
            image: str | None = ImageOpt, device: Device = DeviceOpt, fp16: bool = Fp16Opt,
            as_json: bool = JsonOpt, address: str | None = AddressOpt,
            cpus_per_server: float = CpusOpt, gpu_map: list[str] | None = GpuMapOpt) -> None:
    """Deploy the plan, measure it, tear everything down; print predicted vs measured per workload."""
    require_load_client()
    loaded = _load(plan)
    io.output_dir(run_dir)
    load = _load_options(duration, warmup, distribution, seed)
    options = _options(backend, run_dir, no_mps, tritonserver, image, device, fp16, address, cpus_per_server,
                       gpu_map)
    try:
        with deploy(loaded, options) as dep:
            _announce(dep, quiet_stdout=as_json)
            report, results = measure(loaded, read_endpoints(dep.run_dir), load)
    except LaunchError as exc:
        raise InputError(str(exc)) from None
    except LoadError as exc:
        fail(str(exc))
    _finish(report, results, output, as_json, f"{loaded.instance}: predicted vs measured")
