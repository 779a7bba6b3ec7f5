"""Run the controller behind uvicorn: binding and token rules, start-up, clean stop.

Binds 127.0.0.1 by default; any non-loopback address needs a bearer token (from a file or
$IGNITER_TOKEN; at least 16 characters; never printed or logged). SIGTERM and Ctrl-C stop
uvicorn; then the controller stops its drainer and, only with `teardown`, every server (without
it the servers keep serving, and `igniter serve` with the same --state-dir re-adopts them).
"""

from __future__ import annotations

import ipaddress
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from igniter_opt.controller.api import MAX_BODY_BYTES, create_app
from igniter_opt.controller.core import Config, Controller
from igniter_opt.controller.dataplane import DataPlane, LocalPlane, NoPlane
from igniter_opt.data.errors import InputError, require
from igniter_opt.deploy.emulation import check_emulation_use

TOKEN_ENV = "IGNITER_TOKEN"
MIN_TOKEN = 16
BACKENDS = ("local", "ray", "none")


@dataclass
class ServeOptions:
    """Where and how the API listens, and the data plane."""

    host: str = "127.0.0.1"
    port: int = 8080
    backend: str = "local"
    token_file: Path | None = None
    tritonserver: str | None = None
    device: str = "auto"
    teardown: bool = False
    max_body: int = MAX_BODY_BYTES
    address: str | None = None        # ray: the cluster (else $RAY_ADDRESS)
    inject_error: dict[str, float] = field(default_factory=dict)   # emulate: workload -> error factor
    time_scale: float = 1.0           # emulate: servers run F times slower than the plan (emulated.py)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_token(token_file: Path | None, env: dict[str, str] | None = None) -> str | None:
    """The bearer token from the file (first line) or $IGNITER_TOKEN; None when neither is given."""
    env = dict(os.environ) if env is None else env
    if token_file is not None:
        try:
            token = token_file.read_text().strip().splitlines()[0].strip() if token_file.read_text().strip() else ""
        except OSError as exc:
            raise InputError(f"--token-file {token_file}: cannot read it ({exc.strerror})") from None
        where = f"--token-file {token_file}"
    elif env.get(TOKEN_ENV):
        token, where = env[TOKEN_ENV].strip(), f"${TOKEN_ENV}"
    else:
        return None
    if len(token) < MIN_TOKEN:
        raise InputError(f"{where}: the token must have at least {MIN_TOKEN} characters")
    return token


def check_binding(host: str, token: str | None) -> None:
    """Refuse a non-loopback address without a token (InputError, exit 2)."""
    if not is_loopback(host) and token is None:
        raise InputError(f"--host {host}: listening beyond this machine needs a bearer token "
                         f"(--token-file FILE or ${TOKEN_ENV})")


def make_plane(config: Config, options: ServeOptions) -> DataPlane:
    if options.backend not in BACKENDS:
        raise InputError(f"--backend {options.backend!r}: must be one of {BACKENDS}")
    check_emulation_use(options.device, options.backend, options.inject_error, options.time_scale)
    if options.backend == "none":
        return NoPlane()
    if options.device == "emulate":
        from igniter_opt.controller.emulated import EmulatedPlane
        from igniter_opt.model import load_profile

        return EmulatedPlane(config.state_dir, load_profile(config.profile), options.inject_error,
                             options.time_scale, options.tritonserver)
    if options.backend == "ray":
        from igniter_opt.controller.rayplane import RayPlane

        slot_types = None
        if config.fleet is not None:
            from igniter_opt.controller.fleetplace import load_service_fleet

            fleet = load_service_fleet(config.fleet)
            slot_types = [fleet.type_name(j) for j in range(fleet.gpus)]
        return RayPlane(config.state_dir, options.address, options.tritonserver, slot_types=slot_types)
    return LocalPlane(config.state_dir, options.tritonserver, device=options.device)


@contextmanager
def _signals_recorded() -> Iterator[None]:
    """While open (main thread), SIGTERM and SIGINT do nothing but stop uvicorn, which installs its
    own handlers and, after shutting down, raises the signal again: then ours swallows it, so the
    controller's clean stop (below) runs instead of the default action killing the process."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    sigs = (signal.SIGTERM, signal.SIGINT)
    old = {s: signal.signal(s, lambda _signum, _frame: None) for s in sigs}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def serve(config: Config, options: ServeOptions) -> None:
    """Start the controller and the API; return after SIGTERM/Ctrl-C, once stopped."""
    uvicorn = require("uvicorn", "service", "igniter serve")
    token = read_token(options.token_file)
    check_binding(options.host, token)
    plane = make_plane(config, options)
    ctl = Controller(config, plane)
    try:
        ctl.start()
        for line in plane.warnings + ctl.notes:
            print(f"igniter serve: {line}", file=sys.stderr, flush=True)
        app = create_app(ctl, token, options.max_body)
        server = uvicorn.Server(uvicorn.Config(app, host=options.host, port=options.port, log_level="warning",
                                               access_log=False, lifespan="off"))
        emulated = plane.emulation()
        device = (f"EMULATED GPUs, time scale {emulated['time_scale']:g}" if emulated else f"device {options.device}")
        print(f"igniter serve: http://{options.host}:{options.port} (policy {config.policy}, backend "
              f"{plane.kind}, {device}, {config.gpus} GPUs, state {config.state_dir}); API docs at /docs",
              file=sys.stderr, flush=True)
        with _signals_recorded():  # uvicorn re-raises the stop signal after its shutdown: recorded here
            server.run()
    finally:
        ctl.close(teardown=options.teardown)
        print("igniter serve: stopped" + (" and tore down every server" if options.teardown else
                                          "; servers left running for re-adoption"), file=sys.stderr, flush=True)
