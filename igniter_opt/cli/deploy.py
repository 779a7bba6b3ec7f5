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
from igniter_opt.data.dnn import ALIASES, SPECS, spec_for
from igniter_opt.data.errors import InputError
from igniter_opt.data.plan import Plan, load_plan
from igniter_opt.deploy.emulation import check_time_scale, dilate, parse_inject_errors
from igniter_opt.deploy.gputypes import parse_gpu_map
from igniter_opt.deploy.inputs import load_payloads
from igniter_opt.deploy.load.generator import LoadError, LoadOptions, WorkloadResult, require_load_client
from igniter_opt.deploy.load.protocol import check_load_size
from igniter_opt.deploy.measure import measure
from igniter_opt.deploy.monitor import MONITOR_FILE, JsonlTail, LiveOptions
from igniter_opt.deploy.report import report_table, save_report
from igniter_opt.deploy.session import deploy, read_endpoints
from igniter_opt.deploy.types import Deployment, DeployOptions, LaunchError

RUN_DIR_HELP = "Run directory: repositories, logs, MPS pipes and endpoints.json (how `measure` finds servers)."
BackendOpt = typer.Option(Backend.local, "--backend", help="local (tritonserver processes) | docker (NGC containers) | "
                                                          "ray (a Ray cluster: pip install 'igniter-opt\\[cluster]').")
AddressOpt = typer.Option(None, "--address", help="ray: the cluster's address HOST:PORT (else $RAY_ADDRESS, else a "
                                                  "local cluster is started and stopped).")
CpusOpt = typer.Option(0.5, "--cpus-per-server", help="ray: CPUs reserved per server in its GPU's bundle.")
RunDirOpt = typer.Option(Path("igniter-run"), "--run-dir", help=RUN_DIR_HELP)
NoMpsOpt = typer.Option(False, "--no-mps", help="Do not start MPS: shares are then NOT enforced.")
TritonOpt = typer.Option(None, "--tritonserver",
                         help="local: tritonserver binary (else $PATH, else nvidia-pytriton's).")
ImageOpt = typer.Option(None, "--image",
                        help="docker: image (default nvcr.io/nvidia/tritonserver:24.08-pyt-python-py3).")
DeviceOpt = typer.Option(Device.auto, "--device", help="auto (GPU when NVML sees one) | cpu | gpu | emulate "
                                                      "(EMULATED GPU: stand-ins sleep the model's predicted latency).")
InjectOpt = typer.Option([], "--inject-error", help="emulate: NAME=FACTOR multiplies workload NAME's emulated service "
                                                    "time (a staged prediction error); repeatable.")
ScaleOpt = typer.Option(1.0, "--time-scale", help="emulate: run the plan F times slower (rates / F, SLOs and service "
                                                  "times x F) so that a small CPU carries it.")
GpuMapOpt = typer.Option(None, "--gpu-map", metavar="TYPE=I,J",
                         help="local, mixed fleet: this host's device indices of GPU type TYPE (repeatable).")
Fp16Opt = typer.Option(False, "--fp16", help="GPU: run the torchvision models in fp16.")
DurationOpt = typer.Option(10.0, "--duration", help="Measured window, seconds.", callback=positive)
WarmupOpt = typer.Option(2.0, "--warmup", help="Warm-up before the window, seconds (not measured).",
                         callback=non_negative)
DistOpt = typer.Option(Distribution["constant"], "--distribution", help="Arrival process.")
OutOpt = typer.Option(None, "-o", "--output", help="Write the report JSON here.", callback=output_file)
JsonOpt = typer.Option(False, "--json", help="Print the report JSON to stdout instead of a table.")
ShadowOpt = typer.Option(False, "--shadow", help="A warm shadow server per workload at a larger share; a workload "
                                                 "whose windowed p99 breaks its SLO is switched to it.")
ShadowMarginOpt = typer.Option(50.0, "--shadow-margin", help="Shadow rule: the least share predicted within "
                                                              "(1 - m/100) SLO/2, m in [0, 100).")
ShadowWindowsOpt = typer.Option(2, "--shadow-windows",
                                help="Switch after this many consecutive windows with p99 > SLO.")
