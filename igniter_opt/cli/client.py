"""CLI: `igniter client add|set|rm|ls|plan|endpoint|measure` against a running `igniter serve`.

Standard library HTTP only. The service unreachable: one line, exit 1; a 4xx answer: its field and
reason in one line, exit 2; 5xx: exit 1.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from igniter_opt.cli.app import (
    EXIT_BAD_INPUT,
    EXIT_CHECK_FAILED,
    OneLineErrors,
    app,
    console,
    emit_json,
    fail,
    non_negative,
    output_file,
    positive,
)
from igniter_opt.cli.choices import Distribution

client_app = typer.Typer(cls=OneLineErrors, help="Talk to a running `igniter serve`.", no_args_is_help=True)
app.add_typer(client_app, name="client")

UrlOpt = typer.Option("http://127.0.0.1:8080", "--url", help="The service's base URL.")
TokenOpt = typer.Option(None, "--token-file", help="Bearer token file (else $IGNITER_TOKEN).")
JsonOpt = typer.Option(False, "--json", help="Print the JSON answer.")


def request(url: str, method: str, path: str, body: Any = None, token_file: Path | None = None,
            timeout_s: float = 120.0) -> Any:
    """One API call; the decoded JSON answer, or a one-line failure (exit 2 on 4xx, 1 otherwise)."""
    token = None
    if token_file is not None:
        try:
            token = token_file.read_text().strip()
        except OSError as exc:
            fail(f"--token-file {token_file}: cannot read it ({exc.strerror})", EXIT_BAD_INPUT)
    elif os.environ.get("IGNITER_TOKEN"):
        token = os.environ["IGNITER_TOKEN"].strip()
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url.rstrip("/") + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            return json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        try:
            answer = json.loads(exc.read())
            message = f"{answer.get('field')}: {answer.get('reason')}"
        except (ValueError, AttributeError):
            message = exc.reason
        fail(f"{method} {path}: {exc.code}: {message}", EXIT_BAD_INPUT if 400 <= exc.code < 500 else EXIT_CHECK_FAILED)
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        fail(f"cannot reach the igniter service at {url} ({reason})", EXIT_CHECK_FAILED)
    return None


def _table(workloads: list[dict[str, Any]]) -> Table:
    table = Table()
    for col in ("workload", "model", "SLO ms", "rate req/s", "GPU", "share %", "batch", "pred. ms", "gRPC",
                "version"):
        table.add_column(col)
    for w in workloads:
        e = w.get("endpoint") or {}
        pred = w.get("predicted_latency_ms")
        table.add_row(w["name"], w["model"], f"{w['slo_ms']:g}", f"{w['rate_rps']:g}", str(w["gpu"]),
                      f"{w['share_pct']:g}", str(w["batch"]), "-" if pred is None else f"{pred:.2f}",
                      str(e.get("grpc_url") or "-"), str(e.get("version", "-")))
    return table


@client_app.command("add")
def add_cmd(name: str = typer.Argument(..., help="Workload name ([A-Za-z0-9][A-Za-z0-9_-]{0,63})."),
            model: str = typer.Option(..., "--model"), slo: float = typer.Option(..., "--slo", help="SLO, ms."),
            rate: float = typer.Option(..., "--rate", help="Requests/s."),
            margin: float | None = typer.Option(None, "--margin", help="Robustness margin % (default: the "
                                                                       "service's --margin)."),
            url: str = UrlOpt, token_file: Path | None = TokenOpt, as_json: bool = JsonOpt) -> None:
    """Admit a workload; prints its GPU, share, batch, predicted latency and endpoint."""
    body: dict[str, Any] = {"name": name, "model": model, "slo_ms": slo, "rate_rps": rate}
    if margin is not None:
        body["margin_pct"] = margin
    answer = request(url, "POST", "/v1/workloads", body, token_file)
    emit_json(answer) if as_json else console.print(_table(answer["workloads"]))


@client_app.command("set")
def set_cmd(name: str = typer.Argument(...), rate: float | None = typer.Option(None, "--rate"),
            slo: float | None = typer.Option(None, "--slo"), url: str = UrlOpt, token_file: Path | None = TokenOpt,
            as_json: bool = JsonOpt) -> None:
    """Change a workload's rate and/or SLO."""
    body = {k: v for k, v in (("rate_rps", rate), ("slo_ms", slo)) if v is not None}
    answer = request(url, "PATCH", f"/v1/workloads/{name}", body, token_file)
    emit_json(answer) if as_json else console.print(_table([answer]))


@client_app.command("rm")
def rm_cmd(name: str = typer.Argument(...), url: str = UrlOpt, token_file: Path | None = TokenOpt) -> None:
    """Remove a workload (its server drains, then stops)."""
    answer = request(url, "DELETE", f"/v1/workloads/{name}", None, token_file)
    console.print(f"removed {answer['removed']} (version {answer['version']})")


@client_app.command("ls")
def ls_cmd(url: str = UrlOpt, token_file: Path | None = TokenOpt, as_json: bool = JsonOpt) -> None:
    """List the workloads with their GPU, share, batch, prediction and endpoint."""
    answer = request(url, "GET", "/v1/workloads", None, token_file)
    emit_json(answer) if as_json else console.print(_table(answer["workloads"]))


@client_app.command("plan")
def plan_cmd(url: str = UrlOpt, token_file: Path | None = TokenOpt, as_json: bool = JsonOpt) -> None:
    """The current plan: GPUs, status and bounds of both objectives."""
    answer = request(url, "GET", "/v1/plan", None, token_file)
    if as_json:
        emit_json(answer)
        return
    console.print(f"policy {answer['policy']}: {answer['num_gpus']} of {answer['fleet_gpus']} GPUs, status "
                  f"{answer['status']}, lower bound {answer['lower_bound']}, version {answer['version']}"
                  + ("" if answer.get("cost") is None else f", cost {answer['cost']:g}/h"))
    for name, obj in answer["objectives"].items():
        console.print(f"  {name}: " + ", ".join(f"{k} {v}" for k, v in obj.items()))
    for g in answer["gpus"]:
        members = ", ".join(f"{w['name']} {w['share_pct']:g}% b{w['batch']}" for w in g["workloads"])
        kind = f" {g['gpu_type']}" if g.get("gpu_type") else ""
        console.print(f"  GPU {g['gpu']}{kind} ({g['total_share_pct']:g}%): {members}")


@client_app.command("endpoint")
def endpoint_cmd(name: str = typer.Argument(...), after_version: int = typer.Option(-1, "--after-version"),
                 wait: float = typer.Option(0.0, "--wait", help="Long-poll: seconds to wait for a newer version."),
                 url: str = UrlOpt, token_file: Path | None = TokenOpt) -> None:
    """A workload's endpoint (JSON); with --after-version N --wait S, the next one."""
    emit_json(request(url, "GET", f"/v1/workloads/{name}/endpoint?after_version={after_version}&wait={wait}",
                      None, token_file))


class WindowPoster:
    """A LiveMonitor listener posting each step's client-side windows to the service's /v1/windows
    (its /metrics then carries p50/p99, throughput and SLO violations); a failed post is skipped with
    one warning, never stopping the measurement."""

    FIELDS = ("workload", "window_s", "completed", "throughput_rps", "p50_ms", "p99_ms", "violation_pct",
              "errors", "unix_s")

    def __init__(self, url: str, token: str | None) -> None:
        self.url, self.token, self.warned, self.posted = url.rstrip("/") + "/v1/windows", token, False, 0

    def __call__(self, records: list[Any]) -> None:
        body = {"windows": [{k: getattr(r, k) for k in self.FIELDS} for r in records if r.completed or r.errors]}
        if not body["windows"]:
            return
        req = urllib.request.Request(self.url, data=json.dumps(body).encode(), method="POST")
        req.add_header("Content-Type", "application/json")
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=2.0):
                self.posted += 1
        except (OSError, ValueError) as exc:
            if not self.warned:
                self.warned = True
                print(f"igniter client measure: warning: live windows not posted to {self.url} ({exc})",
                      file=sys.stderr, flush=True)