InputDataOpt = typer.Option(None, "--input-data", help="A folder made by `igniter inputs`: its tensors are sent "
                                                       "round-robin to the workloads of that input shape "
                                                       "(default: one constant tensor).")
WindowOpt = typer.Option(1.0, "--window", help="Live monitoring: sliding window length, seconds.", callback=positive)
StepOpt = typer.Option(0.5, "--step", help="Live monitoring: a window ends every S seconds (RUN_DIR/monitor.jsonl, "
                                           "what `igniter top` shows).", callback=positive)


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
             errors: dict[str, float] | None = None, time_scale: float = 1.0, shadow: bool = False,
             shadow_margin: float = 50.0, shadow_windows: int = 2,
             gpu_map: list[str] | None = None) -> DeployOptions:
    if address and backend != Backend.ray:
        raise InputError(f"--address is for --backend ray (got --backend {backend.value})")
    if gpu_map and backend != Backend.local:
        raise InputError(f"--gpu-map is for --backend local (ray places types by accelerator_type; got "
                         f"--backend {backend.value})")
    return DeployOptions(backend=backend.value, run_dir=run_dir, mps=not no_mps, tritonserver=tritonserver,
                         image=image, device=device.value, fp16=fp16, address=address, cpus_per_server=cpus,
                         inject_error=errors or {}, time_scale=time_scale, shadow=shadow,
                         shadow_margin_pct=shadow_margin, shadow_windows=shadow_windows,
                         gpu_map=parse_gpu_map(gpu_map))


def _emulation(plan: Plan, device: Device, inject: list[str], time_scale: float) -> tuple[Plan, dict[str, float]]:
    """The plan to deploy (dilated by the time scale) and the injected errors, both checked."""
    if device != Device.emulate:
        if inject or time_scale != 1:
            raise InputError("--inject-error and --time-scale are for --device emulate")
        return plan, {}
    errors = parse_inject_errors(inject, plan)
    return dilate(plan, check_time_scale(time_scale)), errors


def _load_options(duration: float, warmup: float, distribution: Distribution, seed: int) -> LoadOptions:
    try:
        return LoadOptions(duration_s=duration, warmup_s=warmup, distribution=distribution.value, seed=seed)
    except ValueError as exc:
        raise InputError(str(exc)) from None


def _check_size(plan: Plan, load: LoadOptions) -> None:
    """Refuse, before anything starts, a run with more arrivals than the load generator holds."""
    try:
        check_load_size({w.name: w.rate_rps for w in plan.workloads()}, load)
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


def _payloads(plan: Plan, folder: Path | None) -> dict[tuple[int, ...], tuple[bytes, ...]] | None:
    """--input-data: the folder's tensors by input shape; a note for workloads of another shape."""
    if folder is None:
        return None
    shape, payloads = load_payloads(folder)
    others = [w.name for w in plan.workloads() if spec_for(w.model).input_dims != shape]
    err_console.print(f"input data: {len(payloads)} tensor(s) {list(shape)} from {folder}, sent round-robin"
                      + (f"; {', '.join(others)} (another input shape) keep the default tensor" if others else ""),
                      highlight=False, markup=False, soft_wrap=True)
    return {shape: payloads}


def _title(plan: Plan, report: dict) -> str:
    if report.get("emulated"):
        scale = report["emulation"]["time_scale"]
        return (f"{plan.instance}: EMULATED GPU (not a GPU measurement), time scale {scale:g}: "
                f"predicted vs measured")
    return f"{plan.instance}: predicted vs measured"


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
               inject_error: list[str] = InjectOpt, time_scale: float = ScaleOpt, shadow: bool = ShadowOpt,
               shadow_margin: float = ShadowMarginOpt, shadow_windows: int = ShadowWindowsOpt,
               gpu_map: list[str] | None = GpuMapOpt) -> None:
    """Start one Triton server per workload of the plan and keep them up until Ctrl-C."""
    loaded, errors = _emulation(_load(plan), device, inject_error, time_scale)
    io.output_dir(run_dir)
    options = _options(backend, run_dir, no_mps, tritonserver, image, device, fp16, address, cpus_per_server,
                       errors, time_scale, shadow, shadow_margin, shadow_windows, gpu_map)
    try:
        with deploy(loaded, options) as dep:
            _announce(dep)
            console.print(f"servers up; endpoints in {dep.run_dir / 'endpoints.json'}; Ctrl-C stops them")
            tail = JsonlTail(dep.run_dir / MONITOR_FILE) if dep.shadow_controller is not None else None
            try:
                while True:  # with --shadow: the windows a separate `igniter measure` writes drive the switches
                    time.sleep(0.25)
                    if tail is not None:
                        dep.shadow_controller.on_windows(tail.poll())
            except KeyboardInterrupt:
                err_console.print("stopping servers ...")
    except LaunchError as exc:
        raise InputError(str(exc)) from None
    console.print("all servers stopped")


@app.command("measure")
def measure_cmd(plan: Path = typer.Argument(..., help="Plan JSON (the one deployed)."), run_dir: Path = RunDirOpt,
                duration: float = DurationOpt, warmup: float = WarmupOpt, distribution: Distribution = DistOpt,
                seed: int = typer.Option(0, help="Seed of the Poisson arrivals."),
                output: Path | None = OutOpt, as_json: bool = JsonOpt, window: float = WindowOpt,
                step: float = StepOpt, input_data: Path | None = InputDataOpt) -> None:
    """Drive servers started by `igniter deploy --run-dir D` (found in D/endpoints.json) at the plan's rates."""
    require_load_client()
    loaded = _load(plan)
    _check_size(loaded, _load_options(duration, warmup, distribution, seed))
    endpoints = read_endpoints(run_dir)
    loaded = dilate(loaded, float((endpoints.get("emulation") or {}).get("time_scale", 1.0)))
    payloads = _payloads(loaded, input_data)
    try:
        report, results = measure(loaded, endpoints, _load_options(duration, warmup, distribution, seed),
                                  live=LiveOptions(window, step), payloads=payloads)
    except LoadError as exc:
        fail(f"{exc} (are the servers of {run_dir} still up?)")
    _finish(report, results, output, as_json, _title(loaded, report))


@app.command("run")
def run_cmd(plan: Path = typer.Argument(..., help="Plan JSON."), backend: Backend = BackendOpt,
            run_dir: Path = RunDirOpt, no_mps: bool = NoMpsOpt, duration: float = DurationOpt,
            warmup: float = WarmupOpt, distribution: Distribution = DistOpt,
            seed: int = typer.Option(0, help="Seed of the Poisson arrivals."),
            output: Path | None = OutOpt, tritonserver: str | None = TritonOpt,
            image: str | None = ImageOpt, device: Device = DeviceOpt, fp16: bool = Fp16Opt,
            as_json: bool = JsonOpt, address: str | None = AddressOpt,
            cpus_per_server: float = CpusOpt, inject_error: list[str] = InjectOpt,
            time_scale: float = ScaleOpt, window: float = WindowOpt, step: float = StepOpt,
            shadow: bool = ShadowOpt, shadow_margin: float = ShadowMarginOpt,
            shadow_windows: int = ShadowWindowsOpt, input_data: Path | None = InputDataOpt,
            gpu_map: list[str] | None = GpuMapOpt) -> None:
    """Deploy the plan, measure it, tear everything down; print predicted vs measured per workload."""
    require_load_client()
    loaded, errors = _emulation(_load(plan), device, inject_error, time_scale)
    io.output_dir(run_dir)
    load = _load_options(duration, warmup, distribution, seed)
    _check_size(loaded, load)
    payloads = _payloads(loaded, input_data)
    options = _options(backend, run_dir, no_mps, tritonserver, image, device, fp16, address, cpus_per_server,
                       errors, time_scale, shadow, shadow_margin, shadow_windows, gpu_map)
    try:
        with deploy(loaded, options) as dep:
            _announce(dep, quiet_stdout=as_json)
            ctl = dep.shadow_controller
            live = LiveOptions(window, step, listeners=[ctl.on_windows] if ctl is not None else [])
            report, results = measure(loaded, read_endpoints(dep.run_dir), load, live=live, payloads=payloads)
            if ctl is not None:
                report["corrections"] = list(ctl.corrections)
    except LaunchError as exc:
        raise InputError(str(exc)) from None
    except LoadError as exc:
        fail(str(exc))
    _finish(report, results, output, as_json, _title(loaded, report))