def _token(token_file: Path | None) -> str | None:
    if token_file is not None:
        return token_file.read_text().strip()
    return os.environ.get("IGNITER_TOKEN", "").strip() or None


@client_app.command("measure")
def measure_cmd(names: list[str] = typer.Argument(None, help="Workloads to drive (default: all)."),
                duration: float = typer.Option(10.0, "--duration", callback=positive, help="Measured window, s."),
                warmup: float = typer.Option(2.0, "--warmup", callback=non_negative, help="Warm-up, s."),
                distribution: Distribution = typer.Option(Distribution["constant"], "--distribution"),
                seed: int = typer.Option(0, "--seed"), url: str = UrlOpt, token_file: Path | None = TokenOpt,
                output: Path | None = typer.Option(None, "-o", "--output", callback=output_file),
                as_json: bool = JsonOpt) -> None:
    """Load the service's workloads at their rates, following each endpoint (moves lose no request)."""
    from dataclasses import replace

    from igniter_opt.cli.deploy import _finish, _load_options  # the load generator only when measuring
    from igniter_opt.data.dnn import spec_for
    from igniter_opt.data.plan import GpuPlan, PlacedWorkload, Plan
    from igniter_opt.deploy.load.generator import LoadError, Target, require_load_client, run_load
    from igniter_opt.deploy.monitor import LiveMonitor
    from igniter_opt.deploy.report import measurement_report

    require_load_client()
    listing = request(url, "GET", "/v1/workloads", None, token_file)["workloads"]
    chosen = [w for w in listing if not names or w["name"] in names]
    unknown = sorted(set(names or []) - {w["name"] for w in listing})
    if unknown:
        fail(f"no workload {', '.join(unknown)} in the service (it has {', '.join(w['name'] for w in listing)})",
             EXIT_BAD_INPUT)
    if not chosen or any(not (w.get("endpoint") or {}).get("grpc_url") for w in chosen):
        fail("nothing to measure: no workloads, or the service runs without servers (--backend none)",
             EXIT_BAD_INPUT)
    token = _token(token_file)
    emulation = request(url, "GET", "/v1/plan", None, token_file).get("emulation") or {}
    scale = float(emulation.get("time_scale", 1.0))  # an emulated device F times slower: rate / F, SLO x F
    if scale != 1:
        chosen = [{**w, "rate_rps": w["rate_rps"] / scale, "slo_ms": w["slo_ms"] * scale,
                   "predicted_latency_ms": None if w["predicted_latency_ms"] is None else
                   w["predicted_latency_ms"] * scale} for w in chosen]
    targets = [Target(name=w["name"], model_name=w["endpoint"]["model_name"], url=w["endpoint"]["grpc_url"],
                      rate_rps=w["rate_rps"], slo_ms=w["slo_ms"], input_dims=spec_for(w["model"]).input_dims,
                      follow_url=f"{url.rstrip('/')}/v1/workloads/{w['name']}/endpoint", follow_token=token)
               for w in chosen]
    plan = Plan("service", "service", "v100", "feasible", [GpuPlan([
        PlacedWorkload(w["name"], w["model"], w["batch"], w["share_pct"], w["rate_rps"], w["slo_ms"],
                       w["predicted_latency_ms"]) for w in chosen])])
    try:
        monitor = LiveMonitor(targets, listeners=[WindowPoster(url, token)])  # live windows -> /v1/windows
        try:
            options = replace(_load_options(duration, warmup, distribution, seed), progress_s=0.1)
            results = run_load(targets, options, hooks=monitor)
        finally:
            monitor.stop()
    except LoadError as exc:
        fail(str(exc))
    _finish(measurement_report(plan, results, None), results, output, as_json, "service: predicted vs measured")
